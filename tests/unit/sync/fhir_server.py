"""An in-memory FHIR R4 server behind respx routes, for the unit tier of push, pull and worker.

It keeps every version of every resource and answers what the bridge sends: the
CapabilityStatement (shaped by the options: transaction, batch, conditional update and create,
``_lastUpdated``, type history, read-only types), transactions (all or nothing, ``urn:uuid``
references resolved) and batches, conditional and version-aware updates (If-Match: 412 on a
stale version), conditional creates, reads, searches (identifier, patient, ``_lastUpdated``,
paged with ``next`` links; Subscription ``url`` and ``criteria``; Patient demographics:
``family`` and ``given`` by prefix, ``birthdate``, ``gender``) and type history with
deletions. ``refuse`` makes it turn down chosen writes; ``fail`` answers whole requests with
an error status. With ``patient_match`` it declares ``Patient/$match`` and answers it with the
candidates that function grades.
It refuses as the EHR-like sandbox profiles do: ``read_only`` types (declared so, writes
answered 405 with an OperationOutcome), ``refuses_writes`` (declared writable, yet answered
405: a refusal only learnt at run time), ``refused_modes`` (a declared transaction or batch
answered with that status), conditional update and create not run when not declared (also
inside Bundles; ``refuses_conditional_update``: not run though declared), and
``if_match_required`` (an update by id without If-Match: 412). Deletes: ``undeletable``
types declare no delete, ``refuses_deletes`` declare it yet answer 405; deleting a deleted
resource answers 204, as HAPI does.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import respx

from fhir_bridge.fhir import FhirClient, RetryPolicy
from fhir_bridge.mappers import identifiers_of

BASE = "https://ehr.test/fhir"
Json = dict[str, Any]
SYNCED = (
    "DocumentReference",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Condition",
    "Goal",
    "MedicationStatement",
    "MedicationRequest",
    "CareTeam",
    "Encounter",
    "ServiceRequest",
    "Task",
    "CarePlan",
    "Subscription",
    "QuestionnaireResponse",
    "Observation",
)
# a write turned down: (status, diagnostics), or None to let it through
Refusal = Callable[[str, Json], tuple[int, str] | None]
# Patient/$match: the Patient sent -> candidates as (server id, score, match-grade or None)
PatientMatch = Callable[[Json], list[tuple[str, float, str | None]]]
_TYPE = r"(?P<rtype>[A-Z][A-Za-z]+)"
_ID = r"(?P<rid>[A-Za-z0-9\-.]+)"


class _Refused(Exception):  # noqa: N818 - an answer, not a bug
    def __init__(self, status: int, diagnostics: str, code: str = "processing") -> None:
        self.status = status
        self.diagnostics = diagnostics
        self.code = code


@dataclass
class HistoryEntry:
    resource_type: str
    resource_id: str
    version: int
    method: str  # PUT, POST or DELETE
    resource: Json | None
    at: str


@dataclass
class ExportJob:
    """A Patient-level export asked of the server: for which patients and types."""

    patients: list[str]
    types: list[str]
    polls: int = 0


def patient_of(resource: Json) -> str | None:
    """The ``Patient/id`` a resource belongs to (itself, for a Patient)."""
    if resource.get("resourceType") == "Patient":
        return f"Patient/{resource.get('id')}"
    subject = "for" if resource.get("resourceType") == "Task" else "subject"
    return (resource.get(subject) or {}).get("reference")


@dataclass
class FhirServer:
    """The server's state and options; ``transport`` is what a FhirClient is built on."""

    transaction: bool = True
    batch: bool = True
    conditional_update: bool = True
    conditional_create: bool = True
    last_updated: bool = True
    type_history: bool = True
    read_only: frozenset[str] = frozenset()
    refuses_writes: frozenset[str] = frozenset()
    undeletable: frozenset[str] = frozenset()  # declared without the delete interaction
    refuses_deletes: frozenset[str] = frozenset()  # delete declared, yet answered 405
    refused_modes: dict[str, int] = field(default_factory=dict)
    if_match_required: bool = False
    refuses_last_updated: bool = False  # declared, yet a search by it is answered 400
    refuses_conditional_update: bool = False  # declared, yet answered 400 "not supported"
    refuse: Refusal | None = None
    patient_match: PatientMatch | None = None
    provenance: bool = False  # declares Provenance (writable unless in read_only/refuses_writes)
    bulk_export: bool = False  # Patient/$export, finished at the second poll
    exports: dict[str, ExportJob] = field(default_factory=dict)
    start: datetime = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    resources: dict[tuple[str, str], Json] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    history: list[HistoryEntry] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    failures: list[httpx.Response] = field(default_factory=list)
    ticks: int = 0

    def __post_init__(self) -> None:
        router = respx.MockRouter(assert_all_called=False)
        routes: list[tuple[str, str, Callable[..., httpx.Response]]] = [
            ("GET", r"/metadata", self._metadata),
            ("POST", r"/?", self._bundle),
            ("POST", r"/Patient/\$match", self._match),
            ("POST", r"/Patient/\$export", self._export),
            ("GET", r"/\$export-poll-status", self._export_status),
            ("DELETE", r"/\$export-poll-status", self._export_delete),
            (
                "GET",
                r"/export-files/(?P<job>[0-9]+)/(?P<rtype>[A-Za-z]+)\.ndjson",
                self._export_file,
            ),
            ("GET", rf"/{_TYPE}/_history", self._type_history),
            ("GET", rf"/{_TYPE}/{_ID}", self._read),
            ("GET", rf"/{_TYPE}", self._search),
            ("PUT", rf"/{_TYPE}/{_ID}", self._update),
            ("PUT", rf"/{_TYPE}", self._conditional_update),
            ("POST", rf"/{_TYPE}", self._create),
            ("DELETE", rf"/{_TYPE}/{_ID}", self._delete),
        ]
        for method, path, answer in routes:
            router.route(method=method, path__regex=rf"^/fhir{path}$").mock(
                side_effect=self._answering(answer)
            )
        self.router = router

    # ------------------------------------------------------------------ for tests

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.router.async_handler)

    def client(self, **options: Any) -> FhirClient:
        """A client on this server that never sleeps between retries."""
        options.setdefault("retry", RetryPolicy(max_attempts=1))
        return FhirClient(BASE, transport=self.transport, **options)

    def fail(self, *responses: httpx.Response) -> None:
        """Answer the next requests with these responses, whatever they ask."""
        self.failures.extend(responses)

    def of_type(self, resource_type: str) -> list[Json]:
        return [r for (t, _), r in self.resources.items() if t == resource_type]

    def ours(self, resource_type: str, value: str) -> Json:
        """The one resource of a type carrying our identifier with this value."""
        (found,) = [
            r
            for r in self.of_type(resource_type)
            if any(i.get("value") == value for i in identifiers_of(r))
        ]
        return found

    def edit(self, resource_type: str, resource_id: str, change: Callable[[Json], None]) -> Json:
        """A clinician's edit in the EHR: a new version of the resource."""
        resource = copy.deepcopy(self.resources[(resource_type, resource_id)])
        change(resource)
        return self._store(resource, resource_id, "PUT")

    def add(self, resource: Json) -> Json:
        """A resource created in the EHR."""
        return self._store(copy.deepcopy(resource), uuid.uuid4().hex[:12], "POST")

    def remove(self, resource_type: str, resource_id: str) -> None:
        """A deletion in the EHR."""
        self._remove(resource_type, resource_id)

    def sent(self, method: str, path: str = "") -> list[httpx.Request]:
        """The requests with this method whose path under the base starts with ``path``."""
        return [
            r
            for r in self.requests
            if r.method == method and r.url.path.removeprefix("/fhir").lstrip("/").startswith(path)
        ]

    # ------------------------------------------------------------------ state

    def _now(self) -> str:
        self.ticks += 1
        return self.time()

    def time(self) -> str:
        """The server's clock (each write moves it on by a second)."""
        return (self.start + timedelta(seconds=self.ticks)).isoformat().replace("+00:00", "Z")

    def _store(self, resource: Json, resource_id: str, method: str) -> Json:
        key = (resource["resourceType"], resource_id)
        previous = self.resources.get(key)
        version = int(previous["meta"]["versionId"]) + 1 if previous else 1
        if previous is None:
            version = 1 + sum(1 for h in self.history if (h.resource_type, h.resource_id) == key)
        at = self._now()
        stored = {
            **resource,
            "id": resource_id,
            "meta": {**(resource.get("meta") or {}), "versionId": str(version), "lastUpdated": at},
        }
        self.resources[key] = stored
        self.deleted.discard(key)
        self.history.append(HistoryEntry(key[0], resource_id, version, method, stored, at))
        return copy.deepcopy(stored)

    def _remove(self, resource_type: str, resource_id: str) -> None:
        key = (resource_type, resource_id)
        previous = self.resources.pop(key)
        self.deleted.add(key)
        version = int(previous["meta"]["versionId"]) + 1
        self.history.append(
            HistoryEntry(resource_type, resource_id, version, "DELETE", None, self._now())
        )

    def _matching(self, resource_type: str, query: str) -> list[Json]:
        params = dict(parse_qsl(query))
        found = self.of_type(resource_type)
        if "identifier" in params:  # a comma-separated list is an OR
            wanted = {
                tuple(token.rpartition("|")[::2]) for token in params["identifier"].split(",")
            }
            found = [
                r
                for r in found
                if any((i.get("system"), i.get("value")) in wanted for i in identifiers_of(r))
            ]
        if "url" in params:  # Subscription.channel.endpoint
            found = [r for r in found if (r.get("channel") or {}).get("endpoint") == params["url"]]
        if "criteria" in params:
            found = [r for r in found if r.get("criteria") == params["criteria"]]
        if "_id" in params:
            found = [r for r in found if r["id"] in params["_id"].split(",")]
        if "patient" in params:
            subject = "for" if resource_type == "Task" else "subject"
            found = [
                r for r in found if (r.get(subject) or {}).get("reference") == params["patient"]
            ]
        for name in ("family", "given"):
            if name in params:
                wanted = params[name].lower()
                found = [
                    r
                    for r in found
                    if any(
                        str(part).lower().startswith(wanted)
                        for n in r.get("name") or []
                        for part in ([n.get("family")] if name == "family" else n.get("given", []))
                        if part
                    )
                ]
        for name, element in (("birthdate", "birthDate"), ("gender", "gender")):
            if name in params:
                found = [r for r in found if r.get(element) == params[name]]
        if "_lastUpdated" in params:
            since = _instant(params["_lastUpdated"].removeprefix("gt"))
            found = [r for r in found if _instant(r["meta"]["lastUpdated"]) > since]
        return sorted(found, key=lambda r: r["meta"]["lastUpdated"])

    # ------------------------------------------------------------------ writes

    def _write(
        self,
        method: str,
        url: str,
        resource: Json,
        *,
        if_match: str | None = None,
        if_none_exist: str | None = None,
        assigned: str | None = None,
    ) -> tuple[int, Json]:
        """One write as a REST call or a Bundle entry asks it; (status, stored resource)."""
        resource_type, _, query = url.partition("?")
        resource_type, _, resource_id = resource_type.partition("/")
        if resource_type in self.read_only | self.refuses_writes:
            raise _Refused(405, f"{resource_type} is read-only here", "not-supported")
        refusal = self.refuse(method, resource) if self.refuse else None
        if refusal is not None:
            raise _Refused(*refusal)
        if method == "PUT" and query and self.refuses_conditional_update:
            raise _Refused(400, "conditional update is not supported here", "not-supported")
        if method == "PUT" and query and not self.conditional_update:
            raise _Refused(400, "conditional update not supported", "not-supported")
        if method == "POST" and if_none_exist and not self.conditional_create:
            raise _Refused(400, "conditional create not supported", "not-supported")
        if method == "PUT" and resource_id and not if_match and self.if_match_required:
            raise _Refused(412, "If-Match is required for updates")
        if method == "POST":
            if if_none_exist:
                matches = self._matching(resource_type, if_none_exist)
                if matches:
                    return 200, copy.deepcopy(matches[0])
            return 201, self._store(resource, assigned or uuid.uuid4().hex[:12], "POST")
        if not resource_id:
            matches = self._matching(resource_type, query)
            if len(matches) > 1:
                raise _Refused(412, "several resources match")
            if not matches:
                return 201, self._store(resource, assigned or uuid.uuid4().hex[:12], "PUT")
            resource_id = matches[0]["id"]
        current = self.resources.get((resource_type, resource_id))
        if if_match and (current is None or _version(if_match) != current["meta"]["versionId"]):
            raise _Refused(412, "not the current version")
        status = 200 if current is not None else 201
        return status, self._store(resource, resource_id, "PUT")

    def _bundle(self, request: httpx.Request) -> httpx.Response:
        bundle = json.loads(request.content)
        kind = bundle.get("type")
        declared = self.transaction if kind == "transaction" else self.batch
        if not declared:
            return _outcome(400, f"{kind} not supported", "not-supported")
        if kind in self.refused_modes:
            return _outcome(self.refused_modes[kind], f"{kind} is not allowed", "not-supported")
        entries = bundle.get("entry") or []
        if kind == "batch":
            return _fhir(
                {
                    "resourceType": "Bundle",
                    "type": "batch-response",
                    "entry": [self._entry(e, None) for e in entries],
                }
            )
        saved = (copy.deepcopy(self.resources), set(self.deleted), list(self.history), self.ticks)
        ids = {e["fullUrl"]: uuid.uuid4().hex[:12] for e in entries if e.get("fullUrl")}
        # a conditional update that matches keeps the matched resource's id
        for e in entries:
            url = e["request"]["url"]
            if "?" in url and e.get("fullUrl"):
                matches = self._matching(url.split("?")[0], url.split("?", 1)[1])
                if len(matches) == 1:
                    ids[e["fullUrl"]] = matches[0]["id"]
        targets = {  # what each entry's fullUrl becomes: Type/id
            full_url: (
                url.split("?")[0] + f"/{ids[full_url]}" if "?" in url or "/" not in url else url
            )
            for e in entries
            if (full_url := e.get("fullUrl")) and (url := e["request"]["url"])
        }
        answers = []
        for entry in entries:
            text = json.dumps(entry["resource"])
            for full_url, target in targets.items():
                text = text.replace(f'"{full_url}"', f'"{target}"')
            resolved = {**entry, "resource": json.loads(text)}
            answer = self._entry(resolved, ids.get(entry.get("fullUrl", "")))
            if not answer["response"]["status"].startswith("2"):
                self.resources, self.deleted, self.history, self.ticks = saved
                status = int(answer["response"]["status"][:3])
                return _fhir(answer["response"]["outcome"], status)
            answers.append(answer)
        return _fhir({"resourceType": "Bundle", "type": "transaction-response", "entry": answers})

    def _entry(self, entry: Json, assigned: str | None) -> Json:
        request = entry["request"]
        try:
            status, stored = self._write(
                request["method"],
                request["url"],
                entry["resource"],
                if_match=request.get("ifMatch"),
                if_none_exist=request.get("ifNoneExist"),
                assigned=assigned,
            )
        except _Refused as refused:
            return {
                "response": {
                    "status": str(refused.status),
                    "outcome": _outcome_json(refused.diagnostics, refused.code),
                }
            }
        version = stored["meta"]["versionId"]
        return {
            "resource": stored,
            "response": {
                "status": "201 Created" if status == 201 else "200 OK",
                "location": f"{stored['resourceType']}/{stored['id']}/_history/{version}",
                "etag": f'W/"{version}"',
                "lastModified": stored["meta"]["lastUpdated"],
            },
        }

    def _rest_write(self, request: httpx.Request, url: str, method: str) -> httpx.Response:
        try:
            status, stored = self._write(
                method,
                url,
                json.loads(request.content),
                if_match=request.headers.get("If-Match"),
                if_none_exist=request.headers.get("If-None-Exist"),
            )
        except _Refused as refused:
            return _outcome(refused.status, refused.diagnostics, refused.code)
        version = stored["meta"]["versionId"]
        return _fhir(
            stored,
            status,
            {
                "Location": f"{BASE}/{stored['resourceType']}/{stored['id']}/_history/{version}",
                "ETag": f'W/"{version}"',
            },
        )

    def _update(self, request: httpx.Request, rtype: str, rid: str) -> httpx.Response:
        return self._rest_write(request, f"{rtype}/{rid}", "PUT")

    def _conditional_update(self, request: httpx.Request, rtype: str) -> httpx.Response:
        return self._rest_write(request, f"{rtype}?{request.url.query.decode()}", "PUT")

    def _create(self, request: httpx.Request, rtype: str) -> httpx.Response:
        return self._rest_write(request, rtype, "POST")

    def _delete(self, request: httpx.Request, rtype: str, rid: str) -> httpx.Response:
        if rtype in self.read_only or rtype in self.undeletable or rtype in self.refuses_deletes:
            return _outcome(405, f"{rtype} cannot be deleted on this server", "not-supported")
        if (rtype, rid) in self.deleted:
            return httpx.Response(204)  # deleted already: HAPI answers the same
        if (rtype, rid) not in self.resources:
            return _outcome(404, "not found", "not-found")
        self._remove(rtype, rid)
        return httpx.Response(204)

    # ------------------------------------------------------------------ reads

    def _metadata(self, request: httpx.Request) -> httpx.Response:
        def resource(resource_type: str) -> Json:
            interactions = ["read", "vread", "search-type"]
            if resource_type not in self.read_only:
                interactions += ["create", "update"]
                if resource_type not in self.undeletable:
                    interactions.append("delete")
            if self.type_history:
                interactions.append("history-type")
            params = ["identifier", "patient"] + (["_lastUpdated"] if self.last_updated else [])
            return {
                "type": resource_type,
                "versioning": "versioned-update" if self.if_match_required else "versioned",
                "interaction": [{"code": c} for c in interactions],
                "conditionalUpdate": self.conditional_update,
                "conditionalCreate": self.conditional_create,
                "searchParam": [{"name": p, "type": "token"} for p in params],
                "operation": [
                    {"name": name, "definition": f"OperationDefinition/{name}"}
                    for name, on in (
                        ("match", self.patient_match is not None),
                        ("export", self.bulk_export),
                    )
                    if on and resource_type == "Patient"
                ],
            }

        system = [c for c, on in (("transaction", self.transaction), ("batch", self.batch)) if on]
        return _fhir(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "fhirVersion": "4.0.1",
                "rest": [
                    {
                        "mode": "server",
                        "interaction": [{"code": c} for c in system],
                        "resource": [
                            resource(t)
                            for t in SYNCED + (("Provenance",) if self.provenance else ())
                        ],
                    }
                ],
            }
        )

    def _read(self, request: httpx.Request, rtype: str, rid: str) -> httpx.Response:
        if (rtype, rid) in self.deleted:
            return _outcome(410, "deleted")
        found = self.resources.get((rtype, rid))
        return _outcome(404, "not found") if found is None else _fhir(found)

    def _search(self, request: httpx.Request, rtype: str) -> httpx.Response:
        params = dict(parse_qsl(request.url.query.decode()))
        if self.refuses_last_updated and "_lastUpdated" in params:
            return _outcome(400, "_lastUpdated is not supported here", "not-supported")
        found = self._matching(rtype, request.url.query.decode())
        entries = [{"resource": r, "search": {"mode": "match"}} for r in found]
        return self._page(f"{BASE}/{rtype}", params, entries, "searchset")

    def _match(self, request: httpx.Request) -> httpx.Response:
        if self.patient_match is None:
            return _outcome(404, "unknown operation $match")
        parameters = json.loads(request.content)
        sent = next(p["resource"] for p in parameters["parameter"] if p["name"] == "resource")
        entries = [
            {
                "resource": self.resources[("Patient", server_id)],
                "search": {
                    "mode": "match",
                    "score": score,
                    **(
                        {
                            "extension": [
                                {
                                    "url": "http://hl7.org/fhir/StructureDefinition/match-grade",
                                    "valueCode": grade,
                                }
                            ]
                        }
                        if grade
                        else {}
                    ),
                },
            }
            for server_id, score, grade in self.patient_match(sent)
        ]
        return _fhir({"resourceType": "Bundle", "type": "searchset", "entry": entries})

    def _type_history(self, request: httpx.Request, rtype: str) -> httpx.Response:
        params = dict(parse_qsl(request.url.query.decode()))
        since = _instant(params["_since"]) if "_since" in params else None
        entries = [
            {
                "fullUrl": f"{BASE}/{h.resource_type}/{h.resource_id}",
                **({"resource": h.resource} if h.resource is not None else {}),
                "request": {
                    "method": h.method,
                    "url": f"{h.resource_type}/{h.resource_id}/_history/{h.version}",
                },
            }
            for h in reversed(self.history)
            if h.resource_type == rtype and (since is None or _instant(h.at) >= since)
        ]
        return self._page(f"{BASE}/{rtype}/_history", params, entries, "history")

    def _export(self, request: httpx.Request) -> httpx.Response:
        if not self.bulk_export:
            return _outcome(404, "unknown operation")
        body = json.loads(request.content)
        asked = {p["name"]: p for p in body.get("parameter", [])}
        if "_type" not in asked or "Task" in asked["_type"]["valueString"]:
            return _outcome(400, "Task has no patient search parameter")
        job = str(len(self.exports) + 1)
        self.exports[job] = ExportJob(
            [p["valueReference"]["reference"] for p in body["parameter"] if p["name"] == "patient"],
            asked["_type"]["valueString"].split(","),
        )
        location = f"{BASE}/$export-poll-status?_jobId={job}"
        return httpx.Response(202, headers={"Content-Location": location})

    def _export_status(self, request: httpx.Request) -> httpx.Response:
        job = self.exports.get(request.url.params["_jobId"])
        if job is None:
            return _outcome(404, "no such job")
        job.polls += 1
        if job.polls < 2:
            return httpx.Response(202, headers={"Retry-After": "0"})
        key = request.url.params["_jobId"]
        output = [{"type": t, "url": f"{BASE}/export-files/{key}/{t}.ndjson"} for t in job.types]
        body = {"transactionTime": self._now(), "requiresAccessToken": True, "output": output}
        return httpx.Response(200, json=body)

    def _export_delete(self, request: httpx.Request) -> httpx.Response:
        self.exports.pop(request.url.params["_jobId"], None)
        return httpx.Response(202)

    def _export_file(self, request: httpx.Request, job: str, rtype: str) -> httpx.Response:
        patients = set(self.exports[job].patients)
        lines = [
            json.dumps(r)
            for (t, _), r in self.resources.items()
            if t == rtype and patient_of(r) in patients
        ]
        return httpx.Response(200, content="\n".join(lines).encode())

    def _page(self, url: str, params: dict[str, str], entries: list[Json], kind: str) -> Any:
        count = int(params.get("_count", "20"))
        offset = int(params.pop("_offset", "0"))
        bundle: Json = {
            "resourceType": "Bundle",
            "meta": {"lastUpdated": self.time()},  # as HAPI does: the time of the search
            "type": kind,
            "total": len(entries),
            "entry": entries[offset : offset + count],
        }
        if offset + count < len(entries):
            following = urlencode({**params, "_offset": str(offset + count)})
            bundle["link"] = [{"relation": "next", "url": f"{url}?{following}"}]
        return _fhir(bundle)

    # ------------------------------------------------------------------ plumbing

    def _answering(self, answer: Callable[..., httpx.Response]) -> Callable[..., httpx.Response]:
        def respond(request: httpx.Request, **groups: str) -> httpx.Response:
            self.requests.append(request)
            if self.failures:
                return self.failures.pop(0)
            return answer(request, **groups)

        return respond


def _fhir(body: Json, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/fhir+json", **(headers or {})},
    )


def _outcome_json(diagnostics: str, code: str = "processing") -> Json:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


def _outcome(status: int, diagnostics: str, code: str = "processing") -> httpx.Response:
    return _fhir(_outcome_json(diagnostics, code), status)


def error(status: int, diagnostics: str = "simulated", **headers: str) -> httpx.Response:
    """An error answer as a FHIR server gives it (for :meth:`FhirServer.fail`)."""
    return _fhir(_outcome_json(diagnostics), status, headers)


def _version(if_match: str) -> str:
    return re.sub(r'^W/"|"$', "", if_match.strip())


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
