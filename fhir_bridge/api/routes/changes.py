"""The change feed: internal records changed by pulls, in the order applied."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from .._deps import MAX_ROW_ID, Read, StoreDep
from .._responses import Change, ChangePage

router = APIRouter(prefix="/v1/changes", tags=["sync", "changes"])


@router.get("", dependencies=[Read])
def changes(
    store: StoreDep,
    since: Annotated[
        int, Query(ge=0, le=MAX_ROW_ID, description="The last cursor seen; 0 from the start")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangePage:
    """Internal records changed by pulls, in the order applied; resume from ``next_cursor``."""
    items = [Change.of(c) for c in store.changes.since(since, limit)]
    return ChangePage(items=items, next_cursor=items[-1].cursor if items else since)
