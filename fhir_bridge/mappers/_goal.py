"""Goal <-> FHIR Goal (US Core Goal; Gravity SDOH goals)."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import US_CORE, code_in, coded_in, head, notes_out, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import (
    Json,
    Reader,
    clean,
    concept_in,
    concept_out,
    quantity_in,
    quantity_out,
    range_in,
    range_out,
)
from ._narrative import concept_text, joined, narrative
from ._refs import Resolver, party_out, ref_out, refs_in


def _target_out(t: m.GoalTarget) -> Json:
    return clean(
        {
            "measure": concept_out(t.measure),
            "detailQuantity": quantity_out(t.quantity),
            "detailRange": range_out(t.range),
            "detailCodeableConcept": concept_out(t.concept),
            "detailString": t.text,
            "detailBoolean": t.boolean,
            "detailInteger": t.integer,
            "dueDate": t.due_date,
        }
    )


def _target_label(t: m.GoalTarget) -> str | None:
    value = None
    if t.quantity:
        value = f"{t.quantity.comparator or ''}{t.quantity.value:g} {t.quantity.unit or ''}".strip()
    elif t.text:
        value = t.text
    return joined([concept_text(t.measure), value, f"by {t.due_date}" if t.due_date else None])


def _coded(vocab: v.Vocabulary, value: object) -> Json | None:  # type: ignore[type-arg]
    if value is None:
        return None
    return {"coding": [{"system": vocab.system, "code": vocab.to_fhir(value)}]}


def goal_out(ctx: MappingContext, g: m.Goal) -> Json:
    return clean(
        {
            **head(ctx, "Goal", "goal", g, [US_CORE + "us-core-goal"]),
            "text": narrative(
                "Goal",
                [
                    ("Description", concept_text(g.description)),
                    ("Status", g.lifecycle_status.value),
                    ("Achievement", g.achievement_status.value if g.achievement_status else None),
                    ("Targets", joined([_target_label(t) for t in g.targets])),
                ],
            ),
            "lifecycleStatus": v.GOAL_LIFECYCLE.to_fhir(g.lifecycle_status),
            "achievementStatus": _coded(v.GOAL_ACHIEVEMENT, g.achievement_status),
            "category": [concept_out(c) for c in g.categories],
            "priority": _coded(v.GOAL_PRIORITY, g.priority),
            "description": concept_out(g.description),
            "subject": subject_out(ctx, g),
            "startDate": g.start_date,
            "target": [_target_out(t) for t in g.targets],
            "statusDate": g.status_date,
            "expressedBy": party_out(ctx, g.expressed_by) if g.expressed_by else None,
            "addresses": [ref_out(ctx, x, "problem") for x in g.addresses],
            "note": notes_out(g),
        }
    )


def _target_in(t: Json) -> Json:
    return clean(
        {
            "measure": concept_in(t.get("measure")),
            "quantity": quantity_in(t.get("detailQuantity")),
            "range": range_in(t.get("detailRange")),
            "concept": concept_in(t.get("detailCodeableConcept")),
            "text": t.get("detailString"),
            "boolean": t.get("detailBoolean"),
            "integer": t.get("detailInteger"),
            "due_date": t.get("dueDate"),
        }
    )


def goal_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    lifecycle = r.get("lifecycleStatus")
    if lifecycle is None:
        reader.add("lifecycleStatus", "required")
    description = concept_in(reader.obj(r, "description"))
    if description is None:
        reader.add("description", "required: a text or a code")
    expressed = reader.obj(r, "expressedBy")
    return clean(
        data
        | {
            "lifecycle_status": code_in(v.GOAL_LIFECYCLE, lifecycle, reader, "lifecycleStatus"),
            "achievement_status": coded_in(
                v.GOAL_ACHIEVEMENT, reader.obj(r, "achievementStatus"), reader, "achievementStatus"
            ),
            "priority": coded_in(v.GOAL_PRIORITY, reader.obj(r, "priority"), reader, "priority"),
            "categories": [c for c in (concept_in(x) for x in reader.objs(r, "category")) if c],
            "description": description,
            "start_date": r.get("startDate"),
            "status_date": r.get("statusDate"),
            "targets": [_target_in(t) for t in reader.objs(r, "target")],
            "addresses": refs_in(resolver, reader.objs(r, "addresses"), "problem"),
            "expressed_by": resolver.party_in(expressed) if expressed else None,
        }
    )
