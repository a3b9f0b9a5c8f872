"""CarePlan <-> FHIR CarePlan (US Core CarePlan; activities by reference or planned detail)."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import US_CORE, code_in, head, instant, notes_out, patient_record_in, subject_out
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
from ._narrative import concept_text, joined, narrative
from ._refs import Resolver, parties_in, party_out, ref_out, refs_in

_TIMING_UNITS = ("min", "h", "d", "wk", "mo", "a")


def _timing_out(s: m.Schedule) -> Json:
    repeat = clean(
        {
            "boundsPeriod": period_out(s.bounds),
            "frequency": s.frequency,
            "period": s.period,
            "periodUnit": s.period_unit,
            "duration": s.duration,
            "durationUnit": s.duration_unit,
        }
    )
    return {"repeat": repeat} if repeat else {}


def _planned_out(ctx: MappingContext, p: m.PlannedActivity) -> Json:
    timing = _timing_out(p.schedule) if p.schedule else None
    return clean(
        {
            "kind": p.kind,
            "code": concept_out(p.code),
            "reasonReference": [ref_out(ctx, r, "problem") for r in p.reasons],
            "goal": [ref_out(ctx, g, "goal") for g in p.goals],
            "status": v.ACTIVITY_STATUS.to_fhir(p.status),
            "scheduledTiming": timing if timing else None,
            "scheduledPeriod": period_out(p.scheduled_period),
            "scheduledString": p.scheduled_text,
            "location": {"display": p.location} if p.location else None,
            "performer": [party_out(ctx, x) for x in p.performers],
            "description": p.description,
        }
    )


def _activity_out(ctx: MappingContext, a: m.Activity) -> Json:
    out: Json = {}
    if a.progress:
        out["progress"] = [note_out(n) for n in a.progress]
    if a.referral is not None:
        out["reference"] = ref_out(ctx, a.referral, "referral")
    elif a.reference is not None:
        out["reference"] = {"reference": a.reference}
    elif a.planned is not None:
        out["detail"] = _planned_out(ctx, a.planned)
    return out


def _activity_label(a: m.Activity) -> str | None:
    if a.planned is not None:
        return a.planned.description or concept_text(a.planned.code)
    if a.referral is not None:
        return f"Referral {a.referral.display or a.referral.id or a.referral.reference}"
    return a.reference


def careplan_out(ctx: MappingContext, c: m.CarePlan) -> Json:
    return clean(
        {
            **head(ctx, "CarePlan", "careplan", c, [US_CORE + "us-core-careplan"]),
            "text": narrative(
                c.title or "Care plan",
                [
                    ("Status", c.status.value),
                    ("Description", c.description),
                    ("Period", joined([c.period.start, c.period.end]) if c.period else None),
                    ("Author", c.author.name if c.author else None),
                    ("Activities", joined([_activity_label(a) for a in c.activities])),
                ],
            ),
            "status": v.CAREPLAN_STATUS.to_fhir(c.status),
            "intent": v.CAREPLAN_INTENT.to_fhir(c.intent),
            "category": [concept_out(x) for x in c.categories],
            "title": c.title,
            "description": c.description,
            "subject": subject_out(ctx, c),
            "period": period_out(c.period),
            "created": instant(c.created_at) if c.created_at else None,
            "author": party_out(ctx, c.author) if c.author else None,
            "contributor": [party_out(ctx, x) for x in c.contributors],
            "careTeam": [ref_out(ctx, t, "careteam") for t in c.care_teams],
            "addresses": [ref_out(ctx, x, "problem") for x in c.addresses],
            "goal": [ref_out(ctx, g, "goal") for g in c.goals],
            "activity": [_activity_out(ctx, a) for a in c.activities],
            "note": notes_out(c),
        }
    )


def _schedule_in(timing: Json, reader: Reader, path: str) -> Json:
    repeat = timing.get("repeat") or {}
    out = clean(
        {
            "frequency": repeat.get("frequency"),
            "period": repeat.get("period"),
            "period_unit": repeat.get("periodUnit"),
            "duration": repeat.get("duration"),
            "duration_unit": repeat.get("durationUnit"),
            "bounds": period_in(repeat.get("boundsPeriod")),
        }
    )
    for unit_key in ("periodUnit", "durationUnit"):
        if repeat.get(unit_key) not in (None, *_TIMING_UNITS):
            reader.add(f"{path}.repeat.{unit_key}", f"unknown unit {repeat[unit_key]!r}")
    return out


def _activity_in(resolver: Resolver, a: Json, reader: Reader, path: str) -> Json | None:
    progress = [n for n in (note_in(x) for x in a.get("progress") or []) if n]
    reference = a.get("reference")
    detail = a.get("detail")
    if isinstance(reference, dict):
        ref = resolver.ref_in(reference, "referral")
        if ref and "id" in ref:
            return clean({"referral": ref, "progress": progress})
        if reference.get("reference"):
            return clean({"reference": reference["reference"], "progress": progress})
    if isinstance(detail, dict):
        status = reader.guard(
            lambda: v.ACTIVITY_STATUS.from_fhir(
                detail.get("status"), reader.at(f"{path}.detail.status")
            )
        )
        timing = detail.get("scheduledTiming")
        location = detail.get("location") or {}
        planned = clean(
            {
                "kind": detail.get("kind"),
                "code": concept_in(detail.get("code")),
                "status": status,
                "description": detail.get("description"),
                "schedule": _schedule_in(timing, reader, f"{path}.detail.scheduledTiming")
                if isinstance(timing, dict)
                else None,
                "scheduled_period": period_in(detail.get("scheduledPeriod")),
                "scheduled_text": detail.get("scheduledString"),
                "performers": parties_in(resolver, detail.get("performer") or []),
                "goals": refs_in(resolver, detail.get("goal") or [], "goal"),
                "reasons": refs_in(resolver, detail.get("reasonReference") or [], "problem"),
                "location": location.get("display"),
            }
        )
        if isinstance(timing, dict) and "schedule" not in planned:
            planned["schedule"] = {}
        return clean({"planned": planned, "progress": progress})
    return None


def careplan_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    status, intent = r.get("status"), r.get("intent")
    if status is None:
        reader.add("status", "required")
    if intent is None:
        reader.add("intent", "required")
    activities = []
    for i, a in enumerate(reader.objs(r, "activity")):
        activity = _activity_in(resolver, a, reader, f"activity[{i}]")
        if activity is not None:
            activities.append(activity)
    author = reader.obj(r, "author")
    created = r.get("created")
    return clean(
        data
        | {
            "status": code_in(v.CAREPLAN_STATUS, status, reader, "status"),
            "intent": code_in(v.CAREPLAN_INTENT, intent, reader, "intent"),
            "title": r.get("title"),
            "description": r.get("description"),
            "categories": [c for c in (concept_in(x) for x in reader.objs(r, "category")) if c],
            "period": period_in(reader.obj(r, "period")),
            "author": resolver.party_in(author) if author else None,
            "contributors": parties_in(resolver, reader.objs(r, "contributor")),
            "care_teams": refs_in(resolver, reader.objs(r, "careTeam"), "careteam"),
            "addresses": refs_in(resolver, reader.objs(r, "addresses"), "problem"),
            "goals": refs_in(resolver, reader.objs(r, "goal"), "goal"),
            "activities": activities,
            "created_at": created if created and "T" in str(created) else None,
        }
    )
