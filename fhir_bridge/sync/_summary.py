"""What a sync run reports."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def int_fields(summary: Any) -> dict[str, int]:
    """The counters of a summary dataclass, by name, in declaration order."""
    return {
        f.name: getattr(summary, f.name)
        for f in fields(summary)
        if isinstance(getattr(summary, f.name), int)
    }
