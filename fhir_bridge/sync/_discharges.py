"""A discharge arriving by pull or subscription starts transitional care, exactly once.

The Encounter is read as it comes from the server (status finished, a discharge
disposition: ``_transitions.discharge_of``); the plan's id is derived from the connection and
the Encounter's server id, and the store creates it only if no record of that id was ever
stored (``Store.create_once``, one transaction with its outbox rows and change-feed row). The
same Encounter seen again (a second version, the overlap of the next pull, a notification and
a pull, two workers) finds the plan there and creates nothing; a plan the care manager deleted
is not brought back.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from fhir_bridge import model as m
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store

from ._transitions import (
    DueItem,
    discharge_of,
    due_items,
    is_high_complexity,
    plan_id,
    transitional_plan,
    windows,
)

log = logging.getLogger("fhir_bridge.sync")


def recorded_here(store: Store, ctx: MappingContext, encounter: dict[str, Any]) -> bool:
    """An Encounter a care manager recorded here and we pushed (our identifier, on a record
    that did not come from an EHR): its discharge is no news from a hospital."""
    system = ctx.system("encounter")
    for identifier in encounter.get("identifier") or []:
        if identifier.get("system") == system and identifier.get("value"):
            record = store.records.get("encounter", str(identifier["value"]))
            return record is not None and not (record.source or "").startswith("ehr:")
    return False


def start_transitional_care(
    store: Store,
    connection: str,
    encounter: dict[str, Any],
    patient_id: str,
    now: datetime,
    *,
    holidays: Collection[date] = (),
) -> str | None:
    """The id of the plan this Encounter's discharge started now; None when it is no
    discharge or its plan exists already."""
    discharge = discharge_of(encounter, now.date())
    if discharge is None:
        return None
    pid = plan_id(connection, discharge.encounter_id)
    if store.records.get("careplan", pid) is not None or store.records.is_deleted("careplan", pid):
        return None
    records = store.records.of_patient(patient_id)
    high = is_high_complexity(discharge.day, records, exclude_plan=pid)
    due = windows(discharge.day, high_complexity=high, holidays=holidays)
    plan = transitional_plan(patient_id, connection, discharge, due, now)
    if not store.create_once(plan, [connection], now, source=connection):
        return None
    log.info(
        "transitional care started",
        extra={
            "action": "discharge",
            "connection": connection,
            "record_id": pid,
            "patient_id": patient_id,
        },
    )
    return pid


_PAGE = 500


def open_due_items(store: Store, today: date, patient_id: str | None = None) -> list[DueItem]:
    """The due items of every stored plan (of one patient), soonest first: what
    ``GET /v1/due`` and the dashboard's due page show. Plans are read a page at a time."""
    plans: list[m.CarePlan] = []
    offset = 0
    while True:
        page = store.records.page("careplan", patient_id, _PAGE, offset)
        plans += [r for r, _ in page if isinstance(r, m.CarePlan)]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return due_items(plans, today)
