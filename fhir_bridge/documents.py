"""Reading input documents: internal records (JSON) and FHIR (resource, Bundle or NDJSON).

Every failure is an InputError or MappingError naming the file, the line or record, and the
field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, TypeAdapter, ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import InputError, MappingError, Problem
from fhir_bridge.mappers import check_package

Json = dict[str, Any]
_RECORDS = TypeAdapter(m.AnyRecord)


def parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            source, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from None


def _problems(exc: ValidationError, prefix: str, *, tagged: bool = False) -> list[Problem]:
    out = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if tagged and loc and loc[0] in m.RECORD_TYPES:
            loc = loc[1:]  # the union's tag, not a field
        path = prefix + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc)
        reason = error["msg"]
        if error["type"] != "missing" and isinstance(error.get("input"), str | int | float | bool):
            reason += f" (got {error['input']!r})"
        out.append(Problem(path, reason))
    return out


def _npi_problems(item: Any, where: str) -> Iterable[Problem]:
    """Every identifier under ``item`` that claims to be an NPI and is not one."""
    if isinstance(item, m.Identifier):
        if item.system == m.NPI_SYSTEM:
            reason = m.npi_problem(item.value)
            if reason is not None:
                yield Problem(f"{where}.value", reason)
    elif isinstance(item, BaseModel):
        for name in type(item).model_fields:
            yield from _npi_problems(getattr(item, name), f"{where}.{name}")
    elif isinstance(item, list):
        for index, element in enumerate(item):
            yield from _npi_problems(element, f"{where}[{index}]")


def check_npis(records: Iterable[m.Record], source: str) -> None:
    """MappingError naming record and field of every invalid NPI (US Core us-core-16/17 would
    refuse it at the EHR; we say so at load)."""
    problems = [
        p
        for record in records
        for p in _npi_problems(record, f"{source}[{record.kind} {record.id}]")
    ]
    if problems:
        raise MappingError(problems)


class Enrolled(NamedTuple):
    """An enrolment a package carries, with where it stood (``file.enrolments[i]``)."""

    patient_id: str
    enrolment: m.Enrolment
    where: str


class Loaded(NamedTuple):
    """What an internal JSON document holds: records, and the enrolments of packages."""

    records: list[m.Record]
    enrolments: list[Enrolled]


def _is_package(data: Any) -> bool:
    return isinstance(data, dict) and (
        data.get("kind") == "package"
        or ("kind" not in data and isinstance(data.get("patient"), dict))
    )


def _package(data: Any, source: str) -> m.PatientPackage:
    try:
        package = m.PatientPackage.model_validate(data)
    except ValidationError as exc:
        raise MappingError(_problems(exc, source)) from None
    try:
        check_package(package)
    except MappingError as exc:
        raise exc.prefixed(source) from None
    check_npis(package.records(), source)
    return package


def load_data(data: Any, source: str) -> Loaded:
    """Records and enrolments from parsed JSON (a package's ``enrolments``; none elsewhere)."""
    if not _is_package(data):
        return Loaded(records_from_data(data, source), [])
    package = _package(data, source)
    enrolled = [
        Enrolled(package.patient.id, e, f"{source}.enrolments[{i}]")
        for i, e in enumerate(package.enrolments)
    ]
    return Loaded(list(package.records()), enrolled)


def read_loaded(path: Path) -> Loaded:
    """:func:`load_data` of a file."""
    return load_data(parse_json(_read_text(path), str(path)), str(path))


def records_from_data(data: Any, source: str) -> list[m.Record]:
    """Internal records from parsed JSON: one record, a list of records, or a patient package."""
    if _is_package(data):
        return list(_package(data, source).records())
    items = data if isinstance(data, list) else [data]
    records: list[m.Record] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        where = f"{source}[{index}]" if isinstance(data, list) else source
        if not isinstance(item, dict):
            problems.append(Problem(where, "expected a JSON object (a record)"))
            continue
        if "kind" not in item:
            kinds = ", ".join(m.RECORD_TYPES)
            problems.append(Problem(f"{where}.kind", f"required: one of {kinds} (or a package)"))
            continue
        try:
            records.append(_RECORDS.validate_python(item))
        except ValidationError as exc:
            problems += _problems(exc, where, tagged=True)
    if problems:
        raise MappingError(problems)
    check_npis(records, source)
    return records


def read_records(path: Path) -> list[m.Record]:
    return records_from_data(parse_json(_read_text(path), str(path)), str(path))


def _check_resource_type(resource: Any, source: str, line: int | None) -> Json:
    if not isinstance(resource, dict):
        raise InputError(source, "expected a FHIR resource (a JSON object)", line)
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise InputError(source, "not a FHIR resource: resourceType is missing", line)
    try:
        get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        raise InputError(source, f"unknown resourceType {resource_type!r}", line) from None
    return resource


class FhirItem(NamedTuple):
    """A resource read from a file, with its fullUrl and where it stood (file, line, entry)."""

    resource: Json
    full_url: str | None
    where: str


def _flatten(
    resource: Json, full_url: str | None, source: str, line: int | None
) -> Iterator[FhirItem]:
    if resource.get("resourceType") != "Bundle":
        yield FhirItem(resource, full_url, f"{source}:{line}" if line is not None else source)
        return
    for index, entry in enumerate(resource.get("entry") or []):
        inner = entry.get("resource") if isinstance(entry, dict) else None
        if inner is None:
            continue
        where = f"{source} entry[{index}]"
        yield from _flatten(
            _check_resource_type(inner, where, line), entry.get("fullUrl"), where, line
        )


def fhir_from_text(text: str, source: str) -> list[FhirItem]:
    """(resource, fullUrl) pairs from a FHIR JSON resource, a Bundle of any type, or NDJSON."""
    stripped = text.strip()
    if not stripped:
        raise InputError(source, "empty file")
    lines = [line for line in stripped.splitlines() if line.strip()]
    is_ndjson = (
        len(lines) > 1 and lines[0].lstrip().startswith("{") and lines[0].rstrip().endswith("}")
    )
    if is_ndjson:
        try:
            json.loads(lines[0])
        except json.JSONDecodeError:
            is_ndjson = False
    out: list[FhirItem] = []
    if is_ndjson:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                resource = _check_resource_type(
                    parse_json(line, f"{source}:{number}"), source, number
                )
                out += _flatten(resource, None, source, number)
        return out
    resource = _check_resource_type(parse_json(text, source), source, None)
    return list(_flatten(resource, None, source, None))


def read_fhir(path: Path) -> list[FhirItem]:
    return fhir_from_text(_read_text(path), str(path))


# --- NDJSON, streamed ----------------------------------------------------------------------


def is_ndjson(path: Path) -> bool:
    """Whether a file is read line by line: its name ends in ``.ndjson`` (or ``.jsonl``)."""
    return path.suffix.lower() in (".ndjson", ".jsonl")


def ndjson_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line, read a line at a time: memory
    holds one line however large the file. Errors name the file and the line."""
    source = str(path)
    try:
        with path.open("rb") as lines:  # bytes, decoded per line: a bad byte names its line
            for number, raw in enumerate(lines, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError(source, "not UTF-8 text", number) from None
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    reason = f"malformed JSON: {exc.msg} (column {exc.colno})"
                    raise InputError(source, reason, number) from None
                yield number, data
    except FileNotFoundError:
        raise InputError(source, "no such file") from None
    except IsADirectoryError:
        raise InputError(source, "is a directory") from None


def loaded_ndjson(path: Path) -> Iterator[Loaded]:
    """What each line of an internal NDJSON file holds (one record or one package a line),
    streamed; a problem is reported as ``FILE:LINE.field``."""
    for number, data in ndjson_lines(path):
        where = f"{path}:{number}"
        if isinstance(data, list):
            raise InputError(str(path), "one record or package per line, not a list", number)
        yield load_data(data, where)
