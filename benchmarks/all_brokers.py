"""Every broker's benchmark in one run, then one summary of the ratios to each raw ceiling.

Runs, one after the other on this machine: ``redis_bench.py``, ``sql_bench.py``
(PostgreSQL, MySQL, SQLite), ``rabbitmq_bench.py`` and ``sqs_bench.py`` (moto). Each prints
its own table (asynctasq next to the raw ceiling of the same server for the same pattern);
this script then prints the drain figure of every broker side by side, each as a ratio to
its own ceiling, with the issues' targets. Comparing ratios, not rates, is what makes
brokers comparable on a shared machine (issues 3, 4 and 5: "measured in the same run").

Usage, from the repository root with the local servers up::

    .venv/bin/python benchmarks/all_brokers.py [--quick] [--json results.json]

A broker whose benchmark fails is reported as such; the others still run. Exit code 0 when
every benchmark ran (MISSes included), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

TARGETS = {
    "redis": 0.20,
    "postgres": 0.25,
    "rabbitmq": 0.25,
}
"""Drain c100 as a share of the raw ceiling, from issues 3 (Redis), 4 (PostgreSQL) and 5."""


def run_one(script: str, json_path: Path, quick: bool) -> tuple[bool, str]:
    """Run one benchmark script with ``--json``; return (ran, its output)."""
    command = [sys.executable, str(HERE / script), "--json", str(json_path)]
    if quick and script != "sqs_bench.py":
        command.append("--quick")
    print(f"== {script}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    output = done.stdout + (done.stderr if done.returncode else "")
    print(output, flush=True)
    return done.returncode == 0 and json_path.exists(), output


def drain_rows(name: str, figures: Any) -> list[tuple[str, float, float | None, float | None]]:
    """Return (broker, drain c100 tasks/s, ratio to its ceiling, latency p50 ms) rows."""
    if name == "redis":
        rows = {row["name"]: row for row in figures["rows"]}
        drain, p50 = rows["drain c100"], rows["latency p50"]
        return [("redis", drain["value"], drain["ratio"], p50["value"])]
    if name == "sql":
        return [
            (
                driver,
                found["drain_c100_tasks_per_s"],
                found.get("drain_ratio"),
                found.get("latency_p50_ms"),
            )
            for driver, found in figures.items()
            if driver != "sizes"
        ]
    if name == "rabbitmq":
        rows = {row["name"]: row for row in figures["rows"]}
        drain = rows.get("drain c100 prefetch 100")
        p50 = rows.get("latency p50")
        latency = p50["value"] if p50 else None
        return [("rabbitmq", drain["value"], drain["ratio"], latency)] if drain else []
    rows = {row["name"]: row for row in figures}
    drain = rows.get("drain c100")
    if drain is None:
        return []
    ratio = drain["value"] / drain["ceiling"] if drain["ceiling"] else None
    return [("sqs (moto)", drain["value"], ratio, None)]


def summary(rows: list[tuple[str, float, float | None, float | None]]) -> str:
    """Return the side-by-side table of drain ratios."""
    lines = [
        "| broker | drain c100 tasks/s | share of its raw ceiling | target | latency p50 ms |",
        "|---|---|---|---|---|",
    ]
    for broker, rate, ratio, p50 in rows:
        target = TARGETS.get(broker)
        verdict = "-"
        if target is not None and ratio is not None:
            verdict = f">= {target:.0%}: {'PASS' if ratio >= target else 'MISS'}"
        share = f"{ratio:.0%}" if ratio is not None else "-"
        latency = f"{p50:.2f}" if p50 is not None else "-"
        lines.append(f"| {broker} | {rate:,.0f} | {share} | {verdict} | {latency} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark, print the summary; return 0 if all ran, else 1."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    scripts = {
        "redis": "redis_bench.py",
        "sql": "sql_bench.py",
        "rabbitmq": "rabbitmq_bench.py",
        "sqs": "sqs_bench.py",
    }
    started = time.time()
    everything: dict[str, Any] = {}
    rows: list[tuple[str, float, float | None, float | None]] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="all-brokers-") as tmp:
        for name, script in scripts.items():
            path = Path(tmp) / f"{name}.json"
            ran, _ = run_one(script, path, args.quick)
            if not ran:
                failed.append(name)
                continue
            everything[name] = json.loads(path.read_text())
            rows.extend(drain_rows(name, everything[name]))
    print(f"== all brokers, one run, {time.time() - started:.0f} s")
    print(summary(rows))
    if failed:
        print(f"failed: {', '.join(failed)}")
    if args.json:
        Path(args.json).write_text(json.dumps(everything, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
