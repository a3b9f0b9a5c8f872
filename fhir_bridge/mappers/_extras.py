"""Lossless keeping of FHIR elements the internal model has no field for.

On import, the resource as received is compared with what the mapper renders from the new
internal record; what the rendering lacks is kept as a *residual*:

    {"add": {key: value as received}, "sub": {key: residual}}        for objects
    {"items": {"0": residual, ...}, "extra": [value, ...]}           for arrays (by position)
    {"extra": [value, ...]}                                          for arrays of plain values
    {"set": {"text": narrative}}                                     at the top, see below

Items of an array of objects are paired by identity where they have one (``system`` with
``value`` or ``code``: identifiers and codings), the others in order with the rendered items
left over. An identifier with no rendered twin (a hospital's) is never merged into ours: it
is kept as an item of its own. The keys of ``items`` are positions in the rendering.

On export the residual is applied to the fresh rendering: missing keys are added back, and
nothing the record itself renders is ever overwritten, with one exception: a narrative the
source wrote itself (``text.status`` other than ``generated``) replaces the one we generate.
Identifiers kept this way go before the record's own, which stays last. A key of a choice element
(``occurrence[x]``, ``author[x]``...) is not added when the rendering already holds another
type of the same element.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_CHOICE_BASES = frozenset(
    {
        "abatement",
        "age",
        "allowed",
        "answer",
        "author",
        "born",
        "collected",
        "dead",
        "deceased",
        "defaultValue",
        "detail",
        "dose",
        "due",
        "effective",
        "fixed",
        "item",
        "medication",
        "multipleBirth",
        "occurrence",
        "onset",
        "performed",
        "product",
        "rate",
        "reported",
        "scheduled",
        "serviced",
        "start",
        "subject",
        "timing",
        "used",
        "value",
    }
)
_CHOICE_RE = re.compile(r"^([a-z][A-Za-z]*?)([A-Z][A-Za-z]*)$")
_NEVER_KEPT = frozenset({"id", "resourceType"})
_NEVER_KEPT_META = frozenset({"versionId", "lastUpdated"})


def residual_of(received: dict[str, Any], rendered: dict[str, Any]) -> dict[str, Any]:
    """What ``received`` holds that ``rendered`` lacks (empty dict when nothing)."""
    trimmed = {k: v for k, v in received.items() if k not in _NEVER_KEPT}
    if isinstance(trimmed.get("meta"), dict):
        meta = {k: v for k, v in trimmed["meta"].items() if k not in _NEVER_KEPT_META}
        if meta:
            trimmed["meta"] = meta
        else:
            del trimmed["meta"]
    residual = _residual(trimmed, rendered) or {}
    text = received.get("text")
    if isinstance(text, dict) and text.get("status") not in (None, "generated"):
        residual.setdefault("add", {}).pop("text", None)
        residual.setdefault("sub", {}).pop("text", None)
        residual = {k: v for k, v in residual.items() if v}
        residual["set"] = {"text": copy.deepcopy(text)}
    return residual


def apply_residual(rendered: dict[str, Any], residual: dict[str, Any]) -> dict[str, Any]:
    """``rendered`` with the kept elements of ``residual`` added back (in place, and returned)."""
    if residual:
        _apply(rendered, residual)
        for key, value in residual.get("set", {}).items():
            rendered[key] = copy.deepcopy(value)
    return rendered


def _residual(received: Any, rendered: Any) -> dict[str, Any] | None:
    if isinstance(received, dict) and isinstance(rendered, dict):
        add = {k: v for k, v in received.items() if k not in rendered}
        sub = {}
        for key, value in received.items():
            if key in rendered:
                inner = _residual(value, rendered[key])
                if inner:
                    sub[key] = inner
        node: dict[str, Any] = {}
        if add:
            node["add"] = add
        if sub:
            node["sub"] = sub
        return node or None
    if isinstance(received, list) and isinstance(rendered, list):
        if not any(isinstance(x, dict | list) for x in received):
            # a list of plain values (e.g. meta.profile): keep those the rendering lacks
            missing = [x for x in received if x not in rendered]
            return {"extra": missing} if missing else None
        items: dict[str, Any] = {}
        extra = []
        taken: set[int] = set()
        paired = [_pair(got, rendered, taken) for got in received]
        free = iter(i for i in range(len(rendered)) if i not in taken)
        for got, pair in zip(received, paired, strict=True):
            position = pair
            if position is None and not _is_identifier(got):
                position = next(free, None)
            if position is None:
                extra.append(got)
                continue
            inner = _residual(got, rendered[position])
            if inner:
                items[str(position)] = inner
        node = {}
        if items:
            node["items"] = items
        if extra:
            node["extra"] = extra
        return node or None
    return None


def _identity(item: Any) -> tuple[str, str] | None:
    """What an array item is known by: its system with its value or code, if it has them."""
    if isinstance(item, dict):
        system, value = item.get("system"), item.get("value", item.get("code"))
        if isinstance(system, str) and isinstance(value, str):
            return system, value
    return None


def _is_identifier(item: Any) -> bool:
    return _identity(item) is not None and "value" in item


def _pair(got: Any, rendered: list[Any], taken: set[int]) -> int | None:
    """The first free position of a rendered item with ``got``'s identity (then taken)."""
    key = _identity(got)
    if key is None:
        return None
    for position, made in enumerate(rendered):
        if position not in taken and _identity(made) == key:
            taken.add(position)
            return position
    return None


def _choice_base(key: str) -> str | None:
    m = _CHOICE_RE.match(key)
    if m and m.group(1) in _CHOICE_BASES:
        return m.group(1)
    return None


def _apply(rendered: Any, node: dict[str, Any], element: str | None = None) -> None:
    if isinstance(rendered, dict):
        taken = {b for k in rendered if (b := _choice_base(k))}
        for key, value in node.get("add", {}).items():
            if key in rendered:
                continue
            base = _choice_base(key)
            if base and base in taken:
                continue
            rendered[key] = copy.deepcopy(value)
        for key, inner in node.get("sub", {}).items():
            if key in rendered:
                _apply(rendered[key], inner, key)
    elif isinstance(rendered, list):
        for index, inner in node.get("items", {}).items():
            position = int(index)
            if position < len(rendered):
                _apply(rendered[position], inner)
        extra = copy.deepcopy(node.get("extra", []))
        if element == "identifier" and rendered:
            rendered[-1:-1] = extra  # the record's own identifier stays last
        else:
            rendered.extend(extra)
