"""The gateway benchmark's ledger floor: the two durable appends every gateway request makes
(`DecisionService.decide` + `record_attempt`), in process, without HTTP (bench_gateway.py)."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ledger_floor"]


async def ledger_floor(
    tmp: Path,
    concurrency: int,
    total: int,
    catalog_json: Mapping[str, Any],
    policy: Mapping[str, Any],
    messages: list[dict[str, str]],
) -> tuple[float, float, float]:
    """In-process `DecisionService.decide` + `record_attempt` (the two durable appends every
    gateway request makes), `concurrency` at a time: (requests/s, p50 ms, CPU ms per request)."""
    from router.core import Catalog, Policy
    from router.services.decisions import Attempt, DecisionService
    from unhardcoded.db import migrated_ledger

    catalog = Catalog.from_json(catalog_json)
    parsed = Policy.from_json(policy, catalog.schema)  # once, as the gateway's edge does
    body = {"model": "auto", "messages": messages}
    folder = Path(tempfile.mkdtemp(dir=tmp))
    async with migrated_ledger(f"sqlite+aiosqlite:///{folder / 'floor.db'}", home=folder) as ledger:
        service = DecisionService(ledger)
        latencies: list[float] = []

        async def one_caller(count: int) -> None:
            for _ in range(count):
                started = time.perf_counter()
                decision = await service.decide("bench", parsed, catalog, request_body=body)
                await service.record_attempt(
                    decision, Attempt(number=1, entry=decision.plan[0], status="ok", latency_ms=0.1)
                )
                latencies.append(time.perf_counter() - started)

        await one_caller(20)
        latencies.clear()
        times = os.times()
        cpu = times.user + times.system
        started = time.perf_counter()
        await asyncio.gather(*(one_caller(total // concurrency) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        times = os.times()
        used = (times.user + times.system - cpu) * 1000 / len(latencies)
    ordered = sorted(latencies)
    return len(latencies) / seconds, ordered[len(ordered) // 2] * 1000, used
