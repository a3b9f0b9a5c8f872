"""Push throughput: the shared directory once first, small patients packed into one bundle,
each bundle recorded in one store transaction, the next chunk read while a bundle is out."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_bridge import model as m
from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient, RetryPolicy
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Claim, Store
from fhir_bridge.sync._prepare import Patient
from fhir_bridge.sync._push import CHUNK, Pusher
from tests.unit.sync.conftest import CONNECTION, FIXTURES, NOW, Clock, patient_records
from tests.unit.sync.fhir_server import BASE, FhirServer
from tests.unit.sync.test_push import bundles_sent, push

pytestmark = pytest.mark.anyio
DIRECTORY_TYPES = {"Practitioner", "PractitionerRole", "Organization"}


def patients(n: int, tmp_path: Path) -> list[m.Record]:
    """``n`` copies of the fixture patient (13 resources each), every record id their own,
    the practitioners and organisations they name shared."""
    base = (FIXTURES / "cc-diabetes-heart-failure.json").read_text()
    found: list[m.Record] = []
    for i in range(n):
        copy = tmp_path / f"patient-{i}.json"
        copy.write_text(base.replace("-rivera", f"-r{i}"))
        found += read_records(copy)
    assert len(found) == n * len(patient_records())
    return found


async def test_small_patients_go_packed_after_the_directory_written_once(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    records = patients(4, tmp_path)
    store.put_records(records, [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock, bundle_size=50)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    assert summary.created == 3 + 4 * 13
    sent = bundles_sent(server)
    # the directory (once, for all four), then three patients in one bundle, then the fourth
    assert [len(b["entry"]) for b in sent] == [3, 3 * 13, 13]
    assert {e["resource"]["resourceType"] for e in sent[0]["entry"]} <= DIRECTORY_TYPES
    assert not any(
        e["resource"]["resourceType"] in DIRECTORY_TYPES for b in sent[1:] for e in b["entry"]
    )
    for resource_type in DIRECTORY_TYPES:
        identifiers = [
            i["value"] for r in server.of_type(resource_type) for i in r.get("identifier", [])
        ]
        assert len(identifiers) == len(set(identifiers))  # no copy of a shared party
    assert store.outbox.due(CONNECTION, clock()) == []
    # each patient's references point at its own Patient on the server
    for i in range(4):
        patient_id = server.ours("Patient", f"pat-r{i}")["id"]
        plan = next(p for p in server.of_type("CarePlan") if f"-r{i}-" in json.dumps(p))
        assert plan["subject"]["reference"] == f"Patient/{patient_id}"


async def test_each_bundle_is_recorded_in_one_store_transaction(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    store.put_records(patients(4, tmp_path), [CONNECTION], NOW)
    calls: list[dict[str, Any]] = []
    record_push = store.record_push

    def counting(**kwargs: Any) -> None:
        calls.append(kwargs)
        record_push(**kwargs)

    store.record_push = counting  # type: ignore[method-assign]
    summary = await push(store, server, ctx, clock, bundle_size=50)
    assert summary.created == 55
    # one per bundle: the directory, the pack of three, the fourth patient
    assert [len(c["written"]) for c in calls] == [3, 39, 13]
    assert [len(c["closing"]) for c in calls] == [0, 3 * 12, 12]  # 12 records per patient
    assert [len(c["leases"]) for c in calls] == [0, 3, 1]
    assert len(store.log.recent(action="created")) == 55


async def test_a_patient_larger_than_a_bundle_goes_alone_in_several(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    store.put_records(patients(2, tmp_path), [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock, bundle_size=10)
    assert summary.created == 3 + 2 * 13
    directory, *rest = bundles_sent(server)
    assert len(directory["entry"]) == 3
    by_patient: dict[str, list[int]] = {}
    for bundle in rest:  # the two patients' bundles may interleave; each patient's in order
        (patient,) = set(re.findall(r"-r(\d+)\b", json.dumps(bundle)))
        by_patient.setdefault(patient, []).append(len(bundle["entry"]))
    assert by_patient == {"0": [10, 3], "1": [10, 3]}
    assert store.outbox.due(CONNECTION, clock()) == []


async def test_a_lease_lost_inside_a_shared_bundle_drops_that_patient_and_records_the_others(
    store: Store, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    """Three patients go in one bundle; while it is at the server another process takes the
    second patient's lease over. The other two are recorded (links, log, entries closed);
    nothing is recorded for the second, whose entries stay queued, and the next push writes
    its resources again in place, without a copy."""
    holder = "push:here:1:aaaaaa"
    other = "push:elsewhere:1:bbbbbb"
    taken: list[Claim] = []

    def take_over(method: str, resource: dict[str, Any]) -> None:
        if not taken and resource["resourceType"] not in DIRECTORY_TYPES:
            claim = store.leases.claim(
                CONNECTION, "push", "pat-r1", holder=other, now=clock(), seconds=60, dead=[holder]
            )
            assert claim is not None
            taken.append(claim)

    server = FhirServer(refuse=take_over)
    store.put_records(patients(3, tmp_path), [CONNECTION], NOW)
    calls: list[dict[str, Any]] = []
    record_push = store.record_push

    def counting(**kwargs: Any) -> None:
        calls.append(kwargs)
        record_push(**kwargs)

    store.record_push = counting  # type: ignore[method-assign]
    summary = await push(store, server, ctx, clock, bundle_size=50, holder=holder)
    assert [len(b["entry"]) for b in bundles_sent(server)] == [3, 3 * 13]  # one shared bundle
    assert len(server.of_type("Patient")) == 3  # the server took all three
    assert summary.lease_lost == 1
    assert summary.created == 3 + 2 * 13  # the directory and the two still held
    # the pack's transaction was refused for the lost lease, then written without that patient
    assert [sorted(c.key for c in call["leases"]) for call in calls[1:]] == [
        ["pat-r0", "pat-r1", "pat-r2"],
        ["pat-r0", "pat-r2"],
    ]
    due = store.outbox.due(CONNECTION, clock())
    assert {e.patient_id for e in due} == {"pat-r1"}
    assert len(due) == 12
    logged = [row.identifier for row in store.log.recent() if row.action == "created"]
    assert len(logged) == 3 + 2 * 13
    mine = [i for i in logged if re.search(r"-r\d", i)]
    assert len(mine) == 2 * 13  # every patient resource is named for its patient
    assert not any("-r1" in identifier for identifier in mine)
    # what the server took for the lost patient is not trusted: written again in place
    store.leases.release(taken[0])
    server.refuse = None
    again = await push(store, server, ctx, clock, bundle_size=50, holder=holder)
    assert (again.created, again.updated, again.lease_lost) == (0, 13, 0)
    assert len(server.of_type("Patient")) == 3
    assert store.outbox.due(CONNECTION, clock()) == []


async def test_a_packed_bundle_carries_one_provenance_of_every_patient_in_it(
    store: Store, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    server = FhirServer(provenance=True)
    store.put_records(patients(4, tmp_path), [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock, bundle_size=50)
    assert (summary.failed, summary.dead_lettered) == (0, 0)
    sent = bundles_sent(server)
    # the directory, three patients packed, the fourth: each transaction one Provenance more
    assert [len(b["entry"]) for b in sent] == [3 + 1, 3 * 13 + 1, 13 + 1]
    for bundle in sent:
        signed = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
        assert len(signed) == 1
        writes = [e for e in bundle["entry"] if e is not signed[0]]
        targets = [t["reference"] for t in signed[0]["resource"]["target"]]
        assert targets == [e["fullUrl"] for e in writes]  # every write of the pack, new ones
    assert len(server.of_type("Provenance")) == 3


class _HoldingDirectory(httpx.AsyncBaseTransport):
    """Holds the directory's bundle at the server until ``release`` is set (or 5 s pass),
    noting what was sent and answered when."""

    def __init__(self, inner: httpx.AsyncBaseTransport, events: list[str]) -> None:
        self.inner = inner
        self.events = events
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return await self.inner.handle_async_request(request)
        types = {e["resource"]["resourceType"] for e in json.loads(request.content)["entry"]}
        if types <= DIRECTORY_TYPES:
            self.events.append("directory sent")
            try:
                await asyncio.wait_for(self.release.wait(), timeout=5)
            except TimeoutError:
                self.events.append("directory held 5 s")
            response = await self.inner.handle_async_request(request)
            self.events.append("directory answered")
            return response
        self.events.append("patients sent")
        return await self.inner.handle_async_request(request)


async def test_a_chunks_last_pack_is_filled_up_by_the_next_chunks_patients(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    """Fewer, fuller bundles: with six patients a bundle, two chunks of eight go as packs of
    6, 6 and 4 patients (not 6, 2, 6, 2); every patient is recorded and its lease given back."""
    store.put_records(patients(2 * CHUNK, tmp_path), [CONNECTION], NOW)
    summary = await push(store, server, ctx, clock, bundle_size=6 * 13)
    assert (summary.failed, summary.created) == (0, 3 + 2 * CHUNK * 13)
    directory, *rest = bundles_sent(server)
    assert len(directory["entry"]) == 3
    assert sorted(len(b["entry"]) // 13 for b in rest) == [4, 6, 6]
    assert store.outbox.due(CONNECTION, clock()) == []
    assert store.leases.current(CONNECTION) == []


async def test_the_next_chunk_is_read_while_the_directory_is_at_the_server(
    store: Store, server: FhirServer, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    """On a link with latency a round trip is not spent idle: while the first chunk's
    directory bundle is at the server the run reads and plans the next chunk; no patient's
    bundle goes before the directory it names is written."""
    store.put_records(patients(CHUNK + 2, tmp_path), [CONNECTION], NOW)
    events: list[str] = []
    transport = _HoldingDirectory(server.transport, events)
    async with FhirClient(BASE, transport=transport, retry=RetryPolicy(max_attempts=1)) as client:
        pusher = Pusher(store, client, CONNECTION, ctx, clock=clock, bundle_size=50)
        prepare = pusher.preparer.prepare

        async def noting(patients: Sequence[Patient], *args: Any, **kwargs: Any) -> Any:
            events.append(f"chunk of {len(patients)} read")
            if len(patients) < CHUNK:  # the second chunk: let the directory through
                transport.release.set()
            return await prepare(patients, *args, **kwargs)

        pusher.preparer.prepare = noting  # type: ignore[method-assign]
        summary = await pusher.push()
    assert (summary.failed, summary.created) == (0, 3 + (CHUNK + 2) * 13)
    # the directory was let through by the second chunk's read, not by the 5 s timeout
    assert "directory held 5 s" not in events
    answered = events.index("directory answered")
    assert sorted(events[:answered]) == [
        "chunk of 2 read",
        f"chunk of {CHUNK} read",
        "directory sent",
    ]
    # packs of 3 and 3 patients, then 3 and 1 (the first chunk's last two with the second's)
    assert events[answered + 1 :] == ["patients sent"] * 4
    assert store.outbox.due(CONNECTION, clock()) == []


async def test_a_bundle_is_booked_while_the_next_pack_goes_to_the_server(
    store: Store, ctx: MappingContext, clock: Clock, tmp_path: Path
) -> None:
    """The store transaction booking a pack's bundle does not hold the event loop: the first
    pack's booking waits (up to 5 s) until the second pack's bundle has reached the server,
    which it could not while the loop waited for the store."""
    second_sent = threading.Event()
    patients_seen: list[str] = []

    def seen(method: str, resource: dict[str, Any]) -> None:
        if resource["resourceType"] == "Patient":
            patients_seen.append(method)
            if len(patients_seen) == 2:
                second_sent.set()

    server = FhirServer(refuse=seen)
    store.put_records(patients(2, tmp_path), [CONNECTION], NOW)
    record_push = store.record_push
    waited: list[bool] = []
    picked: list[bool] = []
    lock = threading.Lock()  # the packs' bookings run in threads of their own

    def slow_booking(**kwargs: Any) -> None:
        with lock:  # the first patient pack's booking (the directory's holds no lease)
            first = bool(kwargs["leases"]) and not picked
            if first:
                picked.append(True)
        if first:
            waited.append(second_sent.wait(timeout=5))
        record_push(**kwargs)

    store.record_push = slow_booking  # type: ignore[method-assign]
    summary = await push(store, server, ctx, clock, bundle_size=13)  # one patient a pack
    assert (summary.failed, summary.created) == (0, 3 + 2 * 13)
    assert waited == [True]  # the second pack went while the first was being booked
