"""References: internal Ref/Party <-> FHIR Reference, and resolving references on import."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from fhir_bridge import model as m

from ._context import MappingContext
from ._datatypes import (
    Json,
    Reader,
    clean,
    concept_in,
    concept_out,
    identifier_in,
    identifier_out,
    name_in,
    period_in,
    period_out,
    telecom_in,
    telecom_out,
)
from ._extras import apply_residual, residual_of
from ._narrative import narrative

RESOURCE_TYPE = {
    "patient": "Patient",
    "careplan": "CarePlan",
    "goal": "Goal",
    "referral": "ServiceRequest",
    "referral_task": "Task",
    "problem": "Condition",
    "medication": "MedicationStatement",
    "careteam": "CareTeam",
    "encounter": "Encounter",
    "screening": "QuestionnaireResponse",
}
KIND_OF_TYPE = {v: k for k, v in RESOURCE_TYPE.items()} | {
    "MedicationRequest": "medication",
    "Observation": "screening_observation",  # derived from a screening's QuestionnaireResponse
}

PARTY_TYPE = {
    m.PartyKind.practitioner: "Practitioner",
    m.PartyKind.practitioner_role: "PractitionerRole",
    m.PartyKind.organization: "Organization",
    m.PartyKind.related_person: "RelatedPerson",
    m.PartyKind.patient: "Patient",
    m.PartyKind.care_team: "CareTeam",
    m.PartyKind.device: "Device",
}
PARTY_KIND_OF_TYPE = {v: k for k, v in PARTY_TYPE.items()}
# Parties of these kinds travel as resources of their own; the others stay references.
DIRECTORY_KINDS = (
    m.PartyKind.practitioner,
    m.PartyKind.practitioner_role,
    m.PartyKind.organization,
)
_RECORD_KIND_OF_PARTY = {m.PartyKind.patient: "patient", m.PartyKind.care_team: "careteam"}
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
DIRECTORY_PROFILES = {
    m.PartyKind.practitioner: _US_CORE + "us-core-practitioner",
    m.PartyKind.practitioner_role: _US_CORE + "us-core-practitionerrole",
    m.PartyKind.organization: _US_CORE + "us-core-organization",
}
"""The US Core profile each directory resource declares (and meets)."""
_NAME_PREFIXES = frozenset({"dr.", "dr", "mr.", "mrs.", "ms.", "miss", "prof.", "mx."})


def party_system_kind(kind: m.PartyKind) -> str:
    """The identifier kind used for a party: its record kind when it is one of our records."""
    return _RECORD_KIND_OF_PARTY.get(kind, kind.value)


# ---------------------------------------------------------------- internal -> FHIR


def ref_out(ctx: MappingContext, ref: m.Ref, kind: str) -> Json:
    if ref.reference is not None:
        return clean({"reference": ref.reference, "display": ref.display})
    if ref.id is None:
        return {"display": ref.display}
    return clean(
        {
            "reference": ctx.full_url(kind, ref.id),
            "type": RESOURCE_TYPE[kind],
            "identifier": ctx.identifier(kind, ref.id),
            "display": ref.display,
        }
    )


def party_out(ctx: MappingContext, party: m.Party) -> Json:
    system_kind = party_system_kind(party.kind)
    if party.reference is not None:
        out: Json = {"reference": party.reference}
        if party.identifiers:
            out["identifier"] = identifier_out(party.identifiers[0])
    elif party.id is not None:
        out = {"type": PARTY_TYPE[party.kind], "identifier": ctx.identifier(system_kind, party.id)}
        if party.kind in DIRECTORY_KINDS or party.kind in _RECORD_KIND_OF_PARTY:
            out = {"reference": ctx.full_url(system_kind, party.id), **out}
    else:
        out = {"type": PARTY_TYPE[party.kind]}
        if party.identifiers:
            out["identifier"] = identifier_out(party.identifiers[0])
    if party.name:
        out["display"] = party.name
    return out


def party_resource(ctx: MappingContext, party: m.Party) -> Json:
    """The Practitioner, PractitionerRole or Organization resource of a directory party."""
    assert party.id is not None
    assert party.kind in DIRECTORY_KINDS
    identifiers = [
        *(identifier_out(i) for i in party.identifiers),
        ctx.identifier(party.kind.value, party.id),
    ]
    telecom = telecom_out(party.phone, party.email)
    resource_type = PARTY_TYPE[party.kind]
    body: Json = {
        "resourceType": resource_type,
        "meta": {"profile": [DIRECTORY_PROFILES[party.kind]]},
        "text": narrative(resource_type, [("Name", party.name), ("Phone", party.phone)]),
        "identifier": identifiers,
    }
    if party.kind is m.PartyKind.organization:
        # a directory entry we refer to is an organisation in business (US Core: active 1..1)
        body |= clean({"active": True, "name": party.name, "telecom": telecom})
    elif party.kind is m.PartyKind.practitioner_role:
        body |= clean(
            {"practitioner": {"display": party.name} if party.name else None, "telecom": telecom}
        )
    else:
        body |= clean(
            {"name": [person_name(party.name)] if party.name else None, "telecom": telecom}
        )
    return apply_residual(body, party.fhir_extras)


def person_name(full: str) -> Json:
    """A HumanName from one display string ("Dr. Ana Lopez, RN"): the text as given, and the
    family (last word before a comma), given names, prefix and suffix US Core asks for."""
    main, _, rest = full.partition(",")
    words = main.split()
    prefix = []
    while len(words) > 1 and words[0].lower() in _NAME_PREFIXES:
        prefix.append(words.pop(0))
    return clean(
        {
            "text": full,
            "family": words[-1] if words else full.strip(),
            "given": words[:-1],
            "prefix": prefix,
            "suffix": [rest.strip()] if rest.strip() else [],
        }
    )


# ---------------------------------------------------------------- FHIR -> internal


@dataclass
class Found:
    """A resource of the input, known by its fullUrl and/or Type/id."""

    resource_type: str
    internal_id: str
    resource: Json


@dataclass
class Resolver:
    """Resolves references between the resources of one input (a Bundle, a file, a set)."""

    ctx: MappingContext
    by_key: dict[str, Found] = field(default_factory=dict)

    def register(self, resource: Json, full_url: str | None) -> Found:
        resource_type = str(resource.get("resourceType"))
        kind = KIND_OF_TYPE.get(resource_type)
        if kind is None and resource_type in PARTY_KIND_OF_TYPE:
            kind = PARTY_KIND_OF_TYPE[resource_type].value
        found = Found(resource_type, internal_id(self.ctx, resource, full_url, kind), resource)
        if full_url:
            self.by_key[full_url] = found
        if resource.get("id"):
            self.by_key[f"{resource_type}/{resource['id']}"] = found
            if full_url and "://" in full_url:
                self.by_key[full_url.rstrip("/")] = found
        return found

    def find(self, reference: str | None) -> Found | None:
        if not reference:
            return None
        if reference in self.by_key:
            return self.by_key[reference]
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            return self.by_key.get(f"{parts[-2]}/{parts[-1]}")
        return None

    def ref_in(self, data: Json, kind: str) -> Json | None:
        """A Reference as internal Ref data for a record of ``kind``."""
        reference = data.get("reference")
        display = data.get("display")
        found = self.find(reference)
        if found is not None and found.resource_type == RESOURCE_TYPE[kind]:
            return clean({"id": found.internal_id, "display": display})
        identifier = data.get("identifier") or {}
        value = identifier.get("value")
        if (
            value
            and self.ctx.kind_of_system(identifier.get("system")) == kind
            and reference in (None, self.ctx.full_url(kind, value))
        ):
            return clean({"id": value, "display": display})
        if reference is None and display is None:
            return None
        return clean({"reference": reference, "display": display})

    def party_in(self, data: Json) -> Json | None:
        reference = data.get("reference")
        display = data.get("display")
        identifier = data.get("identifier") or {}
        found = self.find(reference)
        type_name = data.get("type") or (found.resource_type if found else None)
        if type_name is None and isinstance(reference, str):
            head, _, query = reference.partition("?")
            type_name = head if query else (head.split("/")[-2] if "/" in head else None)
        kind = PARTY_KIND_OF_TYPE.get(str(type_name), m.PartyKind.practitioner)
        system_kind = party_system_kind(kind)
        if found is not None and found.resource_type in (PARTY_TYPE[k] for k in DIRECTORY_KINDS):
            return _directory_party(self.ctx, found, kind, display)
        if found is not None and found.resource_type in ("Patient", "CareTeam"):
            return clean({"kind": kind.value, "id": found.internal_id, "name": display})
        ours = self.ctx.kind_of_system(identifier.get("system")) == system_kind
        if (
            ours
            and identifier.get("value")
            and (
                reference is None
                or reference == self.ctx.full_url(system_kind, identifier["value"])
            )
        ):
            return clean({"kind": kind.value, "id": identifier["value"], "name": display})
        identifiers = [identifier_in(identifier)] if identifier.get("value") else []
        if not (reference or display or identifiers):
            return None
        return clean(
            {
                "kind": kind.value,
                "reference": reference,
                "name": display,
                "identifiers": identifiers,
            }
        )


def refs_in(resolver: Resolver, items: list[Json], kind: str) -> list[Json]:
    return [r for r in (resolver.ref_in(x, kind) for x in items) if r]


def parties_in(resolver: Resolver, items: list[Json]) -> list[Json]:
    return [p for p in (resolver.party_in(x) for x in items) if p]


def participation_out(ctx: MappingContext, x: m.Participation, who: str, roles: str) -> Json:
    """A participation as FHIR, under the resource's own element names (CareTeam: ``member``
    and ``role``; Encounter: ``individual`` and ``type``)."""
    return clean(
        {
            roles: [concept_out(r) for r in x.roles],
            who: party_out(ctx, x.party),
            "period": period_out(x.period),
        }
    )


def participations_in(
    resolver: Resolver, r: Json, reader: Reader, *, who: str, roles: str, why: str
) -> list[Json]:
    """The ``participant`` list as participations; one without a readable party is reported
    at ``participant[i].<who>`` with ``why``."""
    out = []
    for i, p in enumerate(reader.objs(r, "participant")):
        party_data = p.get(who)
        party = resolver.party_in(party_data) if isinstance(party_data, dict) else None
        if party is None:
            reader.add(f"participant[{i}].{who}", why)
            continue
        found = [c for c in (concept_in(x) for x in p.get(roles) or []) if c]
        out.append(clean({"party": party, "roles": found, "period": period_in(p.get("period"))}))
    return out


def _directory_party(
    ctx: MappingContext, found: Found, kind: m.PartyKind, display: str | None
) -> Json:
    resource = found.resource
    name: str | None = None
    if kind is m.PartyKind.organization:
        name = resource.get("name")
    elif kind is m.PartyKind.practitioner_role:
        name = (resource.get("practitioner") or {}).get("display")
    else:
        names = resource.get("name") or []
        if names:
            n = m.PersonName.model_validate(name_in(names[0]))
            name = n.display() or None
    own_system = ctx.system(kind.value)
    identifiers = [
        identifier_in(i)
        for i in resource.get("identifier") or []
        if i.get("system") != own_system and i.get("value")
    ]
    telecom = resource.get("telecom") or []
    data = clean(
        {
            "kind": kind.value,
            "id": found.internal_id,
            "name": name or display,
            "identifiers": identifiers,
            "phone": telecom_in(telecom, "phone"),
            "email": telecom_in(telecom, "email"),
        }
    )
    try:
        party = m.Party.model_validate(data)
    except ValueError:
        return data  # the reader of the record reports what is wrong with it
    # identifiers are the party's own field (an invalid NPI is left out on purpose)
    residual = residual_of(
        {k: v for k, v in resource.items() if k != "identifier"}, party_resource(ctx, party)
    )
    if residual:
        data["fhir_extras"] = residual
    return data


def identifiers_of(resource: Json) -> list[Json]:
    """A resource's identifiers as a list (QuestionnaireResponse has at most one, not a list)."""
    value = resource.get("identifier")
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [i for i in value if isinstance(i, dict)]
    return []


def internal_id(ctx: MappingContext, resource: Json, full_url: str | None, kind: str | None) -> str:
    """The internal id a received resource maps to.

    Our own identifier wins; then the resource id; then the uuid of a ``urn:uuid:`` fullUrl;
    then a hash of the content (stable for the same content).
    """
    if kind is not None:
        for identifier in identifiers_of(resource):
            if identifier.get("system") == ctx.system(kind) and identifier.get("value"):
                return str(identifier["value"])
    if resource.get("id"):
        return str(resource["id"])
    if full_url and full_url.startswith("urn:uuid:"):
        return full_url[len("urn:uuid:") :]
    digest = hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()
    return digest[:32]


def foreign_identifiers(ctx: MappingContext, kind: str, identifiers: list[Any]) -> list[Json]:
    """``identifiers`` without ours (which becomes the record id instead)."""
    return [
        identifier_in(i)
        for i in identifiers
        if isinstance(i, dict) and i.get("system") != ctx.system(kind) and i.get("value")
    ]
