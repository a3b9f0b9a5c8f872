"""Generated narrative (``text``) for emitted resources: escaped XHTML, no scripts."""

from __future__ import annotations

from html import escape

from ._datatypes import Json

XHTML = "http://www.w3.org/1999/xhtml"


def narrative(title: str, rows: list[tuple[str, str | None]]) -> Json:
    """A ``generated`` narrative: a heading and a table of the rows that have a value."""
    cells = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>"
        for label, value in rows
        if value
    )
    table = f"<table>{cells}</table>" if cells else ""
    return {
        "status": "generated",
        "div": f'<div xmlns="{XHTML}"><p><b>{escape(title)}</b></p>{table}</div>',
    }


def concept_text(concept: object) -> str | None:
    """The best human text of an internal Concept."""
    text = getattr(concept, "text", None)
    if text:
        return str(text)
    for coding in getattr(concept, "codings", []) or []:
        if coding.display or coding.code:
            return str(coding.display or coding.code)
    return None


def joined(values: list[str | None]) -> str | None:
    present = [v for v in values if v]
    return ", ".join(present) if present else None
