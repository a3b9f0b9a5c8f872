"""A bulk initial load: the connection's patients' resources by FHIR Bulk Data ``$export``.

For a first pull of a large panel, one export job replaces thousands of paged searches: a
Patient-level ``$export`` narrowed to the patients linked on the connection (``patient``
parameters: only the enrolled patients, never the whole EHR), of every pulled type the
server's Patient compartment holds (the patients themselves included; HAPI refuses Task
there: it has no search parameter that points at a patient), polled as the server asks, its
NDJSON files read a line at a time and applied in pages with the same merge rules as pull
(``_incoming``). Each type's watermark is set to the export's ``transactionTime`` once its
files are applied, so the next (incremental) pull starts where the export stood; the types
not exported are pulled the ordinary way. The job is deleted on the server at the end,
whatever happened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from fhir_bridge.errors import NotSupportedByServer
from fhir_bridge.fhir import ExportFile, ExportManifest

from ._incoming import Page
from ._pull import PULLED_TYPES, Puller, PullServer, Sweep
from ._summary import PullSummary

log = logging.getLogger("fhir_bridge.sync")
Json = dict[str, Any]
# the pulled types a Patient-level export holds (Task has no patient search parameter), in
# the pull's dependency order
EXPORTED_TYPES = tuple(t for t in PULLED_TYPES if t != "Task")


class BulkServer(PullServer, Protocol):
    async def export_start(
        self,
        level: str = "Patient",
        *,
        types: Sequence[str] = (),
        since: str | None = None,
        patients: Sequence[str] = (),
    ) -> str: ...
    async def export_wait(
        self,
        status_url: str,
        *,
        timeout: float = 3600.0,
        first_pause: float = 1.0,
        longest_pause: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = ...,
        clock: Callable[[], float] = ...,
    ) -> ExportManifest: ...
    def export_lines(
        self, file: ExportFile, *, requires_access_token: bool = True
    ) -> AsyncIterator[Json]: ...
    async def export_delete(self, status_url: str) -> None: ...


class BulkPuller(Puller):
    """Pulls one connection by a Bulk Data export, then the rest by paged search."""

    server: BulkServer

    async def pull_bulk(
        self, *, longest_pause: float = 30.0, timeout: float = 3600.0
    ) -> tuple[PullSummary, int]:
        """The export applied, then an ordinary pull (Task; anything changed meanwhile).

        Returns the summary of both and how many resources the export delivered. Raises
        :class:`NotSupportedByServer` when the server declares no Patient-level ``$export``
        (nothing is done then: the caller may pull the ordinary way).
        """
        caps = await self.server.capabilities()
        if not caps.supports_operation("Patient", "export"):
            raise NotSupportedByServer("Patient", "$export")
        summary = PullSummary()
        managed = self.store.links.patients(self.connection)
        exported = 0
        if managed:
            exported = await self._export(managed, summary, longest_pause, timeout)
        rest = await self.pull()
        for name, value in rest.counts().items():
            setattr(summary, name, getattr(summary, name) + value)
        summary.problems.extend(rest.problems)
        return summary, exported

    async def _export(
        self, managed: dict[str, str], summary: PullSummary, longest_pause: float, timeout: float
    ) -> int:
        status_url = await self.server.export_start(
            "Patient", types=EXPORTED_TYPES, patients=sorted(managed)
        )
        exported = 0

        async def counted(lines: AsyncIterator[Json]) -> AsyncIterator[Json]:
            nonlocal exported
            async for resource in lines:
                exported += 1
                yield resource

        try:
            manifest = await self.server.export_wait(
                status_url, longest_pause=longest_pause, timeout=timeout
            )
            dead = self.leases.dead()
            async with self.leases.renewing():
                for resource_type in EXPORTED_TYPES:
                    files = [f for f in manifest.output if f.type == resource_type]
                    held = self.leases.claim("pull", resource_type, dead=dead)
                    if held is None:
                        summary.busy += 1
                        continue
                    with held:
                        page, sweep = Page(), Sweep(begun=True, since=manifest.transaction_time)
                        for file in files:
                            lines = counted(
                                self.server.export_lines(
                                    file, requires_access_token=manifest.requires_access_token
                                )
                            )
                            page = await self._take_all(
                                resource_type,
                                lines,
                                managed=managed,
                                page=page,
                                summary=summary,
                                lease=held.claim,
                                sweep=sweep,
                            )
                        # every file applied: the next pull starts where the export stood
                        page.watermark = sweep.since
                        self._apply(resource_type, page, held.claim)
                    if held.lost:
                        summary.busy += 1
        finally:
            await self.server.export_delete(status_url)
        log.info(
            "bulk export applied",
            extra={"action": "pull.bulk", "connection": self.connection, "count": exported},
        )
        return exported
