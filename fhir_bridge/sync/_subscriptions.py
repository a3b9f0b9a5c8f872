"""REST-hook Subscriptions (R4) that tell the bridge when managed resource types change.

One Subscription per pulled type, each notifying its own endpoint
(``<callback>/fhir/notify/<connection>/<Type>``) without a payload: the notification names
the changed type and nothing else, so no record travels to the webhook, and the bridge reads
what changed from the EHR itself (``_notifications``). Each Subscription carries its own
secret in a header (R4 rest-hook has no other way to authenticate the sender); the store
keeps only its hash (``store.subscription_secrets``) and ``rotate_secrets`` replaces it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from fhir_bridge.errors import ResourceGone, ResourceNotFound
from fhir_bridge.store import Store

from ._pull import PULLED_TYPES

Json = dict[str, Any]
REASON = "fhir-bridge: care plans, goals and referrals changed in the EHR"
# how long a rotated-out secret still opens the webhook (notifications already on their way)
ROTATION_GRACE = timedelta(minutes=5)


class SubscriptionServer(Protocol):
    def search(self, resource_type: str, params: dict[str, str]) -> AsyncIterator[Json]: ...
    async def read(self, resource_type: str, resource_id: str) -> Json: ...
    async def create(self, resource: Json, if_none_exist: str | None = None) -> Any: ...
    async def update(self, resource: Json, if_match: str | None = None) -> Any: ...
    async def delete(self, resource_type: str, resource_id: str) -> Any: ...


def endpoint(callback: str, connection: str, resource_type: str | None = None) -> str:
    """Where the server notifies: ``<callback>/fhir/notify/<connection>[/<Type>]`` (without a
    type: the single endpoint of Subscriptions made before they had one per type)."""
    base = f"{callback.rstrip('/')}/fhir/notify/{connection}"
    return base if resource_type is None else f"{base}/{resource_type}"


async def existing(server: SubscriptionServer, url: str) -> list[Json]:
    return [
        s async for s in server.search("Subscription", {"url": url}) if s.get("status") != "off"
    ]


def with_secret(subscription: Json, header: str, secret: str) -> Json:
    """The Subscription sending ``header: secret`` (other headers kept), without a payload."""
    channel = dict(subscription.get("channel") or {})
    headers = [
        h
        for h in channel.get("header") or []
        if not (isinstance(h, str) and h.lower().startswith(f"{header.lower()}:"))
    ]
    channel["header"] = [*headers, f"{header}: {secret}"]
    channel.pop("payload", None)
    out = {**subscription, "channel": channel}
    if out.get("status") in ("error", "off"):
        out["status"] = "requested"
    return out


async def subscribe(
    server: SubscriptionServer,
    store: Store,
    connection: str,
    callback: str,
    *,
    header: str,
    now: datetime,
) -> tuple[int, int]:
    """One Subscription per pulled type, each with a secret of its own; those already there
    whose secret the store knows are kept, others are given a new secret; Subscriptions of the
    older single endpoint are deleted. Returns (created, kept)."""
    known = {
        s.subscription_id
        for s in store.subscription_secrets.valid(connection, now)
        if s.subscription_id is not None
    }
    created = 0
    for resource_type in PULLED_TYPES:
        url = endpoint(callback, connection, resource_type)
        found = await existing(server, url)
        if any(str(s.get("id")) in known for s in found):
            continue
        if found:  # there, but with a secret the store does not know: give it a new one
            await _renew(server, store, connection, resource_type, found[0], header=header, now=now)
            continue
        secret_id, secret = store.subscription_secrets.issue(connection, resource_type, url, now)
        subscription = with_secret(
            {
                "resourceType": "Subscription",
                "status": "requested",
                "reason": REASON,
                "criteria": f"{resource_type}?",
                "channel": {"type": "rest-hook", "endpoint": url},
            },
            header,
            secret,
        )
        try:
            # conditional: a create whose answer was lost (a slow server) is safe to send again
            result = await server.create(
                subscription, if_none_exist=urlencode({"url": url, "criteria": f"{resource_type}?"})
            )
            if not result.created:  # one matched: it holds another secret, put ours in it
                subscription = {**subscription, "id": result.id}
                await server.update(subscription)
        except BaseException:
            store.subscription_secrets.discard(secret_id)
            raise
        store.subscription_secrets.attach(secret_id, str(result.id))
        created += 1
    for legacy in await existing(server, endpoint(callback, connection)):
        await server.delete("Subscription", str(legacy["id"]))
    return created, len(PULLED_TYPES) - created


async def rotate_secrets(
    server: SubscriptionServer,
    store: Store,
    connection: str,
    header: str,
    now: datetime,
    *,
    grace: timedelta = ROTATION_GRACE,
) -> list[str]:
    """A new secret in each of the connection's Subscriptions (read back from the EHR and
    updated); the old ones stop opening the webhook after ``grace``. Returns the types renewed
    (a Subscription gone from the EHR is skipped; ``subscribe`` makes it again)."""
    renewed = []
    for resource_type, current in sorted(
        store.subscription_secrets.current(connection, now).items()
    ):
        assert current.subscription_id is not None
        try:
            subscription = await server.read("Subscription", current.subscription_id)
        except (ResourceNotFound, ResourceGone):
            continue
        await _renew(
            server,
            store,
            connection,
            resource_type,
            subscription,
            header=header,
            now=now,
            grace=grace,
        )
        renewed.append(resource_type)
    return renewed


async def _renew(
    server: SubscriptionServer,
    store: Store,
    connection: str,
    resource_type: str,
    subscription: Json,
    *,
    header: str,
    now: datetime,
    grace: timedelta = ROTATION_GRACE,
) -> None:
    """Issue a new secret, put it in ``subscription`` on the EHR, then retire the older ones."""
    url = str((subscription.get("channel") or {}).get("endpoint") or "")
    secret_id, secret = store.subscription_secrets.issue(connection, resource_type, url, now)
    try:
        await server.update(with_secret(subscription, header, secret))
    except BaseException:
        store.subscription_secrets.discard(secret_id)
        raise
    store.subscription_secrets.attach(secret_id, str(subscription["id"]))
    store.subscription_secrets.retire(secret_id, now, grace)


async def unsubscribe(
    server: SubscriptionServer, store: Store, connection: str, callback: str
) -> int:
    """Delete the Subscriptions notifying this callback for this connection (per type, and
    any of the older single endpoint) and forget their secrets."""
    deleted = 0
    for url in [endpoint(callback, connection, t) for t in PULLED_TYPES] + [
        endpoint(callback, connection)
    ]:
        for subscription in await existing(server, url):
            await server.delete("Subscription", str(subscription["id"]))
            deleted += 1
    store.subscription_secrets.forget(connection)
    return deleted
