"""The links pull looks up by the server's ``Type/id``, read from the store a page at a time.

Pull used to hold every link of a connection (each with two resource copies) in one dict for
the whole run; :class:`ServerLinks` holds only those of the page being applied: the puller
loads a page's worth at once (its resources and what they reference), and a key outside it
is read on its own. What was loaded is let go with the next page.

Most of what a pull reads is unchanged since we last saw it (our own writes coming back, or
resources pulled before), and a reference needs only the record it points at: for those the
link's head is enough (``LinkHead``: no resource copy read or decoded). Whole links, with the
copies the merge starts from, are read only for the page's resources whose version moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from fhir_bridge.store import Link, LinkHead

from ._plan import references

Json = dict[str, Any]


class LinkLookup(Protocol):
    """What reading a pulled resource needs of the links, by server ``Type/id``: a whole
    link, or only its head."""

    def get(self, key: str, /) -> Link | None: ...
    def head(self, key: str, /) -> LinkHead | None: ...


class LinksByServerId(Protocol):
    """What of the store's links this needs (``store.links``)."""

    def by_server_ids(self, connection: str, keys: Iterable[str]) -> dict[str, Link]: ...
    def heads_by_server_ids(self, connection: str, keys: Iterable[str]) -> dict[str, LinkHead]: ...


class ServerLinks:
    """Links of one connection by server ``Type/id``, the current page's in memory."""

    def __init__(self, links: LinksByServerId, connection: str) -> None:
        self.links = links
        self.connection = connection
        self._heads: dict[str, LinkHead | None] = {}
        self._whole: dict[str, Link | None] = {}

    def load(self, resources: Iterable[Json]) -> None:
        """Forget the last page's links; read the heads of these resources' links and of
        what they reference in one go, and whole links where the resource's version moved."""
        keys: set[str] = set()
        versions: dict[str, Any] = {}
        for resource in resources:
            key = f"{resource.get('resourceType')}/{resource.get('id')}"
            versions[key] = (resource.get("meta") or {}).get("versionId")
            keys.add(key)
            keys.update(str(ref["reference"]) for ref in references(resource))
        found = self.links.heads_by_server_ids(self.connection, keys)
        self._heads = {key: found.get(key) for key in keys}
        moved = [k for k, v in versions.items() if (h := found.get(k)) and h.version_id != v]
        self._whole = dict(self.links.by_server_ids(self.connection, moved)) if moved else {}

    def get(self, key: str) -> Link | None:
        if key in self._whole:
            return self._whole[key]
        if key in self._heads and self._heads[key] is None:  # known: no link
            return None
        self._whole[key] = self.links.by_server_ids(self.connection, [key]).get(key)
        return self._whole[key]

    def head(self, key: str) -> LinkHead | None:
        if key not in self._heads:
            whole = self._whole.get(key)
            if whole is not None:
                self._heads[key] = whole.head
            else:
                self._heads[key] = self.links.heads_by_server_ids(self.connection, [key]).get(key)
        return self._heads[key]
