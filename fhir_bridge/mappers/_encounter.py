"""Encounter <-> FHIR Encounter (US Core Encounter): check-ins with their minutes, hospital stays.

What a check-in addressed: problems are ``reasonReference``, referrals ``basedOn``; R4 has no
element for goals, so goals use the core ``resource-pertainsToGoal`` extension. R4 has no
element for the care plan either (``CarePlan.activity.outcomeReference`` points the other way):
an encounter does not name its care plan.
"""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import US_CORE, code_in, head, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import Json, Reader, clean, concept_in, concept_out, period_in, period_out
from ._narrative import concept_text, joined, narrative
from ._refs import Resolver, participation_out, participations_in, party_out, ref_out, refs_in

PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
UCUM = "http://unitsofmeasure.org"
_MINUTES_PER = {"min": 1.0, "s": 1 / 60, "h": 60.0, "d": 1440.0}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _length_out(minutes: float | None) -> Json | None:
    if minutes is None:
        return None
    return {"value": _number(minutes), "unit": "min", "system": UCUM, "code": "min"}


def encounter_out(ctx: MappingContext, e: m.Encounter) -> Json:
    stay = e.hospitalization
    extensions = [
        {"url": PERTAINS_TO_GOAL, "valueReference": ref_out(ctx, g, "goal")} for g in e.goals
    ]
    return clean(
        {
            **head(ctx, "Encounter", "encounter", e, [US_CORE + "us-core-encounter"]),
            "text": narrative(
                "Encounter",
                [
                    ("Type", joined([concept_text(t) for t in e.types])),
                    ("Class", e.encounter_class.value),
                    ("Status", e.status.value),
                    ("Start", e.period.start if e.period else None),
                    ("Minutes", str(_number(e.length_minutes)) if e.length_minutes else None),
                    (
                        "Discharge disposition",
                        concept_text(stay.discharge_disposition) if stay else None,
                    ),
                ],
            ),
            "extension": extensions,
            "status": v.ENCOUNTER_STATUS.to_fhir(e.status),
            "class": {
                "system": v.ENCOUNTER_CLASS.system,
                "code": v.ENCOUNTER_CLASS.to_fhir(e.encounter_class),
            },
            "type": [concept_out(t) for t in e.types],
            "subject": subject_out(ctx, e),
            "basedOn": [ref_out(ctx, r, "referral") for r in e.referrals],
            "participant": [
                participation_out(ctx, x, "individual", "type") for x in e.participants
            ],
            "period": period_out(e.period),
            "length": _length_out(e.length_minutes),
            "reasonCode": [concept_out(c) for c in e.reason_codes],
            "reasonReference": [ref_out(ctx, r, "problem") for r in e.reasons],
            "hospitalization": clean(
                {
                    "admitSource": concept_out(stay.admit_source),
                    "dischargeDisposition": concept_out(stay.discharge_disposition),
                }
            )
            if stay
            else None,
            "serviceProvider": party_out(ctx, e.service_provider) if e.service_provider else None,
        }
    )


def _length_in(data: Json | None, reader: Reader) -> float | None:
    if data is None or data.get("value") is None:
        return None
    value, unit = data.get("value"), data.get("code") or data.get("unit") or "min"
    if not isinstance(value, int | float) or isinstance(value, bool):
        reader.add("length.value", "expected a number")
        return None
    if unit not in _MINUTES_PER:
        reader.add("length.code", f"unknown unit {unit!r}; expected one of min, s, h, d")
        return None
    return float(value) * _MINUTES_PER[unit]


def _extension_refs(resolver: Resolver, r: Json, reader: Reader, url: str, kind: str) -> list[Json]:
    values: list[Json] = [
        x["valueReference"]
        for x in reader.objs(r, "extension")
        if x.get("url") == url and isinstance(x.get("valueReference"), dict)
    ]
    return refs_in(resolver, values, kind)


def encounter_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    status = r.get("status")
    if status is None:
        reader.add("status", "required")
    klass = reader.obj(r, "class") or {}
    if klass.get("code") is None:
        reader.add("class", "required: the kind of encounter (v3 ActCode)")
    stay = reader.obj(r, "hospitalization") or {}
    provider = reader.obj(r, "serviceProvider")
    return clean(
        data
        | {
            "status": code_in(v.ENCOUNTER_STATUS, status, reader, "status"),
            "encounter_class": code_in(v.ENCOUNTER_CLASS, klass.get("code"), reader, "class.code"),
            "types": [c for c in (concept_in(x) for x in reader.objs(r, "type")) if c],
            "period": period_in(reader.obj(r, "period")),
            "length_minutes": _length_in(reader.obj(r, "length"), reader),
            "participants": participations_in(
                resolver, r, reader, who="individual", roles="type", why="required: who took part"
            ),
            "reasons": refs_in(resolver, reader.objs(r, "reasonReference"), "problem"),
            "reason_codes": [c for c in (concept_in(x) for x in reader.objs(r, "reasonCode")) if c],
            "goals": _extension_refs(resolver, r, reader, PERTAINS_TO_GOAL, "goal"),
            "referrals": refs_in(resolver, reader.objs(r, "basedOn"), "referral"),
            "hospitalization": clean(
                {
                    "admit_source": concept_in(stay.get("admitSource")),
                    "discharge_disposition": concept_in(stay.get("dischargeDisposition")),
                }
            )
            or None,
            "service_provider": resolver.party_in(provider) if provider else None,
        }
    )
