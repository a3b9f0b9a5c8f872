"""Subscription secrets: only a hash kept, checked per connection and type, rotated with a
short grace for the old one, forgotten with the connection's Subscriptions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fhir_bridge.store import Store
from fhir_bridge.store._tables import SubscriptionSecretRow

from .records import NOW

URL = "https://bridge.test/fhir/notify/ehr/Goal"


def test_a_secret_opens_only_its_connection_and_type(store: Store) -> None:
    secret_id, secret = store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    store.subscription_secrets.attach(secret_id, "sub-1")
    _, other = store.subscription_secrets.issue("ehr", "CarePlan", URL, NOW)
    assert secret.startswith("fbs_")
    assert secret != other
    verify = store.subscription_secrets.verify
    assert verify("ehr", "Goal", secret, NOW)
    assert verify("ehr", None, secret, NOW)  # a notification that names no type
    assert not verify("ehr", "CarePlan", secret, NOW)
    assert not verify("other", "Goal", secret, NOW)
    assert not verify("ehr", "Goal", secret + "x", NOW)
    assert not verify("ehr", "Goal", "", NOW)
    (current,) = [s for s in store.subscription_secrets.valid("ehr", NOW) if s.id == secret_id]
    assert (current.subscription_id, current.resource_type, current.endpoint) == (
        "sub-1",
        "Goal",
        URL,
    )
    assert set(store.subscription_secrets.current("ehr", NOW)) == {"Goal"}  # attached only


def test_only_a_hash_of_the_secret_is_stored(store: Store) -> None:
    _, secret = store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    with store.engine.connect() as connection:
        stored = list(connection.execute(select(SubscriptionSecretRow.secret_hash)).scalars())
    assert len(stored) == 1
    assert len(stored[0]) == 64
    assert secret not in stored[0]
    assert secret[4:] not in stored[0]


def test_rotation_keeps_the_old_secret_for_the_grace_then_not(store: Store) -> None:
    first_id, first = store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    store.subscription_secrets.attach(first_id, "sub-1")
    _, task_secret = store.subscription_secrets.issue("ehr", "Task", URL, NOW)
    second_id, second = store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    store.subscription_secrets.attach(second_id, "sub-1")
    grace = timedelta(minutes=5)
    assert store.subscription_secrets.retire(second_id, NOW, grace) == 1
    verify = store.subscription_secrets.verify
    soon, later = NOW + timedelta(minutes=4), NOW + timedelta(minutes=6)
    assert verify("ehr", "Goal", first, soon)
    assert verify("ehr", "Goal", second, soon)
    assert not verify("ehr", "Goal", first, later)
    assert verify("ehr", "Goal", second, later)
    assert verify("ehr", "Task", task_secret, later)  # another type's secret is untouched
    assert store.subscription_secrets.current("ehr", soon)["Goal"].id == second_id
    # the next rotation deletes what has expired
    third_id, _ = store.subscription_secrets.issue("ehr", "Goal", URL, later)
    store.subscription_secrets.retire(third_id, later, grace)
    ids = {s.id for s in store.subscription_secrets.valid("ehr", NOW)}
    assert first_id not in ids
    assert {second_id, third_id} <= ids


def test_discard_and_forget(store: Store) -> None:
    kept_id, kept = store.subscription_secrets.issue("other", "Goal", URL, NOW)
    secret_id, secret = store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    store.subscription_secrets.discard(secret_id)
    assert not store.subscription_secrets.verify("ehr", "Goal", secret, NOW)
    store.subscription_secrets.issue("ehr", "Goal", URL, NOW)
    store.subscription_secrets.issue("ehr", "Task", URL, NOW)
    assert store.subscription_secrets.forget("ehr") == 2
    assert store.subscription_secrets.valid("ehr", NOW) == []
    assert store.subscription_secrets.verify("other", "Goal", kept, NOW)
    assert kept_id
