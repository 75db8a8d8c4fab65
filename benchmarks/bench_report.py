"""The table ``redis_bench.py`` prints: rows, ratios, PASS/MISS, and the machine."""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

import asynctasq


@attrs.frozen
class Row:
    """One line of the table: our figure, its raw ceiling, and the target.

    ``ratio`` is value / ceiling: a share of the ceiling for rates, "times the ceiling"
    for latency and memory (``lower_is_better``).
    """

    name: str
    unit: str
    value: float
    ceiling: float | None
    target: str
    passed: bool | None
    lower_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        """``value / ceiling``, or ``None`` without a ceiling."""
        return None if not self.ceiling else self.value / self.ceiling


def _number(value: float, unit: str) -> str:
    if unit == "tasks/s":
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _ratio(row: Row) -> str:
    ratio = row.ratio
    if ratio is None:
        return "-"
    return f"{ratio:.2f}x" if row.lower_is_better else f"{ratio:.0%}"


def table(rows: Sequence[Row]) -> str:
    """Return the rows as a Markdown table (readable in a terminal too)."""
    head = ("figure", "unit", "asynctasq", "raw ceiling", "ratio", "target", "result")
    lines = [
        (
            row.name,
            row.unit,
            _number(row.value, row.unit),
            "-" if row.ceiling is None else _number(row.ceiling, row.unit),
            _ratio(row),
            row.target,
            "-" if row.passed is None else ("PASS" if row.passed else "MISS"),
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [head, *lines]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(cells) for cells in lines)])


def details(figures: dict[str, Any]) -> str:
    """Return the supporting figures (those measured), one per line."""
    lines = [
        f"- payload: {figures['element_bytes']} bytes per stored message (raw runs use "
        "the same size)"
    ]
    if "raw_lpush_variadic_100" in figures:
        lines.append(
            "- raw LPUSH of 100 values in one command: "
            f"{figures['raw_lpush_variadic_100']:,.0f} msg/s"
        )
    for c in (10, 100):
        if (d := figures.get(f"drain_c{c}")) is not None:
            lines.append(
                f"- drain c{c}: whole process {d['process_rate']:,.0f} tasks/s including "
                f"start-up {d['startup_s']:.2f} s (spawn to first task) and exit "
                f"{d['shutdown_s']:.2f} s (last task to exit); VmHWM {d['hwm_mib']:.1f} MiB; "
                f"most leases held at once (sampled every 10 ms): {d['processing_max']:,}"
            )
            lines += [f"  - worker log: {line}" for line in d["warnings"]]
    if "rss_import_floor_mib" in figures:
        lines.append(
            "- RSS floor (a process importing only asynctasq, redis, uvloop, the tasks): "
            f"{figures['rss_import_floor_mib']:.1f} MiB"
        )
    if (lat := figures.get("latency_ms")) is not None:
        ours, raw = lat["ours"], lat["raw"]
        lines.append(
            f"- latency: mean {ours['mean']:.2f} ms, max {ours['max']:.2f} ms over "
            f"{ours['samples']} tasks; raw (two processes) mean {raw['mean']:.2f} ms, max "
            f"{raw['max']:.2f} ms"
        )
        if (same := lat.get("raw_one_process")) is not None:
            lines.append(
                f"- raw hand-over inside one process (producer and consumer on one loop): "
                f"p50 {same['p50']:.2f} ms, mean {same['mean']:.2f} ms"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Return what the figures depend on: CPUs, CPU model, RAM, Python, event loop."""
    model = "?"
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        ram_kib = int(meminfo.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": round(ram_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
    }


def source() -> str:
    """Return where asynctasq was imported from: ``git <commit>[+dirty]`` or its directory."""
    package = Path(asynctasq.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(package)
    return f"git {commit}{'+dirty' if dirty else ''} ({package})"
