"""The gateway benchmark's tail phase (bench_gateway.py): one caller alternates a direct call to
the upstream and a call through the gateway for a fixed time, long enough to span several
checkpoints, and reports p50, p99, p99.9 and max of both side by side.

Alternating the two in one caller gives every gateway request a same-run baseline taken at the
same moment: on a shared machine a descheduled process delays the direct calls as much as the
gateway's, so a stall of the gateway alone shows as a gap between the two columns. The slowest
gateway requests are listed with their distance to the nearest checkpoint the gateway signed
(read from its SQLite ledger afterwards), which shows whether the tail comes from sequencing.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NEAR", "TailRun", "percentile", "tail_probe"]

NEAR = (-0.5, 0.25)
"""Seconds from a checkpoint's signing: a pass reads and hashes its batches before, and writes
them just after (so a stall it causes starts in this window)."""

Call = Callable[[asyncio.StreamReader], Awaitable[tuple[int, bytes]]]


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile of `values` (q = 1 is the maximum)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class TailRun:
    """What the tail phase measured: latencies in seconds, gateway samples with their start
    (Unix seconds), the checkpoints signed meanwhile and the load average around the run."""

    seconds: float
    direct: list[float] = field(default_factory=list)
    gateway: list[tuple[float, float]] = field(default_factory=list)
    checkpoints: list[float] = field(default_factory=list)
    load_before: float = 0.0
    load_after: float = 0.0

    QUANTILES = (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))

    def figures(self) -> dict[str, dict[str, float]]:
        """{direct, gateway, added}: each quantile in ms (added = gateway - direct)."""
        through = [latency for _, latency in self.gateway]
        direct = {k: percentile(self.direct, q) * 1000 for k, q in self.QUANTILES}
        gateway = {k: percentile(through, q) * 1000 for k, q in self.QUANTILES}
        added = {k: gateway[k] - direct[k] for k, _ in self.QUANTILES}
        return {"direct": direct, "gateway": gateway, "added": added}

    def near_checkpoints(self) -> dict[str, dict[str, float]]:
        """{near, elsewhere}: count, p99 and max (ms) of the gateway requests that started in
        `NEAR` of a checkpoint's signing, and of the others. Without a stall at checkpoints
        the two look alike; before the sequencer left the request path, the near maximum was
        the run's maximum."""
        low, high = NEAR
        groups: dict[str, list[float]] = {"near": [], "elsewhere": []}
        for started, latency in self.gateway:
            near = any(low <= started - c <= high for c in self.checkpoints)
            groups["near" if near else "elsewhere"].append(latency)
        return {
            name: {
                "n": len(values),
                "p99": percentile(values, 0.99) * 1000 if values else 0.0,
                "max": max(values) * 1000 if values else 0.0,
            }
            for name, values in groups.items()
        }

    def slowest(self, count: int = 5) -> list[tuple[float, float | None]]:
        """The `count` slowest gateway requests: (latency ms, ms from the nearest checkpoint)."""
        worst = sorted(self.gateway, key=lambda sample: sample[1], reverse=True)[:count]
        out = []
        for started, latency in worst:
            near = min(self.checkpoints, key=lambda c: abs(c - started), default=None)
            out.append((latency * 1000, None if near is None else (started - near) * 1000))
        return out

    def to_json(self) -> dict[str, object]:
        """The figures, rounded, for `--json`."""
        return {
            "seconds": round(self.seconds, 1),
            "requests": len(self.gateway),
            "checkpoints": len(self.checkpoints),
            "load_average": [round(self.load_before, 2), round(self.load_after, 2)],
            **{
                name: {k: round(v, 3) for k, v in values.items()}
                for name, values in self.figures().items()
            },
            "near_checkpoints_ms": {
                name: {k: round(v, 3) for k, v in group.items()}
                for name, group in self.near_checkpoints().items()
            },
            "slowest_ms": [
                {"latency": round(lat, 3), "from_checkpoint": None if d is None else round(d, 1)}
                for lat, d in self.slowest()
            ],
        }

    def report(self) -> str:
        """The table the benchmark prints."""
        figures = self.figures()
        lines = [
            f"\nsequential c=1 for {self.seconds:.0f} s, direct and gateway alternated "
            f"({len(self.gateway)} each, {len(self.checkpoints)} checkpoints signed meanwhile, "
            f"load average {self.load_before:.2f} -> {self.load_after:.2f}), ms:",
            "         " + "".join(k.rjust(9) for k, _ in self.QUANTILES),
        ]
        for name, values in figures.items():
            lines.append(name.ljust(9) + "".join(f"{v:9.3f}" for v in values.values()))
        slow = ", ".join(
            f"{lat:.1f}" + ("" if d is None else f" ({d:+.0f} ms from a checkpoint)")
            for lat, d in self.slowest()
        )
        near = self.near_checkpoints()
        lines.append(
            f"gateway requests started {NEAR[0]:+.2f}..{NEAR[1]:+.2f} s from a checkpoint: "
            + "; elsewhere: ".join(
                f"{g['n']:.0f}, p99 {g['p99']:.3f}, max {g['max']:.3f}" for g in near.values()
            )
        )
        lines.append(f"slowest gateway requests: {slow}")
        return "\n".join(lines)


def signed_checkpoints(database: Path, since: float, until: float) -> list[float]:
    """When the gateway signed its checkpoints between `since` and `until` (Unix seconds)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT signed_at_us FROM ledger_checkpoints WHERE signed_at_us BETWEEN ? AND ?",
            (int(since * 1e6), int(until * 1e6)),
        ).fetchall()
    return [row[0] / 1e6 for row in rows]


async def tail_probe(
    read_response: Call,
    direct: tuple[int, bytes],
    gateway: tuple[int, bytes],
    seconds: float,
    database: Path,
) -> TailRun:
    """Alternate one direct call and one gateway call, sequentially, for `seconds`.

    `direct` and `gateway` are (port, raw HTTP request); `database` is the gateway's SQLite
    file (for the checkpoint times)."""
    run = TailRun(seconds, load_before=os.getloadavg()[0])
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", direct[0])
    gw_reader, gw_writer = await asyncio.open_connection("127.0.0.1", gateway[0])
    try:
        for _ in range(20):  # warm both connections
            for reader, writer, request in (
                (up_reader, up_writer, direct[1]),
                (gw_reader, gw_writer, gateway[1]),
            ):
                writer.write(request)
                await read_response(reader)
        since = time.time()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            up_writer.write(direct[1])
            status, body = await read_response(up_reader)
            run.direct.append(time.perf_counter() - started)
            wall = time.time()
            started = time.perf_counter()
            gw_writer.write(gateway[1])
            status, body = await read_response(gw_reader)
            run.gateway.append((wall, time.perf_counter() - started))
            if status != 200:
                raise RuntimeError(f"gateway answered {status}: {body[:200]!r}")
        until = time.time()
    finally:
        up_writer.close()
        gw_writer.close()
    run.load_after = os.getloadavg()[0]
    run.checkpoints = signed_checkpoints(database, since, until)
    return run
