"""Results as JSON, a markdown table and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import ScalarFormatter

# issue 16's goals, each a ratio measured side by side in one run
TARGETS = {
    "push bridge/raw": (">=", 0.85),
    "push bridge/fhirpy async": (">=", 2.0),
    "push on 25 ms, bridge/fhirpy one at a time": (">=", 15.0),
    "push on 25 ms, bridge/raw": (">=", 0.85),
    "pull bridge/raw": (">=", 0.9),
    "peak RSS growth (push), 10x patients": ("<", 1.5),
    "peak RSS growth (pull), 10x patients": ("<", 1.5),
    "mapping share of push": ("<", 0.05),
    "subscription change -> record, p95 s": ("<", 1.0),
    # the goal's other clause: HAPI's delivery measured and shown apart, the bridge's part
    "subscription notification -> record (HAPI's delivery apart), p95 s": ("<", 1.0),
}
NETWORK_MS = 25.0


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


def network_row(results: dict[str, Any]) -> dict[str, Any] | None:
    """The network part's row at 25 ms (or its largest latency when 25 was not run)."""
    rows = (results.get("network") or {}).get("rows") or []
    exact = [r for r in rows if r["latency_ms"] == NETWORK_MS]
    slow = sorted((r for r in rows if r["latency_ms"] > 0), key=lambda r: r["latency_ms"])
    return exact[0] if exact else (slow[-1] if slow else None)


def verdicts(results: dict[str, Any]) -> list[tuple[str, float | None, str, bool | None]]:
    got: dict[str, float | None] = {}
    if "push" in results:
        got["push bridge/raw"] = results["push"]["ratios"]["bridge/raw"]
        got["push bridge/fhirpy async"] = results["push"]["ratios"]["bridge/fhirpy_async"]
    slow = network_row(results)
    if slow is not None:
        got["push on 25 ms, bridge/fhirpy one at a time"] = slow["ratios"]["bridge/fhirpy"]
        got["push on 25 ms, bridge/raw"] = slow["ratios"]["bridge/raw"]
    if "pull" in results:
        got["pull bridge/raw"] = results["pull"]["ratios"]["bridge/raw"]
    if "mapping" in results and "share_of_push" in results["mapping"]:
        got["mapping share of push"] = results["mapping"]["share_of_push"]
    growth = (results.get("memory") or {}).get("growth")
    if growth:
        got["peak RSS growth (push), 10x patients"] = growth["push_rss"]
        got["peak RSS growth (pull), 10x patients"] = growth["pull_rss"]
    if "latency" in results:
        got["subscription change -> record, p95 s"] = results["latency"]["p95_ms"] / 1000
        if "applied" in results["latency"]:
            got["subscription notification -> record (HAPI's delivery apart), p95 s"] = (
                results["latency"]["applied"]["p95_ms"] / 1000
            )
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
    ]
    lines += _targets(results)
    for name, when in (results.get("measured_separately") or {}).items():
        lines += [
            f"The {name} figures come from a separate run ({when['when']}"
            + (f", {when['patients']} patients" if when.get("patients") else "")
            + (f", {when['repetitions']} measured" if when.get("repetitions") else "")
            + ", load average "
            f"{when['load_average_start']} at its start, {when['seconds']} s).",
            "",
        ]
    for name, error in (results.get("failed_parts") or {}).items():
        lines += [f"**{name} failed**: {error}", ""]
    for name, why in (results.get("skipped_parts") or {}).items():
        lines += [f"{name} skipped: {why}.", ""]
    if "mapping" in results:
        mp = results["mapping"]
        rows = [mp["to_fhir"], *([mp["rendered"]] if "rendered" in mp else []), mp["from_fhir"]]
        lines += _table("Mapping (one process)", rows)
        if "rendering_share_of_push" in mp:
            lines += [
                f"Share of the bridge's push time: rendered and checked {mp['share_of_push']} "
                f"(the target's figure), rendered only {mp['rendering_share_of_push']} (the rest "
                "is the check: fhir.resources' R4B model, bindings, US Core).",
                "",
            ]
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
        if cpu := _cpu(p["contenders"].values()):
            lines += [f"CPU seconds per push, client + server (medians): {cpu}.", ""]
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
        lines += _latency(results["latency"])
    if "network" in results:
        lines += _network(results["network"])
    if "memory" in results:
        lines += _curve(results["memory"])
    if "bulk" in results:
        lines += _bulk(results["bulk"])
    lines += _scaling(results)
    lines += _workers(results)
    return "\n".join(lines)


def _targets(results: dict[str, Any]) -> list[str]:
    lines = [
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
    slow = network_row(results)
    if slow is not None and slow["latency_ms"] != NETWORK_MS:
        lines += [f"The '25 ms' rows were measured at {slow['latency_ms']:g} ms.", ""]
    growth = (results.get("memory") or {}).get("growth")
    if growth:
        lines += [
            f"Peak RSS growth: {growth.get('from_patients')} -> {growth.get('to_patients')} "
            f"patients ({growth['patients']}x).",
            "",
        ]
    lat = results.get("latency") or {}
    if "delivery" in lat:
        lines += [
            f"Subscription p95 {lat['p95_ms']} ms, of which the server's delivery (change to "
            f"notification posted) p95 {lat['delivery']['p95_ms']} ms and the bridge's part "
            f"(notification to record readable) p95 {lat['applied']['p95_ms']} ms.",
            "",
        ]
    return lines


def _scaling(results: dict[str, Any]) -> list[str]:
    if "scaling" not in results:
        return []
    lines: list[str] = []
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
    return lines


def _workers(results: dict[str, Any]) -> list[str]:
    if "workers" not in results:
        return []
    lines: list[str] = []
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
    return lines


def _latency(lat: dict[str, Any]) -> list[str]:
    lines = [
        "### Subscription latency (server change -> record updated)",
        "",
        "| part | p50 ms | p95 ms | min ms | max ms | changes |",
        "|---|---:|---:|---:|---:|---:|",
        f"| change -> record readable | {lat['p50_ms']} | {lat['p95_ms']} | {lat['min_ms']} | "
        f"{lat['max_ms']} | {lat['changes']} |",
    ]
    for key, name in (
        ("delivery", "of which the server: change -> notification posted"),
        ("applied", "of which the bridge: notification -> record readable"),
    ):
        if key in lat:
            d = lat[key]
            lines.append(
                f"| {name} | {d['p50_ms']} | {d['p95_ms']} | {d['min_ms']} | {d['max_ms']} | "
                f"{d['changes']} |"
            )
    return [*lines, ""]


def _network(net: dict[str, Any]) -> list[str]:
    lines = [
        f"### Push of {net['patients']} patients ({net['resources']} resources) over a link "
        "with latency",
        "",
        f"Link: {net['link']}.",
        "",
        "| round trip | contender | resources/s, median (min-max) | seconds, median (min-max) "
        "| runs |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in net["rows"]:
        for c in row["contenders"].values():
            lines.append(
                f"| {row['latency_ms']:g} ms | {c['name']} | {_rate(c)} | {_secs(c)} | "
                f"{c.get('repetitions', 0)} |"
            )
    lines.append("")
    for row in net["rows"]:
        r = row["ratios"]
        lines.append(
            f"{row['latency_ms']:g} ms: bridge/fhirpy one at a time {r['bridge/fhirpy']}, "
            f"bridge/fhirpy async {r['bridge/fhirpy_async']}, bridge/raw {r['bridge/raw']}."
        )
        if cpu := _cpu(row["contenders"].values()):
            lines.append(f"{row['latency_ms']:g} ms, CPU seconds client + server: {cpu}.")
    return [*lines, ""]


def _cpu(contenders: Iterable[dict[str, Any]]) -> str:
    """Each contender's CPU seconds per push, here and at the server (medians)."""
    return "; ".join(
        f"{c['name']} {cpu['client']} + {'-' if cpu['server'] is None else cpu['server']}"
        for c in contenders
        if (cpu := c.get("cpu_seconds"))
    )


def _curve(mem: dict[str, Any]) -> list[str]:
    lines = [
        "### Scaling curve: push and pull, each in a process of its own",
        "",
        "| patients | push s | push peak RSS MB | pull s | pull peak RSS MB | pull resources |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in mem["rows"]:
        lines.append(
            f"| {row['patients']} | {row['push']['seconds']} | {row['push']['peak_rss_mb']} "
            f"| {row['pull']['seconds']} | {row['pull']['peak_rss_mb']} | "
            f"{row['pull']['resources']} |"
        )
    return [*lines, ""]


def _bulk(bulk: dict[str, Any]) -> list[str]:
    paged, fast = bulk["paged"], bulk["bulk"]
    return [
        f"### First pull of {bulk['patients']} patients: paged search vs bulk export",
        "",
        "| how | seconds | peak RSS MB | links after |",
        "|---|---:|---:|---:|",
        f"| paged search (`fhir-bridge pull`) | {paged['seconds']} | {paged['peak_rss_mb']} | "
        f"{paged.get('links_after', '-')} |",
        f"| bulk export (`fhir-bridge pull --bulk`) | {fast['seconds']} | "
        f"{fast['peak_rss_mb']} | {fast.get('links_after', '-')} |",
        "",
        f"Bulk is {bulk['bulk_speedup']}x as fast, at {bulk['bulk_rss_ratio']}x the peak RSS.",
        "",
    ]


def _network_chart(ax: Any, net: dict[str, Any]) -> None:
    """Resources/s per contender, one bar per round trip (log scale: one at a time over
    25 ms is two orders below the rest)."""
    rows = net["rows"]
    names = [c["name"].replace(", ", ",\n") for c in rows[0]["contenders"].values()]
    width = 0.8 / len(rows)
    for n, row in enumerate(rows):
        med = [c["per_second"]["median"] for c in row["contenders"].values()]
        xs = [i + (n - (len(rows) - 1) / 2) * width for i in range(len(med))]
        ax.bar(xs, med, width, color=f"C{n}", label=f"{row['latency_ms']:g} ms round trip")
        for x, v in zip(xs, med, strict=True):
            ax.text(x, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_yscale("log")
    ax.get_yaxis().set_major_formatter(ScalarFormatter())
    ax.set_ylabel("resources per second")
    ax.set_title(f"Push over a link with latency, {net['patients']} patients")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def _curve_chart(ax: Any, mem: dict[str, Any]) -> None:
    """Time (left axis) and peak RSS (right axis) against patients, both axes logarithmic:
    a straight line of slope 1 is linear growth, a flat one constant."""
    rows = mem["rows"]
    xs = [r["patients"] for r in rows]
    ax.plot(xs, [r["push"]["seconds"] for r in rows], "o-", color="C0", label="push s")
    ax.plot(xs, [r["pull"]["seconds"] for r in rows], "s-", color="C1", label="pull s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.get_xaxis().set_major_formatter(ScalarFormatter())
    ax.get_yaxis().set_major_formatter(ScalarFormatter())
    ax.set_xlabel("patients")
    ax.set_ylabel("seconds")
    rss = ax.twinx()
    rss.plot(xs, [r["push"]["peak_rss_mb"] for r in rows], "o--", color="C0", label="push MB")
    rss.plot(xs, [r["pull"]["peak_rss_mb"] for r in rows], "s--", color="C1", label="pull MB")
    # linear from zero: a flat memory curve looks flat, not stretched over a narrow range
    peaks = [r[what]["peak_rss_mb"] for r in rows for what in ("push", "pull")]
    rss.set_ylim(0, max(peaks) * 1.3)
    rss.set_ylabel("peak RSS, MB (dashed)")
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = rss.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=7, loc="upper left")
    ax.set_title("Scaling curve: time and peak RSS")
    ax.grid(alpha=0.3)


def png(results: dict[str, Any], path: Path) -> bool:
    panels = [k for k in ("push", "pull", "network", "memory", "scaling") if k in results]
    if not panels:
        return False
    columns = min(len(panels), 3)
    grid_rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        grid_rows, columns, figsize=(6 * columns, 4.8 * grid_rows), squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, panels, strict=False):
        if key == "network":
            _network_chart(ax, results["network"])
            continue
        if key == "memory":
            _curve_chart(ax, results["memory"])
            continue
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
