"""Mapping throughput, one process: internal -> FHIR (checked, and not), FHIR -> internal."""

from __future__ import annotations

import time

from fhir_bridge.mappers import MappingContext, check_resource, from_fhir, resources_of

from .panel import Panel
from .prepared import Prepared


def to_fhir(panel: Panel, ctx: MappingContext, *, check: bool = True) -> tuple[int, float]:
    """Every record rendered and checked (R4 model, bindings, US Core), as push does it for a
    rendering it has not sent before; ``check=False``: rendered only."""
    started = time.perf_counter()
    count = 0
    for record in panel.records():
        for entry in resources_of(ctx, record):
            problems = check_resource(entry.resource, entry.record_id) if check else []
            if problems:
                raise RuntimeError(f"{entry.record_id}: {problems[0]}")
            count += 1
    return count, time.perf_counter() - started


def from_fhir_per_patient(prepared: Prepared, ctx: MappingContext) -> tuple[int, float]:
    """Each patient's resources read back into records, references resolved among them."""
    started = time.perf_counter()
    count = 0
    for entries in prepared.patients:
        result = from_fhir([(e.resource, e.full_url) for e in entries], ctx)
        count += len(entries)
        if not result.records:
            raise RuntimeError("nothing read back")
    return count, time.perf_counter() - started
