"""FHIR data types <-> internal value types (codes, identifiers, periods, quantities, notes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fhir_bridge import model as m
from fhir_bridge.errors import MappingError, Problem

T = TypeVar("T")
Json = dict[str, Any]


def clean(data: Json) -> Json:
    """``data`` without None values and empty lists/objects (FHIR forbids empty elements)."""
    return {k: v for k, v in data.items() if v is not None and v not in ([], {})}


# ---------------------------------------------------------------- internal -> FHIR


def coding_out(code: m.Code) -> Json:
    return clean({"system": code.system, "code": code.code, "display": code.display})


def concept_out(concept: m.Concept | None) -> Json | None:
    if concept is None:
        return None
    return clean({"coding": [coding_out(c) for c in concept.codings], "text": concept.text})


def identifier_out(identifier: m.Identifier) -> Json:
    return clean(
        {
            "use": identifier.use,
            "type": concept_out(identifier.type),
            "system": identifier.system,
            "value": identifier.value,
            "assigner": {"display": identifier.assigner} if identifier.assigner else None,
        }
    )


def period_out(period: m.Period | None) -> Json | None:
    if period is None:
        return None
    return clean({"start": period.start, "end": period.end}) or None


def quantity_out(q: m.Quantity | None) -> Json | None:
    if q is None:
        return None
    value: float | int = int(q.value) if q.value.is_integer() else q.value
    return clean(
        {
            "value": value,
            "comparator": q.comparator,
            "unit": q.unit,
            "system": q.system,
            "code": q.code,
        }
    )


def range_out(r: m.Range | None) -> Json | None:
    if r is None:
        return None
    return clean({"low": quantity_out(r.low), "high": quantity_out(r.high)}) or None


def note_out(note: m.Note) -> Json:
    return clean({"authorString": note.author, "time": note.time, "text": note.text})


def name_out(name: m.PersonName) -> Json:
    return clean(
        {
            "use": name.use,
            "text": name.text,
            "family": name.family,
            "given": name.given,
            "prefix": name.prefix,
            "suffix": name.suffix,
        }
    )


def telecom_out(phone: str | None, email: str | None) -> list[Json]:
    out = []
    if phone:
        out.append({"system": "phone", "value": phone})
    if email:
        out.append({"system": "email", "value": email})
    return out


def address_out(a: m.Address | None) -> Json | None:
    if a is None:
        return None
    return clean(
        {
            "use": a.use,
            "text": a.text,
            "line": a.lines,
            "city": a.city,
            "district": a.district,
            "state": a.state,
            "postalCode": a.postal_code,
            "country": a.country,
        }
    )


# ---------------------------------------------------------------- FHIR -> internal


class Reader:
    """Collects every problem met while reading one resource, each with its FHIR path."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def at(self, element: str) -> str:
        return f"{self.path}.{element}"

    def add(self, element: str, reason: str) -> None:
        self.problems.append(Problem(self.at(element), reason))

    def guard(self, fn: Callable[[], T]) -> T | None:
        """Run ``fn``; record its MappingError's problems instead of raising."""
        try:
            return fn()
        except MappingError as exc:
            self.problems.extend(exc.problems)
            return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise MappingError(self.problems)

    def obj(self, data: Any, element: str) -> Json | None:
        value = data.get(element) if isinstance(data, dict) else None
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add(element, "expected an object")
            return None
        return value

    def objs(self, data: Json, element: str) -> list[Json]:
        value = data.get(element)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.add(element, "expected an array of objects")
            return []
        return value

    def text(self, data: Json, element: str) -> str | None:
        value = data.get(element)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(element, f"expected a string, got {type(value).__name__}")
            return None
        return value


def concept_in(data: Json | None) -> Json | None:
    """A CodeableConcept as internal concept data; None when it holds nothing we can keep."""
    if not data:
        return None
    codings = [
        clean({"system": c.get("system"), "code": c.get("code"), "display": c.get("display")})
        for c in data.get("coding") or []
        if isinstance(c, dict) and (c.get("code") is not None or c.get("display") is not None)
    ]
    out = clean({"codings": codings, "text": data.get("text")})
    return out or None


def first_code(data: Json | None, system: str | None = None) -> str | None:
    for coding in (data or {}).get("coding") or []:
        if system is None or coding.get("system") == system:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def identifier_in(data: Json) -> Json:
    return clean(
        {
            "use": data.get("use"),
            "type": concept_in(data.get("type")),
            "system": data.get("system"),
            "value": data.get("value"),
            "assigner": (data.get("assigner") or {}).get("display"),
        }
    )


def period_in(data: Json | None) -> Json | None:
    if not data:
        return None
    return clean({"start": data.get("start"), "end": data.get("end")}) or None


def quantity_in(data: Json | None) -> Json | None:
    if not data or data.get("value") is None:
        return None
    return clean(
        {
            "value": data.get("value"),
            "comparator": data.get("comparator"),
            "unit": data.get("unit"),
            "system": data.get("system"),
            "code": data.get("code"),
        }
    ) | ({"system": None} if "system" not in data else {})


def range_in(data: Json | None) -> Json | None:
    if not data:
        return None
    return (
        clean({"low": quantity_in(data.get("low")), "high": quantity_in(data.get("high"))}) or None
    )


def note_in(data: Json) -> Json | None:
    if not data.get("text"):
        return None
    author = data.get("authorString") or (data.get("authorReference") or {}).get("display")
    return clean({"text": data.get("text"), "time": data.get("time"), "author": author})


def name_in(data: Json) -> Json:
    return clean(
        {
            "use": data.get("use"),
            "text": data.get("text"),
            "family": data.get("family"),
            "given": data.get("given"),
            "prefix": data.get("prefix"),
            "suffix": data.get("suffix"),
        }
    )


def telecom_in(items: list[Json], system: str) -> str | None:
    for item in items:
        if item.get("system") == system and item.get("value"):
            return str(item["value"])
    return None


def address_in(data: Json | None) -> Json | None:
    if not data:
        return None
    return (
        clean(
            {
                "use": data.get("use"),
                "text": data.get("text"),
                "lines": data.get("line"),
                "city": data.get("city"),
                "district": data.get("district"),
                "state": data.get("state"),
                "postal_code": data.get("postalCode"),
                "country": data.get("country"),
            }
        )
        or None
    )
