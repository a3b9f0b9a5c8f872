"""Reads: read and vread, searches that follow the server's paging links, and history."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator
from datetime import datetime

from fhir_bridge.errors import MalformedResponse

from ._core import ClientCore
from ._wire import Json, Params, checked_id, checked_type, fhir_body, instance_path, instant

log = logging.getLogger("fhir_bridge.fhir")


class Reads(ClientCore):
    """``read``, ``vread``, ``search``, ``search_bundles`` and ``history``."""

    async def read(self, resource_type: str, resource_id: str) -> Json:
        await self._require(resource_type, "read")
        return await self._get_json(
            instance_path(resource_type, resource_id), resource_type, resource_type
        )

    async def vread(self, resource_type: str, resource_id: str, version_id: str) -> Json:
        await self._require(resource_type, "vread")
        path = f"{instance_path(resource_type, resource_id)}/_history/{checked_id(version_id)}"
        return await self._get_json(path, resource_type, resource_type)

    async def search_bundles(
        self, resource_type: str, params: Params | None = None
    ) -> AsyncGenerator[Json, None]:
        """Each searchset page in turn, following ``next`` links exactly as given."""
        await self._require(resource_type, "search-type")
        async for page in self._pages(
            f"{self.base_url}/{checked_type(resource_type)}", params, resource_type
        ):
            yield page

    async def search(
        self, resource_type: str, params: Params | None = None, *, include: bool = False
    ) -> AsyncGenerator[Json, None]:
        """The matching resources of every page (with ``include``, ``_include``d ones too),
        holding one page in memory at a time."""
        count = 0
        async for page in self.search_bundles(resource_type, params):
            for resource in matches(page, include=include):
                count += 1
                yield resource
        log.info(
            "search done",
            extra={"action": "fhir.search", "resource_type": resource_type, "count": count},
        )

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | str | None = None,
        count: int | None = None,
    ) -> AsyncGenerator[Json, None]:
        """The entries of a history Bundle, page by page (a deletion has no ``resource``; its
        ``request.method`` is DELETE). System, type or instance history by the arguments."""
        if resource_type is None:
            if resource_id is not None:
                raise ValueError("resource_id needs resource_type")
            await self._require(None, "history-system")
            url = f"{self.base_url}/_history"
        elif resource_id is None:
            await self._require(resource_type, "history-type")
            url = f"{self.base_url}/{checked_type(resource_type)}/_history"
        else:
            await self._require(resource_type, "history-instance")
            url = f"{self.base_url}/{instance_path(resource_type, resource_id)}/_history"
        params: dict[str, str] = {}
        if since is not None:
            params["_since"] = instant(since)
        if count is not None:
            params["_count"] = str(count)
        async for page in self._pages(url, params, resource_type):
            for entry in page.get("entry") or []:
                if isinstance(entry, dict):
                    yield entry

    async def _pages(
        self, url: str, params: Params | None, resource_type: str | None
    ) -> AsyncGenerator[Json, None]:
        seen: set[str] = set()
        next_url: str | None = url
        pages = 0
        while next_url is not None:
            response = await self._send(
                "GET",
                next_url,
                params=params,
                headers={"Cache-Control": "no-cache"},
                resource_type=resource_type,
            )
            path = self._path(next_url)
            page = fhir_body(response, True, "GET", path, resource_type)
            if page.get("resourceType") != "Bundle":
                raise MalformedResponse(
                    "expected a Bundle", method="GET", path=path, resource_type=resource_type
                )
            link = next_link(page)
            pages += 1
            yield page
            del page  # hold one page at a time
            params = None
            if link is None:
                break
            next_url = self._resolve_link(link, resource_type)
            if next_url in seen:
                raise MalformedResponse(
                    f"the next link of page {pages} repeats an earlier page",
                    method="GET",
                    path=path,
                    resource_type=resource_type,
                )
            seen.add(next_url)
        log.debug(
            "pages read",
            extra={"action": "fhir.pages", "resource_type": resource_type, "count": pages},
        )


def matches(page: Json, *, include: bool = False) -> Iterator[Json]:
    """The resources a searchset page holds as matches (with ``include``, the ``_include``d
    ones too); an ``outcome`` entry, or one without a resource, is none of them."""
    for entry in page.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        mode = ((entry.get("search") or {}).get("mode") or "match") if resource else None
        if isinstance(resource, dict) and (mode == "match" or (include and mode == "include")):
            yield resource


def next_link(bundle: Json) -> str | None:
    """The ``next`` link of a Bundle page, as the server wrote it."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
