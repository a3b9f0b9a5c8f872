"""Ingest of internal records: PUT/GET/DELETE one, list by patient; ETag / If-Match."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Response, status
from pydantic import TypeAdapter, ValidationError

from fhir_bridge import model as m
from fhir_bridge.documents import records_from_data
from fhir_bridge.errors import MappingError, PatientHasRecords, Problem
from fhir_bridge.mappers import to_bundle
from fhir_bridge.sync import routing_of

from .._deps import MAX_ROW_ID, Read, SettingsDep, StoreDep, Write
from .._responses import FhirBundle, Record, RecordPage

COLLECTIONS = {
    "patients": "patient",
    "care-plans": "careplan",
    "goals": "goal",
    "referrals": "referral",
    "problems": "problem",
    "medications": "medication",
    "care-teams": "careteam",
    "encounters": "encounter",
    "screenings": "screening",
}
_RECORD = TypeAdapter(m.AnyRecord)
router = APIRouter(prefix="/v1", tags=["records"])


def _kind(collection: str) -> str:
    if collection not in COLLECTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no collection {collection!r}")
    return COLLECTIONS[collection]


def _etag(version: int) -> str:
    return f'W/"{version}"'


def _version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "If-Match must be an ETag we gave")
    return int(value)


def _validated(kind: str, record_id: str, body: dict[str, Any]) -> m.Record:
    data = {**body, "kind": kind, "id": body.get("id", record_id)}
    if data["id"] != record_id:
        raise MappingError([Problem("id", f"the body says {data['id']!r}, the path {record_id!r}")])
    try:
        return _RECORD.validate_python(data)
    except ValidationError as exc:
        raise MappingError(
            [Problem(".".join(str(p) for p in e["loc"][1:]), e["msg"]) for e in exc.errors()]
        ) from None


@router.put("/{collection}/{record_id}", dependencies=[Write], response_model=Record)
def put_record(
    collection: str,
    record_id: str,
    body: Annotated[dict[str, Any], Body()],
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> m.Record:
    """Store a record (queued for the connections it goes to); If-Match guards against lost
    updates."""
    record = _validated(_kind(collection), record_id, body)
    patient_id = record.patient.id if isinstance(record, m.PatientRecord) else None
    if patient_id is not None and store.records.is_deleted("patient", patient_id):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"patient {patient_id!r} was deleted here: put the patient again first",
        )
    existed = store.records.get_with_version(record.kind, record.id) is not None
    result = store.put_record_if(
        record, routing_of(settings), datetime.now(UTC), _version(if_match)
    )
    if result is None:
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED, "the record changed since that ETag"
        )
    response.headers["ETag"] = _etag(result.version)
    response.status_code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    return record


@router.get("/{collection}/{record_id}", dependencies=[Read], response_model=Record)
def get_record(collection: str, record_id: str, store: StoreDep, response: Response) -> m.Record:
    found = store.records.get_with_version(_kind(collection), record_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {collection} {record_id!r}")
    record, version = found
    response.headers["ETag"] = _etag(version)
    return record


@router.delete("/{collection}/{record_id}", dependencies=[Write], status_code=204)
def delete_record(
    collection: str,
    record_id: str,
    store: StoreDep,
    with_records: Annotated[
        bool,
        Query(
            description="A patient: delete its records with it (without this, a patient "
            "that has any is refused with 409)"
        ),
    ] = False,
) -> Response:
    """Delete a record; its deletion is queued for every connection that holds it (the next
    push marks it entered-in-error there, or deletes it where that is how the EHR takes it)."""
    try:
        deleted = store.delete_record(
            _kind(collection), record_id, datetime.now(UTC), with_records=with_records
        )
    except PatientHasRecords as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{exc} (with_records=true)") from None
    if deleted is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {collection} {record_id!r}")
    return Response(status_code=204)


@router.get("/{collection}", dependencies=[Read])
def list_records(
    collection: str,
    store: StoreDep,
    patient: Annotated[str | None, Query(description="Only this patient's records")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> RecordPage:
    rows = store.records.page(_kind(collection), patient, limit, offset)
    return RecordPage(
        items=[r for r, _ in rows],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(rows) == limit else None,
    )


@router.post("/map", dependencies=[Read], tags=["mapping"], response_model=FhirBundle)
def map_records(body: Annotated[Any, Body()], settings: SettingsDep) -> dict[str, Any]:
    """Preview: internal records (one, a list, or a package) as the FHIR Bundle we would send."""
    records = records_from_data(body, "body")
    return to_bundle(records, settings.mapping_context(datetime.now(UTC)))
