"""Pull on the real server reads deletions from history in pages of its own page size."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir_bridge.documents import read_records
from fhir_bridge.fhir import FhirClient
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import Puller, Pusher
from tests.helpers import fixture_files

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class CountingClient(FhirClient):
    history_counts: list[int | None]

    def history(self, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        self.history_counts = [*getattr(self, "history_counts", []), kwargs.get("count")]
        return super().history(*args, **kwargs)


def test_pull_reads_history_in_pages_of_its_page_size(tmp_path: Path, fhir_base_url: str) -> None:
    """Not the server's default of 20: offset paging makes each page of a long history slower."""
    ctx = MappingContext(namespace=f"https://bridge.test/{uuid.uuid4().hex[:10]}", now=NOW)
    store = Store(f"sqlite:///{tmp_path / 'bridge.db'}")
    records = [r for path in fixture_files() for r in read_records(path)]
    store.put_records(records, ["hapi"], NOW)
    history_counts: list[int | None] = []

    async def push_then_pull_twice() -> None:
        async with CountingClient(fhir_base_url) as client:
            await Pusher(store, client, "hapi", ctx).push()
            for _ in range(2):  # the second pull has watermarks: it reads history
                puller = Puller(store, client, "hapi", ctx, clock=lambda: datetime.now(UTC))
                summary = await puller.pull()
                assert summary.failed == 0
            history_counts.extend(getattr(client, "history_counts", []))

    asyncio.run(push_then_pull_twice())
    store.close()
    assert history_counts
    assert set(history_counts) == {100}
