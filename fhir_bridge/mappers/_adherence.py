"""Medication adherence, coded, both ways (USCDI v4 Medication Adherence).

- On a **MedicationRequest**: US Core 7's ``us-core-medication-adherence`` extension
  (``medicationAdherence`` the code, ``dateAsserted``, ``informationSource`` the coded
  informants). The extension's context is MedicationRequest only.
- On a **MedicationStatement** (no US Core profile; the extension is not allowed there, and the
  R5 cross-version ``MedicationStatement.adherence`` extension is refused by US Core validators):
  a contained US Core Simple Observation, LOINC 71799-1 "Adherence to prescribed medication
  instructions [Reported]" with the adherence code as its value and the date asserted as its
  effective time, named by the statement's ``derivedFrom``.

Read back: both of the above, and the free-text extension of ours adherence was sent in before
(its text becomes the concept's text).
"""

from __future__ import annotations

from fhir_bridge import model as m

from ._common import EXTENSION_BASE, US_CORE, subject_out
from ._context import MappingContext
from ._datatypes import Json, Reader, clean, concept_in, concept_out
from ._narrative import concept_text

EXTENSION = US_CORE + "us-core-medication-adherence"
OLD_EXTENSION = EXTENSION_BASE + "medication-adherence"
"""The free-text extension of ours adherence was sent in before: read, never written."""
ADHERENCE_ID = "adherence"
LOINC = "http://loinc.org"
LOINC_ADHERENCE = "71799-1"
LOINC_DISPLAY = "Adherence to prescribed medication instructions [Reported]"
SIMPLE_OBSERVATION = US_CORE + "us-core-simple-observation"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def adherence_text(adherence: m.Adherence | None) -> str | None:
    """What the narrative and the handoff page show: the concept, and when it was said."""
    if adherence is None:
        return None
    said = concept_text(adherence.code)
    return f"{said} (as of {adherence.asserted})" if adherence.asserted else said


# ------------------------------------------------------------------ MedicationRequest


def adherence_extension(adherence: m.Adherence) -> Json:
    parts: list[Json] = [
        {"url": "medicationAdherence", "valueCodeableConcept": concept_out(adherence.code)}
    ]
    if adherence.asserted is not None:
        parts.append({"url": "dateAsserted", "valueDateTime": adherence.asserted})
    parts += [
        {"url": "informationSource", "valueCodeableConcept": concept_out(source)}
        for source in adherence.sources
    ]
    return {"url": EXTENSION, "extension": parts}


def request_adherence_in(r: Json, reader: Reader) -> Json | None:
    """The adherence of a MedicationRequest: US Core's extension (the last one given)."""
    found = [e for e in reader.objs(r, "extension") if e.get("url") == EXTENSION]
    if not found:
        return _old_text(r, reader)
    parts = reader.objs(found[-1], "extension")
    code = next(
        (
            concept_in(p.get("valueCodeableConcept"))
            for p in parts
            if p.get("url") == "medicationAdherence"
        ),
        None,
    )
    if code is None:
        reader.add("extension[us-core-medication-adherence].medicationAdherence", "required")
        return None
    asserted = next((p.get("valueDateTime") for p in parts if p.get("url") == "dateAsserted"), None)
    sources = [
        concept_in(p.get("valueCodeableConcept"))
        for p in parts
        if p.get("url") == "informationSource"
    ]
    return clean({"code": code, "asserted": asserted, "sources": [s for s in sources if s]})


# ------------------------------------------------------------------ MedicationStatement


def adherence_observation(ctx: MappingContext, x: m.Medication) -> Json:
    """The contained Observation a MedicationStatement's adherence is said in."""
    adherence = x.adherence
    if adherence is None:
        raise ValueError("no adherence")
    return clean(
        {
            "resourceType": "Observation",
            "id": ADHERENCE_ID,
            "meta": {"profile": [SIMPLE_OBSERVATION]},
            "status": "final",
            "category": [
                {"coding": [{"system": _CATEGORY, "code": "survey", "display": "Survey"}]}
            ],
            "code": {
                "coding": [{"system": LOINC, "code": LOINC_ADHERENCE, "display": LOINC_DISPLAY}],
                "text": "Medication adherence",
            },
            "subject": subject_out(ctx, x),
            "effectiveDateTime": adherence.asserted,
            "valueCodeableConcept": concept_out(adherence.code),
        }
    )


def statement_adherence_in(r: Json, reader: Reader) -> Json | None:
    """The adherence of a MedicationStatement: the contained LOINC 71799-1 Observation its
    ``derivedFrom`` names, else the old free-text extension."""
    named = {
        str(ref.get("reference"))[1:]
        for ref in reader.objs(r, "derivedFrom")
        if str(ref.get("reference") or "").startswith("#")
    }
    for item in reader.objs(r, "contained"):
        if item.get("resourceType") != "Observation" or item.get("id") not in named:
            continue
        codes = (item.get("code") or {}).get("coding") or []
        if not any(
            isinstance(c, dict) and c.get("system") == LOINC and c.get("code") == LOINC_ADHERENCE
            for c in codes
        ):
            continue
        code = concept_in(item.get("valueCodeableConcept"))
        if code is None:
            reader.add(f"contained[{item.get('id')}].valueCodeableConcept", "required")
            return None
        return clean({"code": code, "asserted": item.get("effectiveDateTime")})
    return _old_text(r, reader)


def _old_text(r: Json, reader: Reader) -> Json | None:
    text = next(
        (
            e.get("valueString")
            for e in reader.objs(r, "extension")
            if e.get("url") == OLD_EXTENSION
        ),
        None,
    )
    return {"code": {"text": text}} if isinstance(text, str) and text else None


def without_old_adherence(resource: Json) -> Json:
    """``resource`` without the old free-text extension (a copy when it had one)."""
    extensions = resource.get("extension")
    if not isinstance(extensions, list) or not any(
        isinstance(e, dict) and e.get("url") == OLD_EXTENSION for e in extensions
    ):
        return resource
    kept = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == OLD_EXTENSION)]
    out = {k: v for k, v in resource.items() if k != "extension"}
    return out | {"extension": kept} if kept else out
