"""Push's Provenance: one per transaction, targeting the resources it writes.

Added only where the server takes Provenance writes (declared, and not refused at run time).
A transaction refused for good with the server's words naming Provenance (a 405 "Provenance
is read-only", a profile or validation error about it) makes the type remembered as refused,
like any write refusal (``_limits``), and the transaction is sent again without it: a server
that does not take Provenance never stops a push. Batches and single requests carry none
(nothing would tie it to the writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fhir_bridge.errors import BridgeError, FhirStatusError
from fhir_bridge.mappers import provenance_entry

from ._limits import Limits, write_refusal
from ._plan import Write

Json = dict[str, Any]
PROVENANCE = "Provenance"


def target_of(write: Write) -> str:
    """The written resource, as a reference the transaction resolves."""
    if write.link is not None:
        return f"{write.resource_type}/{write.link.resource_id}"
    return write.full_url


def with_provenance(
    bundle: Json,
    group: Sequence[Write],
    namespace: str | None,
    caps: Limits,
    recorded: datetime,
) -> bool:
    """Append the Provenance of ``group`` to a transaction ``bundle``; whether it was."""
    if namespace is None or not group or not caps.writable(PROVENANCE):
        return False
    targets = [target_of(w) for w in group]
    bundle["entry"].append(provenance_entry(namespace, targets, recorded))
    return True


def refuses_provenance(exc: BridgeError, caps: Limits) -> bool:
    """Whether a signed transaction was refused for its Provenance; remembered if so."""
    if not isinstance(exc, FhirStatusError):
        return False
    said = "; ".join(i.diagnostics or "" for i in exc.outcome.issues) or str(exc)
    if not exc.permanent or PROVENANCE not in said:  # another entry's fault, or passing
        return False
    caps.refused(write_refusal(PROVENANCE), exc.status, said[:200])
    return True
