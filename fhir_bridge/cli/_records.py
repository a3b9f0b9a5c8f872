"""Commands on internal records: the schema, mapping to and from FHIR, loading and reading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fhir_bridge import model as m
from fhir_bridge.config import load_settings
from fhir_bridge.documents import (
    Loaded,
    LoadedIds,
    is_ndjson,
    loaded_ndjson,
    read_fhir,
    read_loaded,
    read_records,
)
from fhir_bridge.errors import InputError, PatientHasRecords
from fhir_bridge.mappers import from_fhir, to_bundle
from fhir_bridge.sync import loaded_enrolments, routing_of

from ._app import fail, mapping_context, opened_store, print_json, reports_errors
from ._audit import audited

NDJSON_BATCH = 500  # lines of an .ndjson file stored per transaction
Files = Annotated[list[Path], typer.Argument(help="Input files", show_default=False)]
Namespace = Annotated[
    str | None,
    typer.Option(
        help="Identifier namespace (default: the configured one, from fhir-bridge.toml,"
        " $FHIR_BRIDGE_NAMESPACE or built-in)"
    ),
]


def schema() -> None:
    """Print the JSON Schema of the internal record format."""
    print_json(m.json_schema())


@reports_errors
def map_(files: Files, namespace: Namespace = None) -> None:
    """Translate internal JSON (a record, a list, or a patient package) into one FHIR Bundle."""
    records = [r for path in files for r in read_records(path)]
    print_json(to_bundle(records, mapping_context(namespace)))


@reports_errors
def import_(files: Files, namespace: Namespace = None) -> None:
    """Translate FHIR JSON (a resource, a Bundle or NDJSON) into internal records."""
    items = [item for path in files for item in read_fhir(path)]
    result = from_fhir(
        [(i.resource, i.full_url) for i in items],
        mapping_context(namespace),
        where=[i.where for i in items],
    )
    if result.skipped:
        kinds = ", ".join(f"{t} {n}" for t, n in sorted(result.skipped.items()))
        typer.echo(f"fhir-bridge: not held by the internal model, skipped: {kinds}", err=True)
    print_json([r.model_dump(mode="json", exclude_none=True) for r in result.records])


@reports_errors
@audited("load")
def load(files: Files) -> None:
    """Put internal records (or `fhir-bridge import` output) into the store and queue them
    for the connections they go to (a package's `enrolments` are stored too). `.ndjson`
    files (one record or package a line) are streamed: checked whole first, then stored in
    batches, so memory does not grow with the file."""
    settings = load_settings()
    streamed = [path for path in files if is_ndjson(path)]
    loaded = [read_loaded(path) for path in files if not is_ndjson(path)]
    ids = LoadedIds()
    for document in loaded:
        ids.add(document)
    for path in streamed:  # every line checked before anything is stored
        first: dict[tuple[str, str], str] = {}
        for line in loaded_ndjson(path):
            ids.add(line, first)
    records = [r for x in loaded for r in x.records]
    enrolments = loaded_enrolments(settings, [e for x in loaded for e in x.enrolments])
    now = datetime.now(UTC)
    with opened_store(settings) as store:
        ids.check(lambda kind, id_: store.records.get(kind, id_) is not None)
        results = store.put_records(records, routing_of(settings), now, enrolments=enrolments)
        count, changed = len(results), sum(r.changed for r in results)
        enrolled = len(enrolments)
        for path in streamed:
            for batch in _batches(loaded_ndjson(path), NDJSON_BATCH):
                batch_enrolments = loaded_enrolments(
                    settings, [e for x in batch for e in x.enrolments]
                )
                results = store.put_records(
                    [r for x in batch for r in x.records],
                    routing_of(settings),
                    now,
                    enrolments=batch_enrolments,
                )
                count += len(results)
                changed += sum(r.changed for r in results)
                enrolled += len(batch_enrolments)
    enrolled_text = f", {enrolled} enrolments" if enrolled else ""
    typer.echo(
        f"loaded {count} records: {changed} new or changed, "
        f"{count - changed} unchanged{enrolled_text}"
    )


def _batches(items: Iterator[Loaded], size: int) -> Iterator[list[Loaded]]:
    batch: list[Loaded] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


Kind = Annotated[
    str,
    typer.Argument(
        help="patient, careplan, goal, referral, problem, medication, careteam, encounter, "
        "screening"
    ),
]
RecordId = Annotated[str, typer.Argument(metavar="ID", help="The internal id")]


def _checked_kind(kind: str) -> None:
    if kind not in m.RECORD_TYPES:
        raise InputError("KIND", f"unknown kind {kind!r}; one of {', '.join(m.RECORD_TYPES)}")


@reports_errors
def get(kind: Kind, record_id: RecordId) -> None:
    """Print one stored record as internal JSON."""
    _checked_kind(kind)
    with opened_store() as store:
        record = store.records.get(kind, record_id)
        deleted = record is None and store.records.is_deleted(kind, record_id)
    if deleted:
        raise fail(f"{kind} {record_id!r} was deleted (kept, never pushed again)", 1)
    if record is None:
        raise fail(f"no {kind} {record_id!r} in the store", 1)
    print_json(record.model_dump(mode="json", exclude_none=True))


@reports_errors
@audited("delete")
def delete(
    kind: Kind,
    record_id: RecordId,
    with_records: Annotated[
        bool,
        typer.Option(
            "--with-records",
            help="A patient: delete its care plans, goals, referrals and other records with "
            "it (without this, a patient that has any is refused, exit 1)",
        ),
    ] = False,
) -> None:
    """Delete a stored record; the deletion reaches every EHR that holds it on the next push
    (entered-in-error where the resource has that status, else DELETE where allowed)."""
    _checked_kind(kind)
    with opened_store() as store:
        try:
            deleted = store.delete_record(
                kind, record_id, datetime.now(UTC), with_records=with_records
            )
        except PatientHasRecords as exc:
            raise fail(f"{exc} (--with-records)", 1) from None
        gone = deleted is None and store.records.is_deleted(kind, record_id)
    if gone:
        raise fail(f"{kind} {record_id!r} was deleted already", 1)
    if deleted is None:
        raise fail(f"no {kind} {record_id!r} in the store", 1)
    where = ", ".join(deleted.connections)
    typer.echo(
        f"deleted {kind} {record_id!r}"
        + (f" and {deleted.records} of its records" if deleted.records else "")
        + "; "
        + (f"its deletion is queued for {where}" if where else "never sent to an EHR")
    )
