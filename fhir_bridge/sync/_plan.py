"""Pure push planning: what to write, in what order, in which bundles, with what body.

Nothing here does I/O. The push loop gives it mapped entries and the links it knows, and gets
back writes (create, update or unchanged), their bodies (with what a clinician added on the
server kept), and request bundles whose references point either inside the bundle
(``urn:uuid:``) or at resources the server already holds (``Type/id``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fhir_bridge.mappers import Entry, identifiers_of, terminology_warnings
from fhir_bridge.store import Link, content_hash

Json = dict[str, Any]
Action = Literal["create", "update", "unchanged"]
# how a resource the server has not confirmed is written: a conditional update by our
# identifier, or (the server has none, and a search by identifier found nothing) a create,
# conditional (If-None-Exist) where the server allows it
Upsert = Literal["conditional-update", "conditional-create", "create"]

# Resources of a level only reference resources of lower levels.
LEVELS: dict[str, int] = {
    "Organization": 0,
    "Practitioner": 0,
    "PractitionerRole": 0,
    "Patient": 0,
    # a screening's response, then the Observations derived from it (a health concern's
    # evidence names the one that groups them)
    "QuestionnaireResponse": 1,
    "Observation": 2,
    "Condition": 3,
    "Goal": 4,
    "MedicationStatement": 4,
    "MedicationRequest": 4,
    "CareTeam": 4,
    "ServiceRequest": 5,
    "Task": 6,
    "CarePlan": 7,
    "Encounter": 8,
    "DocumentReference": 8,
}
_NOT_CONTENT = ("id", "meta", "text")


@dataclass(frozen=True)
class Write:
    """One resource of a push: what we render, what we send, and what the server had."""

    entry: Entry
    identifier: str  # "system|value"
    action: Action
    body: Json
    sent_hash: str
    link: Link | None
    changes: list[str] = field(default_factory=list)
    upsert: Upsert = "conditional-update"
    warnings: list[str] = field(default_factory=list)
    """Codes outside US Core's extensible bindings (mappers.terminology_warnings)."""

    @property
    def resource_type(self) -> str:
        return str(self.entry.resource["resourceType"])

    @property
    def full_url(self) -> str:
        return self.entry.full_url


def identifier_of(resource: Json) -> str:
    """Our identifier of an emitted resource, as ``system|value`` (it is the last one)."""
    own = identifiers_of(resource)[-1]
    return f"{own['system']}|{own['value']}"


def plan(entries: Iterable[Entry], links: Mapping[tuple[str, str], Link]) -> list[Write]:
    """One Write per entry, in dependency order; unchanged ones are marked, not dropped."""
    writes = []
    for entry in entries:
        resource = entry.resource
        key = (str(resource["resourceType"]), identifier_of(resource))
        link = links.get(key)
        digest = rendering_hash(resource)
        if link is not None and link.sent_hash == digest:
            writes.append(Write(entry, key[1], "unchanged", resource, digest, link))
            continue
        body = (
            keep_server_additions(resource, link.sent_json, link.server_json) if link else resource
        )
        changes = field_changes(_content(link.sent_json or {}), _content(resource)) if link else []
        action: Action = "update" if link else "create"
        warnings = terminology_warnings(resource)
        writes.append(Write(entry, key[1], action, body, digest, link, changes, warnings=warnings))
    return sorted(writes, key=lambda w: LEVELS.get(w.resource_type, 9))


def _content(resource: Json) -> Json:
    return {k: v for k, v in resource.items() if k not in _NOT_CONTENT}


def rendering_hash(resource: Json) -> str:
    """The hash push compares to decide whether a rendering changed since it was sent."""
    return content_hash(_content(resource))


def keep_server_additions(ours: Json, last_sent: Json | None, server: Json | None) -> Json:
    """``ours``, plus what the server holds that we never sent (a clinician's additions).

    - an element the server has and we neither render nor sent before is kept;
    - in an array element (notes, extensions, identifiers...), items the server has that were
      not in what we last sent and are not in ours are appended.
    A value we render always wins over a change made on the server to the same element:
    pull, which runs first in ``sync``, is where such concurrent changes are merged.
    """
    if not server:
        return ours
    body = copy.deepcopy(ours)
    sent = last_sent or {}
    for key, value in server.items():
        if key in _NOT_CONTENT or key == "resourceType":
            continue
        if key not in body:
            if key not in sent:
                body[key] = copy.deepcopy(value)
            continue
        if isinstance(value, list) and isinstance(body[key], list):
            previous = sent.get(key) or []
            body[key] += [
                copy.deepcopy(item)
                for item in value
                if item not in previous and item not in body[key]
            ]
    return body


def field_changes(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where ``after`` differs from ``before`` (for dry-run diffs)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}.{key}" if path else key
            if key not in before:
                out.append(f"+ {where}")
            elif key not in after:
                out.append(f"- {where}")
            else:
                out += field_changes(before[key], after[key], where)
        return out
    if before != after:
        return [f"~ {path}"]
    return []


def references(node: Any) -> Iterable[Json]:
    """Every Reference-like object (a dict with a string ``reference``) inside ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def point_references(body: Json, inside: set[str], known: Mapping[str, str]) -> Json:
    """``body`` with its ``urn:uuid:`` references resolved for the server.

    References to entries of the same bundle (``inside``) stay; those to resources the server
    already holds become ``Type/id`` (``known``: fullUrl -> Type/id); any other ``urn:uuid:``
    reference is left logical (its identifier and display), since it would not resolve.
    ``body`` is not changed: what changes is new, the rest is shared with it (a whole copy
    of every resource sent was a sixth of a push's CPU).
    """
    pointed: Json = _pointed(body, inside, known)
    return pointed


def _pointed(node: Any, inside: set[str], known: Mapping[str, str]) -> Any:
    """``node`` itself when nothing under it changes, else a new node along the changes."""
    if isinstance(node, dict):
        out: dict[str, Any] | None = None
        target = node.get("reference")
        if isinstance(target, str) and target.startswith("urn:uuid:") and target not in inside:
            out = dict(node)
            if target in known:
                out["reference"] = known[target]
            else:
                del out["reference"]
        for key, value in node.items():
            if isinstance(value, dict | list):
                changed = _pointed(value, inside, known)
                if changed is not value:
                    out = dict(node) if out is None else out
                    out[key] = changed
        return node if out is None else out
    if isinstance(node, list):
        items: list[Any] | None = None
        for at, value in enumerate(node):
            if isinstance(value, dict | list):
                changed = _pointed(value, inside, known)
                if changed is not value:
                    items = list(node) if items is None else items
                    items[at] = changed
        return node if items is None else items
    return node


def bundles(
    writes: Sequence[Write],
    size: int,
    kind: Literal["transaction", "batch"] = "transaction",
) -> list[list[Write]]:
    """Writes (not unchanged) cut into groups of at most ``size``, in dependency order.

    A batch cannot resolve references between its entries, so batch groups hold one
    dependency level each; transaction groups mix levels freely.
    """
    pending = sorted(
        (w for w in writes if w.action != "unchanged"), key=lambda w: LEVELS.get(w.resource_type, 9)
    )
    groups: list[list[Write]] = []
    for write in pending:
        level = LEVELS.get(write.resource_type, 9)
        if (
            not groups
            or len(groups[-1]) >= size
            or (kind == "batch" and LEVELS.get(groups[-1][0].resource_type, 9) != level)
        ):
            groups.append([])
        groups[-1].append(write)
    return groups


def request_of(write: Write, body: Json) -> Json:
    """The Bundle entry for one write.

    A resource the server has not confirmed yet is a conditional update by our identifier,
    so re-sending it after a crash or a lost response updates the same resource instead of
    creating a second one; on a server without conditional update, push has searched by
    identifier first and found none, so it is a create (``upsert``), with ``ifNoneExist``
    where the server allows it. A known resource is updated by its id with ``ifMatch`` on
    the last version we saw, so a clinician's concurrent edit is never overwritten unseen.
    """
    if write.link is None:
        query = f"identifier={write.identifier}"
        if write.upsert == "conditional-update":
            request: Json = {"method": "PUT", "url": f"{write.resource_type}?{query}"}
        else:
            request = {"method": "POST", "url": write.resource_type}
            if write.upsert == "conditional-create":
                request["ifNoneExist"] = query
        return {"fullUrl": write.full_url, "resource": body, "request": request}
    request = {"method": "PUT", "url": f"{write.resource_type}/{write.link.resource_id}"}
    if write.link.version_id:
        request["ifMatch"] = f'W/"{write.link.version_id}"'
    return {
        "fullUrl": write.full_url,
        "resource": {**body, "id": write.link.resource_id},
        "request": request,
    }


def bundle_of(
    group: Sequence[Write], kind: Literal["transaction", "batch"], known: Mapping[str, str]
) -> Json:
    inside = {w.full_url for w in group} if kind == "transaction" else set()
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [request_of(w, point_references(w.body, inside, known)) for w in group],
    }
