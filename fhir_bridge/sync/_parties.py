"""Directory parties read back from a server, given the details the record holds (pure).

A pulled resource names a practitioner or organisation by reference (and, for ours, our
identifier); read back, that party is thin (id, kind, perhaps a display). The local record
holds the directory entry in full (NPI, phone, email). Merging the two would see every such
party as changed locally and push it back each pull, so before the merge each party of the
server's side whose kind and id the local record also names is given the local details.
"""

from __future__ import annotations

from typing import Any

from fhir_bridge import model as m

Json = dict[str, Any]
_KINDS = frozenset(k.value for k in m.PartyKind)


def _parties(value: Any, found: dict[tuple[str, str], Json], top: bool) -> None:
    if isinstance(value, dict):
        kind, pid = value.get("kind"), value.get("id")
        if not top and kind in _KINDS and isinstance(pid, str):
            found.setdefault((kind, pid), value)
        for item in value.values():
            _parties(item, found, False)
    elif isinstance(value, list):
        for item in value:
            _parties(item, found, False)


def _replace(value: Any, known: dict[tuple[str, str], Json], top: bool) -> Any:
    if isinstance(value, dict):
        kind, pid = value.get("kind"), value.get("id")
        if not top and isinstance(kind, str) and isinstance(pid, str) and (kind, pid) in known:
            return known[(kind, pid)]
        return {k: _replace(v, known, False) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, known, False) for v in value]
    return value


def with_local_parties(data: Json, local: Json) -> Json:
    """``data`` (a record as read from the server) with ``local``'s details of shared parties."""
    known: dict[tuple[str, str], Json] = {}
    _parties(local, known, True)
    replaced: Json = _replace(data, known, True)
    return replaced
