"""Results as JSON, a markdown table and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter

TARGETS = {
    "push bridge/fhirpy": (">=", 5.0),
    "push bridge/raw": (">=", 0.8),
    "pull bridge/raw": (">=", 0.8),
    "mapping share of push": ("<=", 0.10),
    "memory growth (push), 10x patients": ("<", 2.0),
    "memory growth (pull), 10x patients": ("<", 2.0),
}


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "results.md"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(markdown(results))
    chart = out_dir / "results.png"
    if png(results, chart):
        paths.append(chart)
    return paths


def _rate(summary: dict[str, Any]) -> str:
    rate = summary.get("per_second")
    if not rate:
        return "-"
    return f"{rate['median']:,.0f} ({rate['min']:,.0f}-{rate['max']:,.0f})"


def _secs(summary: dict[str, Any]) -> str:
    s = summary.get("seconds")
    if not s:
        return "-"
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def _table(title: str, rows: list[dict[str, Any]], unit: str = "resources/s") -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"| contender | {unit}, median (min-max) | seconds, median (min-max) | resources | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in rows:
        lines.append(
            f"| {s['name']} | {_rate(s)} | {_secs(s)} | {s.get('items', '-')} | "
            f"{s.get('repetitions', 0)} |"
        )
    return [*lines, ""]


def verdicts(results: dict[str, Any]) -> list[tuple[str, float | None, str, bool | None]]:
    got: dict[str, float | None] = {}
    if "push" in results:
        got["push bridge/fhirpy"] = results["push"]["ratios"]["bridge/fhirpy"]
        got["push bridge/raw"] = results["push"]["ratios"]["bridge/raw"]
    if "pull" in results:
        got["pull bridge/raw"] = results["pull"]["ratios"]["bridge/raw"]
    if "mapping" in results and "share_of_push" in results["mapping"]:
        got["mapping share of push"] = results["mapping"]["share_of_push"]
    growth = (results.get("memory") or {}).get("growth")
    if growth:
        got["memory growth (push), 10x patients"] = growth["push_rss"]
        got["memory growth (pull), 10x patients"] = growth["pull_rss"]
    out = []
    for name, (op, target) in TARGETS.items():
        value = got.get(name)
        ok = None
        if value is not None:
            ok = {">=": value >= target, "<=": value <= target, "<": value < target}[op]
        out.append((name, value, f"{op} {target:g}", ok))
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    panel = results.get("panel", {})
    cfg = results.get("config", {})
    lines = [
        "# fhir-bridge benchmark results",
        "",
        f"Run {m['when']} on {m['cpus']} cores, {m['memory_gb']} GB, {m['platform']}; "
        f"Python {m['python']}; {m.get('java') or 'java ?'}; server {m['server']}. "
        f"Load average {m['load_average_start']} at the start, "
        f"{m.get('load_average_end')} at the end; took {results.get('duration_seconds')} s.",
        "",
        f"Panel: {panel.get('patients')} patients, {panel.get('records')} records, "
        f"{panel.get('resources')} FHIR resources. {cfg.get('warmup')} warm-up run discarded, "
        f"{cfg.get('repetitions')} measured; reset: {cfg.get('reset')}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items() if v)}.",
        "",
        "## Targets",
        "",
        "| target | measured | wanted | met |",
        "|---|---:|---:|:---:|",
    ]
    for name, value, wanted, ok in verdicts(results):
        shown = "-" if value is None else f"{value:.2f}"
        lines.append(
            f"| {name} | {shown} | {wanted} | {'-' if ok is None else 'yes' if ok else 'NO'} |"
        )
    lines.append("")
    for name, when in (results.get("measured_separately") or {}).items():
        lines += [
            f"The {name} figures come from a separate run ({when['when']}, load average "
            f"{when['load_average_start']} at its start, {when['seconds']} s).",
            "",
        ]
    for name, error in (results.get("failed_parts") or {}).items():
        lines += [f"**{name} failed**: {error}", ""]
    if "mapping" in results:
        mp = results["mapping"]
        lines += _table("Mapping (one process)", [mp["to_fhir"], mp["from_fhir"]])
    if "push" in results:
        p = results["push"]
        lines += _table(
            f"Push of {panel.get('patients')} patients into an empty server",
            list(p["contenders"].values()),
        )
        lines += [
            f"Ratios: bridge/fhirpy {p['ratios']['bridge/fhirpy']}, bridge/fhirpy async "
            f"{p['ratios']['bridge/fhirpy_async']}, bridge/raw {p['ratios']['bridge/raw']}.",
            "",
        ]
        lines += _table(
            "Bridge: load, and pushes after the first",
            [p["load"], p["nothing_changed"], p["five_percent_changed"]],
            "records or writes/s",
        )
    if "pull" in results:
        q = results["pull"]
        lines += _table(
            f"Incremental pull after {q['server_edits']} server-side edits",
            list(q["contenders"].values()),
        )
        fp = q["first_pull"]
        lines += [
            f"Ratios: bridge/fhirpy {q['ratios']['bridge/fhirpy']}, bridge/raw "
            f"{q['ratios']['bridge/raw']}. First pull (per patient, before any watermark): "
            f"{fp['resources']} resources in {fp['seconds']} s.",
            "",
        ]
    if "latency" in results:
        lat = results["latency"]
        lines += [
            "### Subscription latency (server change -> record updated)",
            "",
            f"{lat['changes']} changes: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms "
            f"(min {lat['min_ms']}, max {lat['max_ms']}).",
            "",
        ]
    if "memory" in results:
        lines += [
            "### Peak RSS (separate processes)",
            "",
            "| patients | push MB | push s | pull MB | pull s | pull resources |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in results["memory"]["rows"]:
            lines.append(
                f"| {row['patients']} | {row['push']['peak_rss_mb']} | {row['push']['seconds']} "
                f"| {row['pull']['peak_rss_mb']} | {row['pull']['seconds']} | "
                f"{row['pull']['resources']} |"
            )
        lines.append("")
    if "scaling" in results:
        sc = results["scaling"]
        lines += [
            f"### Scaling: push of {sc['patients']} patients, resources/s (median)",
            "",
            "| bundle size | concurrency | bridge | raw ceiling | bridge/raw |",
            "|---:|---:|---:|---:|---:|",
        ]
        for cell in sc["cells"]:
            b = cell["bridge"].get("per_second", {}).get("median")
            r = cell["raw"].get("per_second", {}).get("median", 0)
            bridge = "-" if b is None else f"{b:,.0f}"
            ratio = "-" if b is None or not r else f"{b / r:.2f}"
            lines.append(
                f"| {cell['bundle_size']} | {cell['concurrency']} | {bridge} | {r:,.0f} | {ratio} |"
            )
        lines.append("")
    if "workers" in results:
        wk = results["workers"]
        lines += [
            f"### Workers on PostgreSQL: push of {wk['resources']} resources "
            f"({wk['patients']} patients), start until the outbox is drained",
            "",
            "| workers | resources/s, median (min-max) | seconds, median (min-max) | runs |",
            "|---:|---:|---:|---:|",
        ]
        for row in wk["rows"]:
            rate, secs = row["per_second"], row["seconds"]
            per_second = f"{rate['median']:,.0f} ({rate['min']:,.0f}-{rate['max']:,.0f})"
            took = f"{secs['median']:.2f} ({secs['min']:.2f}-{secs['max']:.2f})"
            lines.append(f"| {row['workers']} | {per_second} | {took} | {row['repetitions']} |")
        lines.append("")
    return "\n".join(lines)


def png(results: dict[str, Any], path: Path) -> bool:
    panels = [k for k in ("push", "pull", "scaling") if k in results]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        if key == "scaling":
            sc = results["scaling"]
            for n, bundle_size in enumerate(sorted({c["bundle_size"] for c in sc["cells"]})):
                cells = [c for c in sc["cells"] if c["bundle_size"] == bundle_size]
                xs = [c["concurrency"] for c in cells]
                ax.plot(
                    xs,
                    [c["raw"]["per_second"]["median"] for c in cells],
                    "o--",
                    color=f"C{n}",
                    label=f"raw, bundles of {bundle_size}",
                )
                measured = [c for c in cells if c["bridge"].get("per_second")]
                ax.plot(
                    [c["concurrency"] for c in measured],
                    [c["bridge"]["per_second"]["median"] for c in measured],
                    "s-",
                    color=f"C{n}",
                    label=f"bridge, bundles of {bundle_size}",
                )
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({c["concurrency"] for c in sc["cells"]}))
            ax.get_xaxis().set_major_formatter(ScalarFormatter())
            ax.set_xlabel("requests in flight")
            ax.set_title(f"Push scaling, {sc['patients']} patients")
            ax.legend(fontsize=7)
        else:
            rows = list(results[key]["contenders"].values())
            names = [r["name"].replace(", ", ",\n") for r in rows]
            med = [r["per_second"]["median"] for r in rows]
            low = [r["per_second"]["median"] - r["per_second"]["min"] for r in rows]
            high = [r["per_second"]["max"] - r["per_second"]["median"] for r in rows]
            colors = ["#1f77b4" if r["name"].startswith("fhir-bridge") else "#aaaaaa" for r in rows]
            ax.bar(names, med, yerr=[low, high], capsize=4, color=colors)
            for i, v in enumerate(med):
                ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            title = "Push into an empty server" if key == "push" else "Incremental pull"
            ax.set_title(f"{title}, {results['panel']['patients']} patients")
        ax.set_ylabel("resources per second")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"fhir-bridge benchmarks ({results['machine']['when']}, "
        f"{results['machine']['cpus']} cores, median; bars: min-max)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
