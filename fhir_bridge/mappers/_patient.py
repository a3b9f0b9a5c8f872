"""Patient <-> FHIR Patient (US Core Patient)."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import US_CORE, base_in, code_in, head
from ._context import MappingContext
from ._datatypes import (
    Json,
    Reader,
    address_in,
    address_out,
    clean,
    concept_in,
    concept_out,
    identifier_out,
    name_in,
    name_out,
    telecom_in,
    telecom_out,
)
from ._narrative import concept_text, joined, narrative
from ._refs import Resolver, foreign_identifiers

CAREGIVER = {"system": "http://snomed.info/sct", "code": "133932002", "display": "Caregiver"}


def patient_out(ctx: MappingContext, p: m.Patient) -> Json:
    contacts = [
        clean(
            {
                "relationship": [concept_out(c.relationship)] if c.relationship else None,
                "name": name_out(c.name),
                "telecom": telecom_out(c.phone, c.email),
            }
        )
        for c in p.caregivers
    ]
    return clean(
        {
            **head(
                ctx,
                "Patient",
                "patient",
                p,
                [US_CORE + "us-core-patient"],
                identifiers=[identifier_out(i) for i in p.identifiers],
            ),
            "text": narrative(
                "Patient",
                [
                    ("Name", joined([n.display() for n in p.names[:1]])),
                    ("Birth date", p.birth_date),
                    ("Sex", p.sex.value if p.sex else None),
                    ("Identifiers", joined([i.value for i in p.identifiers])),
                    ("Phone", p.phone),
                    ("Preferred language", concept_text(p.preferred_language)),
                    ("Caregivers", joined([c.name.display() for c in p.caregivers])),
                ],
            ),
            "active": p.active,
            "name": [name_out(n) for n in p.names],
            "telecom": telecom_out(p.phone, p.email),
            "gender": v.GENDER.to_fhir(p.sex) if p.sex else None,
            "birthDate": p.birth_date,
            "address": [address_out(p.address)] if p.address else None,
            "contact": contacts,
            "communication": (
                [{"language": concept_out(p.preferred_language), "preferred": True}]
                if p.preferred_language
                else None
            ),
        }
    )


def patient_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = base_in(ctx, record_id, r, reader)
    telecom = reader.objs(r, "telecom")
    gender = r.get("gender")
    languages = reader.objs(r, "communication")
    preferred = next(
        (c for c in languages if c.get("preferred")), languages[0] if languages else None
    )
    addresses = reader.objs(r, "address")
    caregivers = []
    for contact in reader.objs(r, "contact"):
        if not isinstance(contact.get("name"), dict):
            continue
        relationships = contact.get("relationship") or []
        caregivers.append(
            clean(
                {
                    "name": name_in(contact["name"]),
                    "relationship": concept_in(relationships[0]) if relationships else None,
                    "phone": telecom_in(contact.get("telecom") or [], "phone"),
                    "email": telecom_in(contact.get("telecom") or [], "email"),
                }
            )
        )
    return clean(
        data
        | {
            "identifiers": foreign_identifiers(ctx, "patient", reader.objs(r, "identifier")),
            "names": [name_in(n) for n in reader.objs(r, "name")],
            "birth_date": r.get("birthDate"),
            "sex": code_in(v.GENDER, gender, reader, "gender"),
            "phone": telecom_in(telecom, "phone"),
            "email": telecom_in(telecom, "email"),
            "address": address_in(addresses[0]) if addresses else None,
            "preferred_language": concept_in((preferred or {}).get("language")),
            "caregivers": caregivers,
            "active": r.get("active"),
        }
    )
