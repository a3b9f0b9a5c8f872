"""The demographics an EHR owns on its Patient, as pull merges them (pure).

Pull reads an EHR's Patient only for these fields: name, birth date, gender, telecom (phone,
email) and address. Everything else of the internal patient (caregivers, preferred language,
identifiers from other facilities, ``active``) is the care manager's and never taken from a
pulled Patient. In ``match`` mode the EHR's Patient is the truth for the owned fields (taken
as they are, never a conflict, never pushed back); in ``create`` mode the same fields merge
three ways like any other record's.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
EHR_OWNED = ("names", "birth_date", "sex", "phone", "email", "address")


def owned_from(remote: Json, onto: Json) -> Json:
    """``onto`` with the EHR-owned fields replaced by ``remote``'s (absent there: removed)."""
    out = {k: v for k, v in onto.items() if k not in EHR_OWNED}
    for name in EHR_OWNED:
        value = remote.get(name)
        if value not in (None, []):
            out[name] = value
    return out
