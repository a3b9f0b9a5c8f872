"""Problem <-> FHIR Condition (US Core Condition Problems and Health Concerns; Gravity SDOHCC)."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import SDOHCC, US_CORE, coded_in, head, notes_out, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import (
    Json,
    Reader,
    clean,
    concept_in,
    concept_out,
    period_in,
    period_out,
)
from ._narrative import concept_text, narrative
from ._refs import Resolver, identifiers_of, party_out
from ._screening import OBSERVATION_KIND, observation_ref


def _status(vocab: v.Vocabulary, value: object) -> Json | None:  # type: ignore[type-arg]
    if value is None:
        return None
    return {"coding": [{"system": vocab.system, "code": vocab.to_fhir(value)}]}


def _evidence_out(ctx: MappingContext, p: m.Problem) -> list[Json]:
    """Each screening as ``evidence.detail``: the Observation that groups its answers."""
    details = [
        clean({**observation_ref(ctx, ref.id), "display": ref.display})
        if ref.id is not None and ref.reference is None
        else clean({"reference": ref.reference, "display": ref.display})
        for ref in p.evidence
    ]
    return [{"detail": [d]} for d in details if d]


def _evidence_in(ctx: MappingContext, resolver: Resolver, r: Json, reader: Reader) -> list[Json]:
    out = []
    for i, evidence in enumerate(reader.objs(r, "evidence")):
        for detail in reader.objs(evidence, "detail"):
            reference, display = detail.get("reference"), detail.get("display")
            found = resolver.find(reference)
            own = ctx.system(OBSERVATION_KIND)
            if found is not None:
                candidates = identifiers_of(found.resource)
                ours = found.resource_type == "Observation"
            else:
                candidates = [detail.get("identifier") or {}]
                ours = reference is None or any(
                    reference == ctx.full_url(OBSERVATION_KIND, str(c.get("value")))
                    for c in candidates
                    if isinstance(c, dict)
                )
            screening = next(
                (
                    str(c["value"])
                    for c in candidates
                    if isinstance(c, dict) and c.get("system") == own and c.get("value")
                ),
                None,
            )
            if ours and screening is not None:
                out.append(clean({"id": screening, "display": display}))
            elif reference or display:
                out.append(clean({"reference": reference, "display": display}))
            else:
                reader.add(f"evidence[{i}].detail", "a reference or a display is required")
    return out


def condition_out(ctx: MappingContext, p: m.Problem) -> Json:
    # the profile follows the category: an encounter diagnosis is not a problem-list item
    if p.category is m.ProblemCategory.encounter_diagnosis:
        profiles = [US_CORE + "us-core-condition-encounter-diagnosis"]
    else:
        profiles = [US_CORE + "us-core-condition-problems-health-concerns"]
    if p.sdoh_category is not None:
        profiles.append(SDOHCC + "SDOHCC-Condition")
    return clean(
        {
            **head(ctx, "Condition", "problem", p, profiles),
            "text": narrative(
                "Problem",
                [
                    ("Problem", concept_text(p.code)),
                    ("Category", p.category.value),
                    ("Clinical status", p.clinical_status.value if p.clinical_status else None),
                    ("Onset", p.onset),
                ],
            ),
            "clinicalStatus": _status(v.CLINICAL_STATUS, p.clinical_status),
            "verificationStatus": _status(v.VERIFICATION_STATUS, p.verification_status),
            "category": [concept_out(c) for c in p.categories],
            "code": concept_out(p.code),
            "subject": subject_out(ctx, p),
            "onsetDateTime": p.onset,
            "onsetPeriod": period_out(p.onset_period),
            "abatementDateTime": p.abatement,
            "recordedDate": p.recorded_date,
            "recorder": party_out(ctx, p.recorder) if p.recorder else None,
            "asserter": party_out(ctx, p.asserter) if p.asserter else None,
            "evidence": _evidence_out(ctx, p),
            "note": notes_out(p),
        }
    )


def condition_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    code = concept_in(reader.obj(r, "code"))
    if code is None:
        reader.add("code", "required: the problem's code or text")
    recorder, asserter = reader.obj(r, "recorder"), reader.obj(r, "asserter")
    return clean(
        data
        | {
            "code": code,
            "categories": [c for c in (concept_in(x) for x in reader.objs(r, "category")) if c],
            "clinical_status": coded_in(
                v.CLINICAL_STATUS, reader.obj(r, "clinicalStatus"), reader, "clinicalStatus"
            ),
            "verification_status": coded_in(
                v.VERIFICATION_STATUS,
                reader.obj(r, "verificationStatus"),
                reader,
                "verificationStatus",
            ),
            "onset": r.get("onsetDateTime"),
            "onset_period": period_in(reader.obj(r, "onsetPeriod")),
            "abatement": r.get("abatementDateTime"),
            "recorded_date": r.get("recordedDate"),
            "recorder": resolver.party_in(recorder) if recorder else None,
            "asserter": resolver.party_in(asserter) if asserter else None,
            "evidence": _evidence_in(ctx, resolver, r, reader),
        }
    )
