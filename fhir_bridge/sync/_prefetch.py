"""Reading ahead: the next chunk of a search is fetched while the current one is applied.

Pull's time is the server's answers plus its own work on each page (links, merges, the
store). One after the other they add up; with the next page's request already out while
a page is applied (the work in a thread, so the event loop keeps reading the answer), the
run takes about the longer of the two. At most two chunks are held at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def chunked(items: AsyncIterator[T], size: int) -> AsyncIterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter; none is empty)."""
    chunk: list[T] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def read_ahead(chunks: AsyncIterator[list[T]]) -> AsyncIterator[list[T]]:
    """The same chunks, the next one being read while the caller works on the current."""
    pending: asyncio.Future[list[T] | None] = asyncio.ensure_future(anext(chunks, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(chunks, None))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
        elif not pending.cancelled():
            pending.exception()  # a read ahead no one wants any more: its failure is not news
