"""Whole translations: records -> FHIR resources and Bundles, FHIR resources -> records."""

from __future__ import annotations

import functools
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError, Problem

from ._adherence import without_old_adherence
from ._careplan import careplan_in, careplan_out
from ._careteam import careteam_in, careteam_out
from ._common import instant
from ._condition import condition_in, condition_out
from ._conformance import check_resource
from ._context import MappingContext
from ._datatypes import Json, Reader
from ._encounter import encounter_in, encounter_out
from ._extras import apply_residual, residual_of
from ._goal import goal_in, goal_out
from ._medication import (
    medicationrequest_in,
    medicationrequest_out,
    medicationstatement_in,
    medicationstatement_out,
)
from ._patient import patient_in, patient_out
from ._referral import (
    referral_out,
    referral_task_in,
    referral_task_out,
    servicerequest_in,
    tracking_in,
)
from ._refs import DIRECTORY_KINDS, RESOURCE_TYPE, Resolver, identifiers_of, party_resource
from ._screening import derived_in, screening_in, screening_out

Reads = Callable[[MappingContext, Resolver, str, Json, Reader], Json]

_READERS: dict[str, tuple[Reads, type[m.Record]]] = {
    "Patient": (patient_in, m.Patient),
    "CarePlan": (careplan_in, m.CarePlan),
    "Goal": (goal_in, m.Goal),
    "ServiceRequest": (servicerequest_in, m.Referral),
    "Task": (referral_task_in, m.ReferralTask),
    "Condition": (condition_in, m.Problem),
    "MedicationStatement": (medicationstatement_in, m.Medication),
    "MedicationRequest": (medicationrequest_in, m.Medication),
    "CareTeam": (careteam_in, m.CareTeam),
    "Encounter": (encounter_in, m.Encounter),
    "QuestionnaireResponse": (screening_in, m.Screening),
}
IMPORTED_TYPES = frozenset(_READERS)


@dataclass(frozen=True, slots=True)
class Entry:
    """One emitted resource with the fullUrl that other entries reference it by."""

    full_url: str
    resource: Json
    kind: str
    record_id: str


# ------------------------------------------------------------------ internal -> FHIR


def _rendered(ctx: MappingContext, record: m.Record) -> list[Json]:
    """The resources of one record as the model alone describes them (no extras)."""
    if isinstance(record, m.Patient):
        return [patient_out(ctx, record)]
    if isinstance(record, m.CarePlan):
        return [careplan_out(ctx, record)]
    if isinstance(record, m.Goal):
        return [goal_out(ctx, record)]
    if isinstance(record, m.Referral):
        return referral_out(ctx, record)
    if isinstance(record, m.ReferralTask):
        return [referral_task_out(ctx, record)]
    if isinstance(record, m.Problem):
        return [condition_out(ctx, record)]
    if isinstance(record, m.Medication):
        if record.request is not None:
            return [medicationrequest_out(ctx, record)]
        return [medicationstatement_out(ctx, record)]
    if isinstance(record, m.CareTeam):
        return [careteam_out(ctx, record)]
    if isinstance(record, m.Encounter):
        return [encounter_out(ctx, record)]
    if isinstance(record, m.Screening):
        return screening_out(ctx, record)
    raise TypeError(f"not a record: {type(record).__name__}")


def resources_of(ctx: MappingContext, record: m.Record) -> list[Entry]:
    """The FHIR resources one record becomes, with extras kept from import restored."""
    entries = []
    for resource in _rendered(ctx, record):
        own = identifiers_of(resource)[-1]
        full_url = ctx.full_url(ctx.kind_of_system(own["system"]) or "", own["value"])
        apply_residual(resource, record.fhir_extras.get(resource["resourceType"], {}))
        # every resource of a record is that record's (a screening's Observations included)
        entries.append(Entry(full_url, resource, record.kind, record.id))
    return entries


def _parties(record: m.Record) -> Iterable[m.Party]:
    """Every Party held anywhere in a record."""
    stack: list[Any] = [record]
    while stack:
        item = stack.pop()
        if isinstance(item, m.Party):
            yield item
        elif isinstance(item, BaseModel):
            stack.extend(getattr(item, name) for name in _nested(type(item)))
        elif isinstance(item, list):
            stack.extend(item)


@functools.cache
def _nested(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` that can hold a model (a Party, or one holding a Party): the
    others (text, codes, dates) are not walked."""
    return tuple(name for name, info in model.model_fields.items() if _holds_model(info.annotation))


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


def directory_entries(ctx: MappingContext, records: Iterable[m.Record]) -> list[Entry]:
    """One Practitioner/PractitionerRole/Organization per directory party the records name."""
    return party_entries(ctx, (party for record in records for party in _parties(record)))


def party_entries(ctx: MappingContext, parties: Iterable[m.Party]) -> list[Entry]:
    """The directory resources of ``parties`` (those with an id, of a directory kind).

    When the same party appears several times, the first value of each detail wins.
    """
    merged: dict[tuple[m.PartyKind, str], m.Party] = {}
    for party in parties:
        if party.id is None or party.reference is not None or party.kind not in DIRECTORY_KINDS:
            continue
        key = (party.kind, party.id)
        if key not in merged:
            merged[key] = party.model_copy(deep=True)
            continue
        known = merged[key]
        for name in ("name", "phone", "email"):
            if getattr(known, name) is None and getattr(party, name) is not None:
                setattr(known, name, getattr(party, name))
        if not known.identifiers and party.identifiers:
            known.identifiers = list(party.identifiers)
        if not known.fhir_extras and party.fhir_extras:
            known.fhir_extras = dict(party.fhir_extras)
    return [
        Entry(ctx.full_url(kind.value, party_id), party_resource(ctx, party), kind.value, party_id)
        for (kind, party_id), party in merged.items()
    ]


def to_entries(
    records: Iterable[m.Record], ctx: MappingContext, *, check: bool = True
) -> list[Entry]:
    """All resources of ``records`` plus the directory resources they name.

    With ``check`` every resource is validated (R4B model, required bindings, US Core
    mandatory elements, narrative) and a MappingError lists every problem.
    """
    records = list(records)
    entries = [e for r in records for e in resources_of(ctx, r)]
    entries += directory_entries(ctx, records)
    if check:
        problems = [
            p
            for e in entries
            for p in check_resource(e.resource, f"{e.resource['resourceType']}[{e.record_id}]")
        ]
        if problems:
            raise MappingError(problems)
    return entries


def to_bundle(
    records: Iterable[m.Record],
    ctx: MappingContext,
    *,
    bundle_type: str = "collection",
    check: bool = True,
) -> Json:
    """A Bundle (``collection`` by default) of every resource of ``records``."""
    entries = to_entries(records, ctx, check=check)
    return {
        "resourceType": "Bundle",
        "type": bundle_type,
        "timestamp": instant(ctx.now),
        "entry": [{"fullUrl": e.full_url, "resource": e.resource} for e in entries],
    }


def check_package(package: m.PatientPackage) -> None:
    """Every internal reference of a package points at a record of it; MappingError if not."""
    known: dict[str, set[str]] = {kind: set() for kind in RESOURCE_TYPE}
    for record in package.records():
        known[record.kind].add(record.id)
    problems: list[Problem] = []
    groups: dict[str, Sequence[m.PatientRecord]] = {
        "care_plans": package.care_plans,
        "goals": package.goals,
        "referrals": package.referrals,
        "referral_tasks": package.referral_tasks,
        "problems": package.problems,
        "medications": package.medications,
        "care_teams": package.care_teams,
        "encounters": package.encounters,
        "screenings": package.screenings,
    }
    for group, items in groups.items():
        for index, record in enumerate(items):
            path = f"{group}[{index}]"
            if record.patient.id is not None and record.patient.id != package.patient.id:
                problems.append(
                    Problem(
                        f"{path}.patient", f"{record.patient.id!r} is not the package's patient"
                    )
                )
            for where, ref, kind in _internal_refs(record):
                if ref.id is not None and ref.reference is None and ref.id not in known[kind]:
                    problems.append(
                        Problem(f"{path}.{where}", f"no {kind} {ref.id!r} in this package")
                    )
    if problems:
        raise MappingError(problems)


def _internal_refs(record: m.PatientRecord) -> Iterable[tuple[str, m.Ref, str]]:
    if isinstance(record, m.CarePlan):
        for name, kind in (("goals", "goal"), ("addresses", "problem"), ("care_teams", "careteam")):
            for i, ref in enumerate(getattr(record, name)):
                yield f"{name}[{i}]", ref, kind
        for i, activity in enumerate(record.activities):
            if activity.referral is not None:
                yield f"activities[{i}].referral", activity.referral, "referral"
            if activity.planned is not None:
                for j, ref in enumerate(activity.planned.goals):
                    yield f"activities[{i}].planned.goals[{j}]", ref, "goal"
                for j, ref in enumerate(activity.planned.reasons):
                    yield f"activities[{i}].planned.reasons[{j}]", ref, "problem"
    elif isinstance(record, m.Goal):
        for i, ref in enumerate(record.addresses):
            yield f"addresses[{i}]", ref, "problem"
    elif isinstance(record, m.Referral):
        for i, ref in enumerate(record.reasons):
            yield f"reasons[{i}]", ref, "problem"
        for i, ref in enumerate(record.goals):
            yield f"goals[{i}]", ref, "goal"
    elif isinstance(record, m.Medication):
        for i, ref in enumerate(record.reasons):
            yield f"reasons[{i}]", ref, "problem"
    elif isinstance(record, m.Problem):
        for i, ref in enumerate(record.evidence):
            yield f"evidence[{i}]", ref, "screening"
    elif isinstance(record, m.ReferralTask):
        yield "referral", record.referral, "referral"

    elif isinstance(record, m.Encounter):
        for name, kind in (
            ("reasons", "problem"),
            ("goals", "goal"),
            ("referrals", "referral"),
        ):
            for i, ref in enumerate(getattr(record, name)):
                yield f"{name}[{i}]", ref, kind


def record_references(record: m.Record) -> Iterable[tuple[str, str, str]]:
    """(field, kind, id) of every internal reference a record makes, its patient included;
    references kept verbatim from a FHIR source (``reference``) are not internal ones."""
    if not isinstance(record, m.PatientRecord):
        return
    if record.patient.id is not None and record.patient.reference is None:
        yield "patient", "patient", record.patient.id
    for where, ref, kind in _internal_refs(record):
        if ref.id is not None and ref.reference is None:
            yield where, kind, ref.id


# ------------------------------------------------------------------ FHIR -> internal


@dataclass
class ImportResult:
    """Records read from FHIR, and the resources of types the internal model does not hold."""

    records: list[m.Record] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def from_fhir(
    resources: Iterable[tuple[Json, str | None]],
    ctx: MappingContext,
    *,
    where: Sequence[str] | None = None,
) -> ImportResult:
    """Read (resource, fullUrl) pairs, references resolved among them, into internal records.

    Resources of types the model does not hold are counted in ``skipped`` (and used to
    resolve references, e.g. Practitioner details). A MappingError lists every problem,
    located by ``where`` (one label per resource, e.g. its file and line) when given.
    """
    resolver = Resolver(ctx)
    items = [(resource, resolver.register(resource, full_url)) for resource, full_url in resources]
    tasks_by_focus = _tasks_by_focus(resolver, items)
    derived = _derived_by_response(resolver, items)
    attached = {id(task) for task in tasks_by_focus.values()} | {
        id(o) for observations in derived.values() for o in observations
    }

    result = ImportResult()
    problems: list[Problem] = []
    for index, (resource, found) in enumerate(items):
        resource_type = found.resource_type
        if resource_type in ("Task", "Observation") and id(resource) in attached:
            continue  # read with the resource it belongs to
        if resource_type not in _READERS:
            result.skipped[resource_type] += 1
            continue
        label = f"{resource_type}[{resource.get('id') or f'#{index + 1}'}]"
        if where is not None:
            label = f"{where[index]} {label}"
        reader = Reader(label)
        read, record_type = _READERS[resource_type]
        data = read(ctx, resolver, found.internal_id, resource, reader)
        if resource_type == "QuestionnaireResponse":
            derived_in(data, derived.get(id(resource), []))
        task = tasks_by_focus.get(id(resource))
        if task is not None:
            task_reader = Reader(f"Task[{task.get('id')}]")
            data["tracking"] = tracking_in(resolver, task, task_reader)
            reader.problems += task_reader.problems
        try:
            record = record_type.model_validate(data)
        except ValidationError as exc:
            # a required element the reader already reported comes back as 'missing': skip it
            problems += reader.problems + [
                Problem(f"{label}.{_dotted(e['loc'])}", e["msg"])
                for e in exc.errors()
                if not (reader.problems and e["type"] == "missing")
            ]
            continue
        if reader.problems:
            problems += reader.problems
            continue
        _keep_extras(ctx, record, resource, task)
        result.records.append(record)
    if problems:
        raise MappingError(problems)
    return result


def _dotted(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _tasks_by_focus(resolver: Resolver, items: list[tuple[Json, Any]]) -> dict[int, Json]:
    """For each ServiceRequest of the input, the first Task that tracks it (not a subtask)."""
    out: dict[int, Json] = {}
    for resource, found in items:
        if found.resource_type != "Task" or resource.get("partOf"):
            continue
        focus = resolver.find((resource.get("focus") or {}).get("reference"))
        if focus is not None and focus.resource_type == "ServiceRequest":
            out.setdefault(id(focus.resource), resource)
    return out


def _derived_by_response(
    resolver: Resolver, items: list[tuple[Json, Any]]
) -> dict[int, list[Json]]:
    """For each QuestionnaireResponse of the input, the Observations derived from it."""
    out: dict[int, list[Json]] = {}
    for resource, found in items:
        if found.resource_type != "Observation":
            continue
        for source in resource.get("derivedFrom") or []:
            target = resolver.find(source.get("reference") if isinstance(source, dict) else None)
            if target is not None and target.resource_type == "QuestionnaireResponse":
                out.setdefault(id(target.resource), []).append(resource)
                break
    return out


def _keep_extras(ctx: MappingContext, record: m.Record, resource: Json, task: Json | None) -> None:
    received = {resource["resourceType"]: resource}
    if task is not None:
        received["Task"] = task
    for rendered in _rendered(ctx, record):
        source = received.get(rendered["resourceType"])
        if source is not None:
            source = without_old_adherence(source)  # read into the record, sent the new way
            residual = residual_of(source, rendered)
            if residual:
                record.fhir_extras[rendered["resourceType"]] = residual
