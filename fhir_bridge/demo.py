"""``fhir-bridge demo``: the whole round, on the local HAPI sandbox, in one command.

Loads the fixture patients, pushes them, makes a clinician's edits on the server, pulls them
back (one change merges, one conflicts), lets the hospital discharge a patient (the pull that
reads it starts one transitional-care plan; a second pull starts nothing), builds and checks a
handoff, prints the month's minutes, and says where to look.
It runs the same operations as the CLI, the API and the worker, on a configuration it writes
(``<out>/fhir-bridge.toml``), so ``fhir-bridge serve`` on that file shows the same data.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from fhir_bridge import model as m
from fhir_bridge import sandbox
from fhir_bridge.config import ConnectionConfig, Settings
from fhir_bridge.documents import read_records
from fhir_bridge.handoff import prepare_handoff, record_handoff, render_html
from fhir_bridge.mappers import MappingContext
from fhir_bridge.store import Store
from fhir_bridge.sync import (
    DueItem,
    PullSummary,
    PushSummary,
    open_due_items,
    pull_connection,
    push_connection,
    resolve_connection,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONNECTION = "hapi-sandbox"
DASHBOARD = "http://127.0.0.1:8000/dashboard"
NO_CACHE = {"Cache-Control": "no-cache"}
DEMO_MONTH = "2026-11"
"""The month the fixtures' check-ins fall in."""
DISCHARGED = "pat-rivera"
"""The patient the hospital discharges during the demo."""
HOSPITAL_VISITS = "urn:oid:2.16.840.1.113883.19.5.99.1"
"""The (example) identifier system of the hospital's visit numbers."""


def run(
    out_dir: Path, *, port: int = 8080, keep_running: bool = False, console: Console | None = None
) -> int:
    """Run the demo; returns the number of failed steps (0 when all went well)."""
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    was_running = sandbox.status(port).running
    console.print(
        f"[bold]1. HAPI FHIR sandbox[/bold] on port {port} (first start builds it with Maven)"
    )
    base_url = sandbox.start(port).base_url
    try:
        return asyncio.run(_round(out_dir, base_url, console))
    finally:
        if not (keep_running or was_running):
            sandbox.stop(port)
            console.print("sandbox stopped (use --keep-running to keep it)")


def demo_settings(out_dir: Path, base_url: str, namespace: str) -> Settings:
    """The demo's configuration, also written to ``<out>/fhir-bridge.toml``."""
    database = (out_dir / "demo.db").resolve()
    (out_dir / "fhir-bridge.toml").write_text(
        f'database_url = "sqlite:///{database}"\n'
        f'namespace = "{namespace}"\n\n'
        f"[connections.{CONNECTION}]\n"
        f'base_url = "{base_url}"\n'
        'enrol = "all"\n'
    )
    return Settings(
        database_url=f"sqlite:///{database}",
        namespace=namespace,
        connections={CONNECTION: ConnectionConfig(base_url=base_url, enrol="all")},
    )


async def _round(out_dir: Path, base_url: str, console: Console) -> int:
    now = datetime.now(UTC)
    settings = demo_settings(
        out_dir, base_url, f"https://fhir-bridge.example/demo/{now:%Y%m%d%H%M%S}"
    )
    ctx = MappingContext(namespace=settings.namespace, now=now)
    target = resolve_connection(settings, CONNECTION, None)
    (out_dir / "demo.db").unlink(missing_ok=True)
    store = Store(settings.database_url)
    try:
        records = [r for path in sorted(FIXTURES.glob("*.json")) for r in read_records(path)]
        store.put_records(records, [CONNECTION], now)
        patients = sum(isinstance(r, m.Patient) for r in records)
        console.print(
            f"[bold]2. Loaded[/bold] {len(records)} records of {patients} patients into "
            f"{out_dir / 'demo.db'}"
        )
        pushed = await push_connection(store, target, settings)
        console.print(f"[bold]3. Pushed[/bold] to {base_url}: {_counts(pushed)}")
        _clinician_edits(base_url, ctx, store, now)
        console.print(
            "[bold]4. A clinician edits in the EHR[/bold]: a goal achieved (its priority "
            "changed locally meanwhile); a weight goal's priority changed on both sides"
        )
        pulled = await pull_connection(store, target, settings)
        console.print(f"[bold]5. Pulled[/bold]: {_counts(pulled)}")
        merged = store.records.get("goal", "goal-rivera-a1c")
        conflicts = store.conflicts.find()
        _hospital_discharge(base_url, ctx, now)
        discharge = await pull_connection(store, target, settings)
        due = open_due_items(store, now.date(), DISCHARGED)
        plans = sorted({d.plan_id for d in due})
        console.print(
            f"[bold]6. The hospital discharges {DISCHARGED}[/bold] (a finished inpatient "
            "Encounter with a discharge disposition, written to the EHR as the hospital "
            f"would); pulled: {_counts(discharge)}"
        )
        _print_plan(console, store, plans, due)
        again = await pull_connection(store, target, settings)
        console.print(
            f"   pulled again: transitions {again.transitions} "
            "(the same discharge starts nothing new)"
        )
        handoff = prepare_handoff(store, settings, "pat-okafor", "transfer", now)
        record_handoff(store, handoff, None, None, now)
        (out_dir / "handoff-okafor.json").write_text(json.dumps(handoff.document, indent=2))
        (out_dir / "handoff-okafor.html").write_text(
            render_html(handoff.package, "transfer", handoff.findings)
        )
        console.print(
            f"[bold]7. Handoff[/bold] for pat-okafor: {len(handoff.document['entry'])} entries, "
            f"{len(handoff.findings)} findings"
        )
        minutes = store.reports.minutes(DEMO_MONTH)
        console.print(f"[bold]8. Minutes[/bold] (fhir-bridge minutes --month {DEMO_MONTH}):")
        console.print("\n".join(minutes.lines()), markup=False, highlight=False)
    finally:
        store.close()
    return _summary(
        console,
        out_dir,
        base_url,
        pushed=pushed,
        merged=merged,
        conflicts=conflicts,
        started=(discharge.transitions, again.transitions, len(plans), len(due)),
    )


def _clinician_edits(base_url: str, ctx: MappingContext, store: Store, now: datetime) -> None:
    with httpx.Client(
        base_url=base_url, timeout=60, headers={"Content-Type": "application/fhir+json"}
    ) as ehr:

        def goal(record_id: str) -> dict[str, Any]:
            bundle = ehr.get(
                "/Goal",
                params={"identifier": f"{ctx.system('goal')}|{record_id}"},
                headers=NO_CACHE,
            ).json()
            return dict(bundle["entry"][0]["resource"])

        a1c = goal("goal-rivera-a1c")
        a1c["achievementStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/goal-achievement",
                    "code": "achieved",
                }
            ]
        }
        ehr.put(f"/Goal/{a1c['id']}", json=a1c).raise_for_status()
        weight = goal("goal-rivera-weight")
        weight["priority"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/goal-priority",
                    "code": "medium-priority",
                }
            ]
        }
        ehr.put(f"/Goal/{weight['id']}", json=weight).raise_for_status()
    for record_id, priority in (
        ("goal-rivera-a1c", m.GoalPriority.medium),
        ("goal-rivera-weight", m.GoalPriority.low),
    ):
        local = store.records.get("goal", record_id)
        assert isinstance(local, m.Goal)
        local.priority = priority
        store.put_records([local], [], now)


def _hospital_discharge(base_url: str, ctx: MappingContext, now: datetime) -> None:
    """The hospital's own record of a stay that ended yesterday, as its EHR writes it: its
    visit number, not our identifier; a discharge disposition (home with home health)."""
    yesterday = (now - timedelta(days=1)).date()
    with httpx.Client(
        base_url=base_url, timeout=60, headers={"Content-Type": "application/fhir+json"}
    ) as ehr:
        bundle = ehr.get(
            "/Patient",
            params={"identifier": f"{ctx.system('patient')}|{DISCHARGED}"},
            headers=NO_CACHE,
        ).json()
        patient_id = bundle["entry"][0]["resource"]["id"]
        stay = {
            "resourceType": "Encounter",
            "identifier": [{"system": HOSPITAL_VISITS, "value": f"V{now:%Y%m%d%H%M%S}"}],
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "IMP",
                "display": "inpatient encounter",
            },
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "32485007",
                            "display": "Hospital admission",
                        }
                    ]
                }
            ],
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {
                "start": (yesterday - timedelta(days=3)).isoformat(),
                "end": yesterday.isoformat(),
            },
            "hospitalization": {
                "dischargeDisposition": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                            "code": "home",
                            "display": "Home",
                        }
                    ]
                }
            },
        }
        ehr.post("/Encounter", json=stay).raise_for_status()


def _print_plan(console: Console, store: Store, plans: list[str], due: list[DueItem]) -> None:
    for plan_id in plans:
        plan = store.records.get("careplan", plan_id)
        if isinstance(plan, m.CarePlan):
            console.print(f"   {plan.title} ({plan_id}): {plan.description}", markup=False)
    table = Table("due by", "what", "status", "overdue", title="Due items (GET /v1/due)")
    for item in due:
        table.add_row(
            item.due.isoformat(), item.what, item.status.replace("_", " "), str(item.overdue)
        )
    console.print(table)


def _counts(summary: PushSummary | PullSummary) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.counts().items() if v)


def _summary(
    console: Console,
    out_dir: Path,
    base_url: str,
    *,
    pushed: PushSummary,
    merged: m.Record | None,
    conflicts: list[Any],
    started: tuple[int, int, int, int],
) -> int:
    first, again, plans, due = started
    checks = [
        (
            "every record pushed, none failed",
            pushed.failed == pushed.dead_lettered == 0 and pushed.created > 0,
        ),
        (
            "EHR change merged with the local one (achieved + priority medium)",
            isinstance(merged, m.Goal)
            and merged.achievement_status is m.GoalAchievement.achieved
            and merged.priority is m.GoalPriority.medium,
        ),
        ("same field changed on both sides kept as a conflict", len(conflicts) == 1),
        (
            "a hospital discharge started one transitional-care plan (3 due items), once",
            (first, again, plans, due) == (1, 0, 1, 3),
        ),
    ]
    table = Table("what", "result", title="fhir-bridge demo")
    for label, ok in checks:
        table.add_row(label, "[green]ok[/green]" if ok else "[red]FAILED[/red]")
    console.print(table)
    console.print(
        f"Look at: the server {base_url} (e.g. {base_url}/Goal), "
        f"{out_dir / 'handoff-okafor.html'} (printable handoff), "
        f"{out_dir / 'handoff-okafor.json'}, the store {out_dir / 'demo.db'}; "
        f"FHIR_BRIDGE_CONFIG={out_dir / 'fhir-bridge.toml'} fhir-bridge conflicts "
        "(or any command) works on it, and `fhir-bridge demo --keep-running` serves the "
        f"dashboard at {DASHBOARD} (its due items at {DASHBOARD}/due)."
    )
    return sum(not ok for _, ok in checks)
