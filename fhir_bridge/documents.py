"""Reading input documents: internal records (JSON) and FHIR (resource, Bundle or NDJSON).

Every failure is an InputError or MappingError naming the file, the line or record, and the
field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, TypeAdapter, ValidationError

from fhir_bridge import model as m
from fhir_bridge.errors import InputError, MappingError, Problem
from fhir_bridge.mappers import check_package, record_references

Json = dict[str, Any]
_RECORDS = TypeAdapter(m.AnyRecord)


MAX_JSON_DEPTH = 64
"""The deepest nesting of objects and arrays any JSON input may have (records and FHIR
resources stay far below it; a deeper document is refused, not recursed into)."""


class _NotANumberError(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


def _refuse_constant(name: str) -> Any:
    raise _NotANumberError(name)


def parse_json(text: str | bytes, source: str) -> Any:
    """Parsed JSON text (bytes must be UTF-8), checked by :func:`check_json`: an InputError
    or MappingError naming ``source`` (and the field) for anything else."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(source, f"not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            source, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from None
    except _NotANumberError as exc:
        raise InputError(source, f"{exc.name} is not a JSON number") from None
    except RecursionError:
        raise InputError(source, f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_json(data, source)
    return data


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_json(data: Any, source: str) -> None:
    """MappingError naming the field when parsed JSON nests deeper than MAX_JSON_DEPTH or holds
    a lone surrogate (``"\\ud800"``: not text, no database or server would take it)."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(data, source, 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, str):
            if _has_surrogate(value):
                problems.append(Problem(where, "holds a lone surrogate (not Unicode text)"))
            continue
        if not isinstance(value, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            problems.append(Problem(where, f"nested deeper than {MAX_JSON_DEPTH} levels"))
            continue
        if isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
            continue
        for key, item in value.items():
            if _has_surrogate(key):
                problems.append(Problem(where, "a field name holds a lone surrogate"))
                continue
            stack.append((item, f"{where}.{key}", depth + 1))
    if problems:
        problems.sort(key=lambda p: p.path)
        raise MappingError(problems)


def read_text(path: Path) -> str:
    """A file's text (UTF-8); an InputError naming the file when it cannot be read as such."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or type(exc).__name__}") from None


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
    """What an internal JSON document holds: records, and the enrolments of packages;
    ``wheres`` says where each record stood (``file.json[3]``, ``file.json.goals[0]``)."""

    records: list[m.Record]
    enrolments: list[Enrolled]
    wheres: list[str]


def _package_wheres(package: m.PatientPackage, source: str) -> list[str]:
    wheres = [f"{source}.patient"]
    for group in m.RECORD_GROUPS:
        wheres += [f"{source}.{group}[{i}]" for i in range(len(getattr(package, group)))]
    return wheres


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
        records = records_from_data(data, source)
        if isinstance(data, list):
            return Loaded(records, [], [f"{source}[{i}]" for i in range(len(records))])
        return Loaded(records, [], [source] * len(records))
    package = _package(data, source)
    enrolled = [
        Enrolled(package.patient.id, e, f"{source}.enrolments[{i}]")
        for i, e in enumerate(package.enrolments)
    ]
    records = list(package.records())
    wheres = _package_wheres(package, source)
    assert len(wheres) == len(records)
    return Loaded(records, enrolled, wheres)


@dataclass
class LoadedIds:
    """The ids a load gives and the internal references it makes, ids only (a streamed file is
    checked without holding its records): every id given twice in one document, and every
    reference to a record that is nowhere, named by place."""

    given: set[tuple[str, str]] = field(default_factory=set)
    references: list[tuple[str, str, str]] = field(default_factory=list)  # (where, kind, id)
    problems: list[Problem] = field(default_factory=list)

    def add(self, loaded: Loaded, first: dict[tuple[str, str], str] | None = None) -> None:
        """The records of one document (or one line of it: pass the document's ``first``)."""
        first = {} if first is None else first
        for record, where in zip(loaded.records, loaded.wheres, strict=True):
            key = (record.kind, record.id)
            if key in first:  # the second would silently replace the first
                self.problems.append(
                    Problem(where, f"{record.kind} {record.id!r} again (as {first[key]})")
                )
            else:
                first[key] = where
            self.given.add(key)
            for name, kind, target in record_references(record):
                self.references.append((f"{where}.{name}", kind, target))

    def check(self, exists: Callable[[str, str], bool]) -> None:
        """MappingError for every id given twice and every reference to a record neither in
        the documents nor, by ``exists(kind, id)``, in the store."""
        problems = self.problems + [
            Problem(where, f"no {kind} {target!r} in the file or the store")
            for where, kind, target in self.references
            if (kind, target) not in self.given and not exists(kind, target)
        ]
        if problems:
            raise MappingError(problems)


def read_loaded(path: Path) -> Loaded:
    """:func:`load_data` of a file."""
    return load_data(parse_json(read_text(path), str(path)), str(path))


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
    return records_from_data(parse_json(read_text(path), str(path)), str(path))


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
        except (ValueError, RecursionError):  # not JSON alone: read the file as one document
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
    return fhir_from_text(read_text(path), str(path))


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
                if not raw.strip():
                    continue
                # the same checks as a whole file: UTF-8, no NaN, depth, no lone surrogates
                try:
                    data = parse_json(raw, f"{source}:{number}")
                except InputError as exc:
                    raise InputError(source, exc.reason, number) from None
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
