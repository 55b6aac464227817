"""Small helpers shared by the benchmark scripts: timings, statistics, tables, memory and CPU
readings.

Benchmarks print figures; they never assert on them (project rule). Every script imports this
module as ``_util`` because ``python benchmarks/<name>.py`` puts ``benchmarks/`` on sys.path.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by nearest rank on a sorted copy."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as ``1.23x``; ``-`` when the baseline is zero or missing."""
    if not baseline or baseline != baseline:  # zero or NaN
        return "-"
    return f"{value / baseline:.2f}x"


def fmt(value: float, digits: int = 1) -> str:
    """A number with thousands separators; integers stay integers."""
    if value != value:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


async def timed_ms(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Milliseconds each of ``count`` awaits of ``call()`` took, one after another."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def latency_row(
    name: str, ours: Sequence[float], base: Sequence[float], digits: int = 2
) -> list[object]:
    """A table row: our p50 and p95, the baseline's p50 and the ratio of the p50s (``-`` for
    a measure with no baseline)."""
    return [
        name,
        fmt(median(ours), digits),
        fmt(percentile(ours, 95), digits),
        fmt(median(base), digits),
        ratio(median(ours), median(base)),
    ]


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table, right-aligned except for the first column."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def header(name: str, settings: str) -> None:
    """The first lines of every script's output: what ran where."""
    print(f"{name}  ({datetime.now():%Y-%m-%d %H:%M})")
    print(
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores; {settings}"
    )


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def proc_rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) RSS of another process in MiB from /proc; NaN where unavailable."""
    fields = {"VmRSS:": float("nan"), "VmHWM:": float("nan")}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for text in status:
                parts = text.split()
                if parts and parts[0] in fields:
                    fields[parts[0]] = int(parts[1]) / 1024
    except OSError:
        pass
    return fields["VmRSS:"], fields["VmHWM:"]


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time another process has used (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
