"""Reading ahead: the next chunk is asked for while the current one is worked on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fhir_bridge.sync._prefetch import chunked, read_ahead

pytestmark = pytest.mark.anyio


async def _numbers(n: int, asked: list[int], fail_at: int | None = None) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        if i == fail_at:
            raise RuntimeError(f"page {i} failed")
        asked.append(i)
        yield i


async def test_chunks_keep_order_and_the_last_may_be_short() -> None:
    chunks = [c async for c in chunked(_numbers(7, []), 3)]
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
    assert [c async for c in chunked(_numbers(0, []), 3)] == []


async def test_the_next_chunk_is_read_while_the_current_one_is_worked_on() -> None:
    """The work on the first chunk waits until the second has been read: without reading
    ahead it would wait for ever (here: a second, then fail)."""
    asked: list[int] = []
    second_read = asyncio.Event()

    async def numbers() -> AsyncIterator[int]:
        async for i in _numbers(6, asked):
            if i == 3:
                second_read.set()
            yield i

    seen: list[list[int]] = []
    async for chunk in read_ahead(chunked(numbers(), 2)):
        if chunk == [0, 1]:
            await asyncio.wait_for(second_read.wait(), timeout=1.0)
        seen.append(chunk)
    assert seen == [[0, 1], [2, 3], [4, 5]]


async def _collect(chunks: AsyncIterator[list[int]], got: list[list[int]]) -> None:
    async for chunk in read_ahead(chunks):
        got.append(chunk)


async def test_a_failed_read_reaches_the_caller_after_the_chunks_before_it() -> None:
    got: list[list[int]] = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        await _collect(chunked(_numbers(6, [], fail_at=3), 2), got)
    assert got == [[0, 1]]


async def _fail_on_first(chunks: AsyncIterator[list[int]]) -> None:
    async for _chunk in read_ahead(chunks):
        raise ValueError("apply failed")


async def test_stopping_early_cancels_the_read_ahead() -> None:
    """The caller failing on a chunk cancels the read of the next (here one that would never
    end): nothing is left waiting on the server."""
    cancelled = asyncio.Event()

    async def stalling() -> AsyncIterator[int]:
        yield 0
        yield 1
        try:
            await asyncio.Event().wait()  # the next page never comes
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield 2

    with pytest.raises(ValueError, match="apply failed"):
        await _fail_on_first(chunked(stalling(), 2))
    await asyncio.wait_for(cancelled.wait(), timeout=1.0)
