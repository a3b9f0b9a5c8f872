"""Settling a held patient by hand: ``fhir-bridge match PATIENT --connection C --accept ID``
(or ``--retry``), and the same through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from fhir_bridge.errors import InputError, ResourceGone, ResourceNotFound
from fhir_bridge.store import PatientMatch, Store

from ._connection import Connection


async def accept_match(
    store: Store,
    target: Connection,
    patient_id: str,
    server_id: str,
    *,
    by: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PatientMatch:
    """Take ``Patient/server_id`` of the connection's EHR as our patient's, after checking the
    server holds it; the patient's held entries are released (due now)."""
    if store.records.get("patient", patient_id) is None:
        raise InputError("PATIENT", f"no patient {patient_id!r} in the store")
    async with target.client(transport) as client:
        try:
            found = await client.read("Patient", server_id)
        except (ResourceNotFound, ResourceGone):
            raise InputError("--accept", f"{target.name} has no Patient/{server_id}") from None
    match = PatientMatch(
        target.name,
        patient_id,
        "matched",
        str(found.get("id") or server_id),
        "accepted",
        None,
        1,
        None,
        datetime.now(UTC),
        by,
    )
    store.matches.save(match)
    return match


def retry_match(store: Store, connection: str, patient_id: str) -> bool:
    """Forget the decision: the next push matches the patient again (held entries due now).
    False when there was none."""
    return store.matches.forget(connection, patient_id, datetime.now(UTC))
