"""Bundles: transactions (all or nothing) and batches (entry by entry), and reading the
answer of either entry by entry (:func:`entry_results`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fhir_bridge.errors import MalformedResponse, OperationOutcome

from ._core import ClientCore
from ._outcome import parse_outcome
from ._wire import Json, fhir_body
from ._writes import parse_location, version_of_etag

log = logging.getLogger("fhir_bridge.fhir")


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One entry of a transaction-response or batch-response Bundle."""

    index: int
    status: int
    location: str | None
    etag: str | None
    last_modified: str | None
    resource_type: str | None
    id: str | None
    version_id: str | None
    resource: Json | None
    outcome: OperationOutcome

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Bundles(ClientCore):
    """``transaction`` and ``batch``."""

    async def transaction(self, bundle: Json) -> Json:
        """POST a transaction Bundle; all entries apply or none (an error raises).

        Returns the transaction-response Bundle (read it with :func:`entry_results`). One
        answered 500 is tried again (``RetryPolicy.atomic_retries``): an answered transaction
        that failed was rolled back whole.
        """
        return await self._post_bundle(bundle, "transaction")

    async def batch(self, bundle: Json) -> Json:
        """POST a batch Bundle; entries succeed or fail one by one, so read the returned
        batch-response with :func:`entry_results` for per-entry status and OperationOutcome."""
        return await self._post_bundle(bundle, "batch")

    async def _post_bundle(self, bundle: Json, kind: str) -> Json:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
            raise ValueError(f"expected a Bundle of type {kind}")
        await self._require(None, kind)
        response = await self._send(
            "POST",
            self.base_url,
            body=bundle,
            resource_type="Bundle",
            write=True,
            atomic=kind == "transaction",
        )
        body: Json = fhir_body(response, True, "POST", "", "Bundle")
        if body.get("resourceType") != "Bundle" or body.get("type") != f"{kind}-response":
            raise MalformedResponse(
                f"expected a {kind}-response Bundle",
                status=response.status_code,
                method="POST",
                resource_type="Bundle",
            )
        failed = sum(1 for e in entry_results(body) if not e.ok)
        log.info(
            "%s done",
            kind,
            extra={
                "action": f"fhir.{kind}",
                "count": len(body.get("entry") or []),
                "failed": failed,
            },
        )
        return body


def entry_results(response: Json) -> list[EntryResult]:
    """Each entry of a transaction-response or batch-response: status, ids, OperationOutcome."""
    results = []
    for index, raw in enumerate(response.get("entry") or []):
        entry: Json = raw if isinstance(raw, dict) else {}
        answer: Json = entry["response"] if isinstance(entry.get("response"), dict) else {}
        status_text = str(answer.get("status") or "")
        status = int(status_text[:3]) if status_text[:3].isdigit() else 0
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        location = answer.get("location") if isinstance(answer.get("location"), str) else None
        etag = answer.get("etag") if isinstance(answer.get("etag"), str) else None
        rtype, rid, version = parse_location(location)
        if resource is not None and resource.get("resourceType") != "OperationOutcome":
            rtype = rtype or resource.get("resourceType")
            rid = rid or resource.get("id")
            version = version or (resource.get("meta") or {}).get("versionId")
        outcome = parse_outcome(answer.get("outcome"))
        if not outcome.issues and resource is not None:
            outcome = parse_outcome(resource)
        results.append(
            EntryResult(
                index=index,
                status=status,
                location=location,
                etag=etag,
                last_modified=answer.get("lastModified"),
                resource_type=rtype,
                id=rid,
                version_id=version or version_of_etag(etag),
                resource=(
                    resource
                    if resource is not None and resource.get("resourceType") != "OperationOutcome"
                    else None
                ),
                outcome=outcome,
            )
        )
    return results
