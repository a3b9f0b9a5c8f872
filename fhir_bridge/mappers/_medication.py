"""Medication <-> FHIR MedicationStatement, or MedicationRequest (US Core medication list)."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._adherence import (
    ADHERENCE_ID,
    adherence_extension,
    adherence_observation,
    adherence_text,
    request_adherence_in,
    statement_adherence_in,
)
from ._common import US_CORE, code_in, head, notes_out, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import Json, Reader, clean, concept_in, concept_out, period_in, period_out
from ._narrative import concept_text, narrative
from ._refs import Resolver, party_out, ref_out, refs_in


def medicationstatement_out(ctx: MappingContext, x: m.Medication) -> Json:
    return clean(
        {
            **head(ctx, "MedicationStatement", "medication", x, []),
            "text": narrative(
                "Medication",
                [
                    ("Medication", concept_text(x.medication)),
                    ("Status", x.status.value),
                    ("Dosage", x.dosage),
                    ("Adherence", adherence_text(x.adherence)),
                ],
            ),
            "contained": [adherence_observation(ctx, x)] if x.adherence else None,
            "status": v.MEDICATION_STATUS.to_fhir(x.status),
            "medicationCodeableConcept": concept_out(x.medication),
            "subject": subject_out(ctx, x),
            "effectiveDateTime": x.effective,
            "effectivePeriod": period_out(x.effective_period),
            "dateAsserted": x.date_asserted,
            "informationSource": party_out(ctx, x.information_source)
            if x.information_source
            else None,
            "reasonReference": [ref_out(ctx, r, "problem") for r in x.reasons],
            "note": notes_out(x),
            "dosage": [{"text": x.dosage}] if x.dosage else None,
            "derivedFrom": [{"reference": "#" + ADHERENCE_ID}] if x.adherence else None,
        }
    )


def medicationstatement_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    status = r.get("status")
    if status is None:
        reader.add("status", "required")
    medication = concept_in(reader.obj(r, "medicationCodeableConcept"))
    if medication is None:
        reference = reader.obj(r, "medicationReference") or {}
        medication = {"text": reference["display"]} if reference.get("display") else None
    if medication is None:
        reader.add("medication[x]", "required: a coded medication or a display")
    adherence = statement_adherence_in(r, reader)
    source = reader.obj(r, "informationSource")
    dosages = reader.objs(r, "dosage")
    return clean(
        data
        | {
            "status": code_in(v.MEDICATION_STATUS, status, reader, "status"),
            "medication": medication,
            "dosage": dosages[0].get("text") if dosages else None,
            "effective": r.get("effectiveDateTime"),
            "effective_period": period_in(reader.obj(r, "effectivePeriod")),
            "date_asserted": r.get("dateAsserted"),
            "reasons": refs_in(resolver, reader.objs(r, "reasonReference"), "problem"),
            "adherence": adherence,
            "information_source": resolver.party_in(source) if source else None,
        }
    )


def medicationrequest_out(ctx: MappingContext, x: m.Medication) -> Json:
    request = x.request
    if request is None:
        raise ValueError("not a medication request")
    medication: Json = {"medicationCodeableConcept": concept_out(x.medication)}
    if request.medication_reference is not None:
        medication = {
            "medicationReference": clean(
                {"reference": request.medication_reference, "display": concept_text(x.medication)}
            )
        }
    return clean(
        {
            **head(
                ctx, "MedicationRequest", "medication", x, [US_CORE + "us-core-medicationrequest"]
            ),
            "text": narrative(
                "Medication request",
                [
                    ("Medication", concept_text(x.medication)),
                    ("Status", x.status.value),
                    ("Intent", request.intent.value),
                    ("Dosage", x.dosage),
                    ("Adherence", adherence_text(x.adherence)),
                ],
            ),
            "extension": [adherence_extension(x.adherence)] if x.adherence else None,
            "status": v.MEDICATION_STATUS.to_fhir(x.status),
            "intent": v.MEDICATION_INTENT.to_fhir(request.intent),
            "reportedBoolean": request.reported,
            "reportedReference": party_out(ctx, x.information_source)
            if x.information_source
            else None,
            **medication,
            "subject": subject_out(ctx, x),
            "authoredOn": request.authored_on,
            "requester": party_out(ctx, request.requester) if request.requester else None,
            "reasonReference": [ref_out(ctx, r, "problem") for r in x.reasons],
            "note": notes_out(x),
            "dosageInstruction": [{"text": x.dosage}] if x.dosage else None,
        }
    )


def _contained_code(r: Json, reference: str | None) -> Json | None:
    """The code of the contained Medication a ``#id`` reference names."""
    if not reference or not reference.startswith("#"):
        return None
    for item in r.get("contained") or []:
        if isinstance(item, dict) and item.get("id") == reference[1:]:
            return concept_in(item.get("code"))
    return None


def medicationrequest_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    status, intent = r.get("status"), r.get("intent")
    for element, value in (("status", status), ("intent", intent)):
        if value is None:
            reader.add(element, "required")
    medication = concept_in(reader.obj(r, "medicationCodeableConcept"))
    medication_reference = None
    if medication is None:
        reference = reader.obj(r, "medicationReference") or {}
        medication_reference = reference.get("reference")
        medication = _contained_code(r, medication_reference)
        if medication is None and reference.get("display"):
            medication = {"text": reference["display"]}
    if medication is None:
        reader.add("medication[x]", "required: a coded medication or a display")
    source, requester = reader.obj(r, "reportedReference"), reader.obj(r, "requester")
    dosages = reader.objs(r, "dosageInstruction")
    reported = r.get("reportedBoolean")
    if reported is not None and not isinstance(reported, bool):
        reader.add("reportedBoolean", "expected true or false")
        reported = None
    return clean(
        data
        | {
            "status": code_in(v.MEDICATION_STATUS, status, reader, "status"),
            "medication": medication,
            "dosage": dosages[0].get("text") if dosages else None,
            "reasons": refs_in(resolver, reader.objs(r, "reasonReference"), "problem"),
            "information_source": resolver.party_in(source) if source else None,
            "adherence": request_adherence_in(r, reader),
            "request": clean(
                {
                    "intent": code_in(v.MEDICATION_INTENT, intent, reader, "intent"),
                    "authored_on": r.get("authoredOn"),
                    "requester": resolver.party_in(requester) if requester else None,
                    "reported": reported,
                    "medication_reference": medication_reference,
                }
            ),
        }
    )
