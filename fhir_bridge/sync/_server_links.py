"""The links pull looks up by the server's ``Type/id``, read from the store a page at a time.

Pull used to hold every link of a connection (each with two resource copies) in one dict for
the whole run; :class:`ServerLinks` holds only those of the page being applied: the puller
loads a page's worth at once (its resources and what they reference), and a key outside it
is read on its own. What was loaded is let go with the next page.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from fhir_bridge.store import Link

from ._plan import references

Json = dict[str, Any]


class LinkLookup(Protocol):
    """What reading a pulled resource needs of the links: one by server ``Type/id``."""

    def get(self, key: str, /) -> Link | None: ...


class LinksByServerId(Protocol):
    """What of the store's links this needs (``store.links``)."""

    def by_server_ids(self, connection: str, keys: Iterable[str]) -> dict[str, Link]: ...


class ServerLinks:
    """Links of one connection by server ``Type/id``, the current page's in memory."""

    def __init__(self, links: LinksByServerId, connection: str) -> None:
        self.links = links
        self.connection = connection
        self._known: dict[str, Link | None] = {}

    def load(self, resources: Iterable[Json]) -> None:
        """Forget the last page's links; read those of these resources and their references
        in one go."""
        keys: set[str] = set()
        for resource in resources:
            keys.add(f"{resource.get('resourceType')}/{resource.get('id')}")
            keys.update(str(ref["reference"]) for ref in references(resource))
        found = self.links.by_server_ids(self.connection, keys)
        self._known = {key: found.get(key) for key in keys}

    def get(self, key: str) -> Link | None:
        if key not in self._known:
            self._known[key] = self.links.by_server_ids(self.connection, [key]).get(key)
        return self._known[key]
