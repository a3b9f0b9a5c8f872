"""Referral <-> FHIR ServiceRequest (US Core, Gravity SDOHCC) plus its referral-management Task."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import SDOHCC, US_CORE, code_in, head, notes_out, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import (
    Json,
    Reader,
    clean,
    concept_in,
    concept_out,
    note_in,
    note_out,
    period_in,
    period_out,
)
from ._narrative import concept_text, narrative
from ._refs import Resolver, party_out, ref_out, refs_in

PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
TASK_CODE = {
    "coding": [
        {
            "system": "http://hl7.org/fhir/CodeSystem/task-code",
            "code": "fulfill",
            "display": "Fulfill the focal request",
        }
    ]
}


def servicerequest_out(ctx: MappingContext, r: m.Referral) -> Json:
    profiles = [US_CORE + "us-core-servicerequest"]
    if r.sdoh_category is not None:
        profiles.append(SDOHCC + "SDOHCC-ServiceRequest")
    goals = [{"url": PERTAINS_TO_GOAL, "valueReference": ref_out(ctx, g, "goal")} for g in r.goals]
    return clean(
        {
            **head(ctx, "ServiceRequest", "referral", r, profiles),
            "text": narrative(
                "Referral",
                [
                    ("Service", concept_text(r.service)),
                    ("Status", r.status.value),
                    ("Kind", r.referral_kind.value),
                    ("Performer", r.performer.name if r.performer else None),
                    ("Tracking", r.tracking.status.value if r.tracking else None),
                ],
            ),
            "extension": goals,
            "status": v.REFERRAL_STATUS.to_fhir(r.status),
            "intent": v.REFERRAL_INTENT.to_fhir(r.intent),
            "category": [concept_out(c) for c in r.categories],
            "priority": v.REFERRAL_PRIORITY.to_fhir(r.priority) if r.priority else None,
            "code": concept_out(r.service),
            "subject": subject_out(ctx, r),
            "occurrenceDateTime": r.occurrence,
            "occurrencePeriod": period_out(r.occurrence_period),
            "authoredOn": r.authored_on,
            "requester": party_out(ctx, r.requester) if r.requester else None,
            "performer": [party_out(ctx, r.performer)] if r.performer else None,
            "reasonCode": [concept_out(c) for c in r.reason_codes],
            "reasonReference": [ref_out(ctx, x, "problem") for x in r.reasons],
            "supportingInfo": [{"reference": r.consent}] if r.consent else None,
            "note": notes_out(r),
        }
    )


def task_out(
    ctx: MappingContext,
    record: m.PatientRecord,
    tracking: m.Tracking,
    *,
    focus: Json,
    requester: m.Party | None,
    task_id: str,
) -> Json:
    """The Gravity Task for referral management that carries ``tracking``."""
    status_reason = {"text": tracking.reason} if tracking.reason else None
    return clean(
        {
            **head(
                ctx,
                "Task",
                "referral_task",
                record,
                [SDOHCC + "SDOHCC-TaskForReferralManagement"],
                record_id=task_id,
            ),
            "text": narrative(
                "Referral tracking",
                [("Status", tracking.status.value), ("Reason", tracking.reason)],
            ),
            "status": v.TASK_STATUS.to_fhir(tracking.status),
            "statusReason": status_reason,
            "businessStatus": {"text": tracking.business_status}
            if tracking.business_status
            else None,
            "intent": "order",
            "code": TASK_CODE,
            "focus": focus,
            "for": subject_out(ctx, record),
            "authoredOn": tracking.authored_on,
            "lastModified": tracking.last_modified,
            "requester": party_out(ctx, requester) if requester else None,
            "owner": party_out(ctx, tracking.owner) if tracking.owner else None,
            "output": [
                clean(
                    {
                        "type": concept_out(o.type),
                        "valueReference": {"reference": o.reference} if o.reference else None,
                        "valueString": o.text if not o.reference else None,
                    }
                )
                for o in tracking.outputs
            ],
            "note": [note_out(n) for n in tracking.notes],
        }
    )


def referral_out(ctx: MappingContext, r: m.Referral) -> list[Json]:
    out = [servicerequest_out(ctx, r)]
    if r.tracking is not None:
        focus = ref_out(ctx, m.Ref(id=r.id), "referral")
        out.append(task_out(ctx, r, r.tracking, focus=focus, requester=r.requester, task_id=r.id))
    return out


def referral_task_out(ctx: MappingContext, t: m.ReferralTask) -> Json:
    focus = ref_out(ctx, t.referral, "referral")
    task = task_out(ctx, t, t.tracking, focus=focus, requester=t.requester, task_id=t.id)
    task["note"] = notes_out(t) or task.get("note")
    return clean(task)


def servicerequest_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    status, intent, priority = r.get("status"), r.get("intent"), r.get("priority")
    for element, value in (("status", status), ("intent", intent)):
        if value is None:
            reader.add(element, "required")
    service = concept_in(reader.obj(r, "code"))
    if service is None:
        reader.add("code", "required: what is requested")
    goals = [
        e["valueReference"]
        for e in reader.objs(r, "extension")
        if e.get("url") == PERTAINS_TO_GOAL and isinstance(e.get("valueReference"), dict)
    ]
    consent = next(
        (
            s.get("reference")
            for s in reader.objs(r, "supportingInfo")
            if str(s.get("reference", "")).split("/")[-2:-1] == ["Consent"]
        ),
        None,
    )
    performers = reader.objs(r, "performer")
    requester = reader.obj(r, "requester")
    return clean(
        data
        | {
            "status": code_in(v.REFERRAL_STATUS, status, reader, "status"),
            "intent": code_in(v.REFERRAL_INTENT, intent, reader, "intent"),
            "priority": code_in(v.REFERRAL_PRIORITY, priority, reader, "priority"),
            "categories": [c for c in (concept_in(x) for x in reader.objs(r, "category")) if c],
            "service": service,
            "occurrence": r.get("occurrenceDateTime"),
            "occurrence_period": period_in(reader.obj(r, "occurrencePeriod")),
            "authored_on": r.get("authoredOn"),
            "requester": resolver.party_in(requester) if requester else None,
            "performer": resolver.party_in(performers[0]) if performers else None,
            "reason_codes": [c for c in (concept_in(x) for x in reader.objs(r, "reasonCode")) if c],
            "reasons": refs_in(resolver, reader.objs(r, "reasonReference"), "problem"),
            "goals": refs_in(resolver, goals, "goal"),
            "consent": consent,
        }
    )


def tracking_in(resolver: Resolver, t: Json, reader: Reader) -> Json:
    """The tracking part of a Task."""
    status = t.get("status")
    if status is None:
        reader.add("status", "required")
    owner = reader.obj(t, "owner")
    outputs = []
    for o in reader.objs(t, "output"):
        value = o.get("valueReference")
        ref: Json = value if isinstance(value, dict) else {}
        outputs.append(
            clean(
                {
                    "type": concept_in(o.get("type")),
                    "reference": ref.get("reference"),
                    "text": o.get("valueString")
                    or (None if ref.get("reference") else ref.get("display")),
                }
            )
        )
    return clean(
        {
            "status": code_in(v.TASK_STATUS, status, reader, "status"),
            "reason": (t.get("statusReason") or {}).get("text"),
            "business_status": (t.get("businessStatus") or {}).get("text"),
            "outputs": outputs,
            "owner": resolver.party_in(owner) if owner else None,
            "authored_on": t.get("authoredOn"),
            "last_modified": t.get("lastModified"),
            "notes": [n for n in (note_in(x) for x in reader.objs(t, "note")) if n],
        }
    )


def referral_task_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, t: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, t, reader, subject_element="for")
    focus = reader.obj(t, "focus")
    referral = resolver.ref_in(focus, "referral") if focus else None
    if referral is None:
        reader.add("focus", "required: the referral (ServiceRequest) this Task tracks")
    requester = reader.obj(t, "requester")
    return clean(
        data
        | {
            "referral": referral,
            "requester": resolver.party_in(requester) if requester else None,
            "tracking": tracking_in(resolver, t, reader),
        }
    )
