"""Parts every resource mapper shares: identity, meta, subject and notes."""

from __future__ import annotations

from datetime import datetime

from fhir_bridge import model as m

from . import _vocab as v
from ._context import MappingContext
from ._datatypes import Json, Reader, first_code, note_in, note_out
from ._refs import Resolver, ref_out

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
EXTENSION_BASE = "https://fhir-bridge.example/fhir/StructureDefinition/"


def instant(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def head(
    ctx: MappingContext,
    resource_type: str,
    kind: str,
    record: m.Record,
    profiles: list[str],
    *,
    identifiers: list[Json] | None = None,
    record_id: str | None = None,
) -> Json:
    """resourceType, meta and identifier (the record's own last) of an emitted resource."""
    meta: Json = {"lastUpdated": instant(record.updated_at)}
    if profiles:
        meta = {"profile": profiles, **meta}
    return {
        "resourceType": resource_type,
        "meta": meta,
        "identifier": [*(identifiers or []), ctx.identifier(kind, record_id or record.id)],
    }


def subject_out(ctx: MappingContext, record: m.PatientRecord) -> Json:
    return ref_out(ctx, record.patient, "patient")


def notes_out(record: m.PatientRecord) -> list[Json]:
    return [note_out(n) for n in record.notes]


def base_in(ctx: MappingContext, record_id: str, resource: Json, reader: Reader) -> Json:
    """id and updated_at of a record read from ``resource``."""
    updated = (resource.get("meta") or {}).get("lastUpdated")
    if updated is not None and not isinstance(updated, str):
        reader.add("meta.lastUpdated", "expected an instant")
        updated = None
    value: str | datetime = updated or ctx.now
    return {"id": record_id, "updated_at": value}


def patient_record_in(
    ctx: MappingContext,
    resolver: Resolver,
    record_id: str,
    resource: Json,
    reader: Reader,
    *,
    subject_element: str = "subject",
) -> Json:
    """id, updated_at, patient and notes of a patient-owned record."""
    data = base_in(ctx, record_id, resource, reader)
    subject = reader.obj(resource, subject_element)
    patient = resolver.ref_in(subject, "patient") if subject else None
    if patient is None:
        reader.add(subject_element, "required: the patient this record belongs to is missing")
    data["patient"] = patient
    data["notes"] = [n for n in (note_in(x) for x in reader.objs(resource, "note")) if n]
    return data


def code_in(vocab: v.Vocabulary[v.E], code: object, reader: Reader, element: str) -> v.E | None:
    """The vocabulary's member for a FHIR code read at ``element``; None when there is none, a
    problem at ``element`` when the code is not in the vocabulary."""
    if code is None:
        return None
    return reader.guard(lambda: vocab.from_fhir(code, reader.at(element)))


def coded_in(
    vocab: v.Vocabulary[v.E], data: Json | None, reader: Reader, element: str
) -> v.E | None:
    """The vocabulary's member for a CodeableConcept: its coding in the vocabulary's system,
    else its first coding; None when it has no code, a problem at ``element`` when unknown."""
    return code_in(vocab, first_code(data, vocab.system) or first_code(data), reader, element)
