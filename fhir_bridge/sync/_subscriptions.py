"""REST-hook Subscriptions (R4) that tell the bridge when managed resource types change."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

from ._pull import PULLED_TYPES

Json = dict[str, Any]
REASON = "fhir-bridge: care plans, goals and referrals changed in the EHR"


class SubscriptionServer(Protocol):
    def search(self, resource_type: str, params: dict[str, str]) -> Any: ...
    async def create(self, resource: Json, if_none_exist: str | None = None) -> Any: ...
    async def delete(self, resource_type: str, resource_id: str) -> Any: ...


def endpoint(callback: str, connection: str) -> str:
    """Where the server notifies: ``<callback>/fhir/notify/<connection>``."""
    return f"{callback.rstrip('/')}/fhir/notify/{connection}"


async def existing(server: SubscriptionServer, url: str) -> list[Json]:
    return [
        s async for s in server.search("Subscription", {"url": url}) if s.get("status") != "off"
    ]


async def subscribe(
    server: SubscriptionServer, connection: str, callback: str, secret: str, header: str
) -> tuple[int, int]:
    """One Subscription per pulled type; those already there are kept. Returns (created, kept)."""
    url = endpoint(callback, connection)
    have = {s.get("criteria") for s in await existing(server, url)}
    created = 0
    for resource_type in PULLED_TYPES:
        criteria = f"{resource_type}?"
        if criteria in have:
            continue
        # conditional: a create whose answer was lost (a slow server) is safe to send again
        await server.create(
            {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": REASON,
                "criteria": criteria,
                "channel": {
                    "type": "rest-hook",
                    "endpoint": url,
                    "payload": "application/fhir+json",
                    "header": [f"{header}: {secret}"],
                },
            },
            if_none_exist=urlencode({"url": url, "criteria": criteria}),
        )
        created += 1
    return created, len(PULLED_TYPES) - created


async def unsubscribe(server: SubscriptionServer, connection: str, callback: str) -> int:
    """Delete the Subscriptions notifying this callback for this connection."""
    found = await existing(server, endpoint(callback, connection))
    for subscription in found:
        await server.delete("Subscription", str(subscription["id"]))
    return len(found)
