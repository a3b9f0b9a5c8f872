"""``fhir-bridge demo``: the fixture patients translated to FHIR and back, with a summary."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fhir_bridge.documents import read_records
from fhir_bridge.mappers import MappingContext, from_fhir, to_bundle

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run(out_dir: Path, fixtures: Path = FIXTURES, console: Console | None = None) -> int:
    """Translate every fixture package, write the Bundles, read them back, compare.

    Returns the number of packages whose round trip differed (0 when all is well).
    """
    console = console or Console()
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = MappingContext()
    table = Table(title="fhir-bridge: internal records -> FHIR R4 -> internal records")
    for column in ("package", "records", "FHIR resources", "by type", "round trip"):
        table.add_column(column)
    failures = 0
    for path in sorted(fixtures.glob("*.json")):
        records = read_records(path)
        bundle = to_bundle(records, ctx)
        target = out_dir / f"{path.stem}.bundle.json"
        target.write_text(json.dumps(bundle, indent=2))
        back = from_fhir([(e["resource"], e["fullUrl"]) for e in bundle["entry"]], ctx).records
        same = sorted(back, key=_key) == sorted(records, key=_key)
        failures += not same
        kinds = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        table.add_row(
            path.stem,
            str(len(records)),
            str(len(bundle["entry"])),
            ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
            "identical" if same else "[red]DIFFERS[/red]",
        )
    console.print(table)
    console.print(f"FHIR Bundles written to {out_dir}/")
    return failures


def _key(record: object) -> tuple[str, str]:
    return (type(record).__name__, str(getattr(record, "id", "")))
