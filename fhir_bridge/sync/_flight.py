"""Push, in flight: one run's directory writes and packs, sent while the run reads on.

A chunk's new directory writes (practitioners, organisations, roles) go after the earlier
chunks' ones (a chain of tasks), and the run goes on reading and planning the next chunk
meanwhile: on a link with latency a chunk's read no longer waits for a round trip. Each pack
waits for the directory writes started before it (the ids its references name), and at most
``max_in_flight`` packs are out at once. After a failure no new pack starts; every task runs
to its end, and every claimed patient's lease is given back, before the first failure is
raised (refused credentials first).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fhir_bridge.errors import AccessDenied, AuthError

from ._leases import Held, end_all
from ._pack import PackPusher
from ._plan import Write
from ._prepare import Patient
from ._summary import PushSummary


class InFlight:
    """The tasks of one push run, and the patients it claimed and has not ended yet."""

    def __init__(
        self,
        packer: PackPusher,
        summary: PushSummary,
        max_in_flight: int,
        *,
        sent: Callable[[int], None] = lambda entries: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.packer = packer
        self.summary = summary
        self.directory: dict[str, str] = {}  # fullUrl -> Type/id of directory resources
        self.failures: list[BaseException] = []
        self._sent = sent  # told the entries of each pack ended
        self._should_stop = should_stop
        self._gate = asyncio.Semaphore(max_in_flight)
        self._running: set[asyncio.Task[Any]] = set()
        self._claimed: dict[int, Patient] = {}
        self._written: asyncio.Task[bool] | None = None  # the latest directory writes

    def claimed(self, patients: Sequence[Patient]) -> None:
        self._claimed.update((id(p), p) for p in patients)

    def end(self, patients: Sequence[Patient]) -> None:
        """The patients' leases given back (once each, in one store transaction), each one
        found lost counted ``lease_lost``."""
        helds = self._ending(patients)
        end_all(helds)
        self.summary.lease_lost += sum(1 for held in helds if held.lost)

    async def _end_aside(self, patients: Sequence[Patient]) -> None:
        """As :meth:`end`, the store transaction in a thread (the other packs go on)."""
        helds = self._ending(patients)
        await asyncio.to_thread(end_all, helds)
        self.summary.lease_lost += sum(1 for held in helds if held.lost)

    def _ending(self, patients: Sequence[Patient]) -> list[Held]:
        for patient in patients:
            self._claimed.pop(id(patient), None)
        return [p.held for p in patients if p.held is not None and not p.held.ended]

    def write_directory(self, send: Callable[[], Awaitable[None]]) -> None:
        """Start ``send`` (directory writes) once the earlier ones are written."""

        async def after(earlier: asyncio.Task[bool] | None) -> bool:
            if earlier is not None and not await earlier:
                return False  # its failure is recorded
            try:
                await send()
            except BaseException as exc:
                self.failures.append(exc)
                return False
            return True

        self._written = self._start(after(self._written))

    async def send(self, pack: list[Patient]) -> bool:
        """Start ``pack`` when a place is free (False, and nothing started, after a failure
        or when asked to stop meanwhile)."""
        await self._gate.acquire()
        if self.failures or self._should_stop():
            self._gate.release()
            return False
        self._start(self._one(pack, self._written))
        return True

    async def _one(self, pack: list[Patient], written: asyncio.Task[bool] | None) -> None:
        try:
            if written is None or await written:
                await self.packer.push(pack, self.directory)
        except BaseException as exc:
            self.failures.append(exc)
        finally:
            self._gate.release()
            await self._end_aside(pack)
        self._sent(sum(len(p.entries) for p in pack))

    def _start(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def finish(self) -> None:
        """Wait for every task, give back the leases of patients never sent, then raise the
        first failure (refused credentials first)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self.end(list(self._claimed.values()))
        if self.failures:
            raise next(
                (f for f in self.failures if isinstance(f, AccessDenied | AuthError)),
                self.failures[0],
            )


def new_directory(
    ready: Sequence[Patient],
    directory: dict[str, str],
    sent: set[tuple[str, str]],
    summary: PushSummary,
) -> list[Write]:
    """The practitioners, organisations and roles the patients name that the server does not
    hold as we render them and no earlier chunk wrote (``sent``), each once; ``directory``
    learns the server ids the patients' links already know."""
    writes = []
    for patient in ready:
        for write in patient.directory:
            key = (write.resource_type, write.identifier)
            if key in sent:  # written for a patient before this one
                summary.unchanged += 1
                continue
            sent.add(key)
            writes.append(write)
        directory |= {k: v for k, v in patient.known.items() if k not in directory}
    return writes
