"""The FHIR R4 REST client: the request core and its interactions joined in one class."""

from __future__ import annotations

from ._bulk import BulkExport
from ._bundles import Bundles
from ._reads import Reads
from ._writes import Writes


class FhirClient(Reads, Writes, Bundles, BulkExport):
    """An async FHIR R4 client; use ``async with FhirClient(base_url) as fhir: ...``.

    Every request carries ``Accept: application/fhir+json``; at most ``max_in_flight`` are in
    flight at once; those safe to repeat are retried by ``retry`` (a bare POST create never
    is). With ``check_capabilities`` the server's CapabilityStatement is consulted (once)
    before each interaction and :class:`NotSupportedByServer` raised instead of sending.

    The request core (:class:`~fhir_bridge.fhir._core.ClientCore`: ``request``,
    ``capabilities``, retries, error mapping) is shared by the reads (``read``, ``vread``,
    ``search``, ``search_bundles``, ``history``), the writes (``create``, ``update``,
    ``conditional_update``, ``delete``), the bundles (``transaction``, ``batch``) and Bulk Data
    export (``export_start``, ``export_wait``, ``export_lines``, ``export_delete``).
    """
