"""bench/gen_ledger.py: the bulk path records the same events as the service path (byte for
byte, but for decision ids), and a generated ledger replays with zero mismatches."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bench.gen_ledger import generate
from router.services.decisions import DecisionService
from router.services.replay import ReplayService
from unhardcoded.db import migrated_ledger


async def _events(url: str, home: Path, path: str) -> Counter[tuple[str, bytes]]:
    async with migrated_ledger(url, home=home) as led:
        await generate(
            led, decisions=60, tenants=4, policies=3, catalogs=2, entries=40, seed=5, path=path
        )
        events = await led.read(0, limit=10_000)
        report = await ReplayService(DecisionService(led)).original(record=False)
    assert report.decisions == 60
    assert report.mismatches == 0
    out: Counter[tuple[str, bytes]] = Counter()
    for event in events:
        payload = json.loads(event.payload)
        if event.type == "DecisionMade":
            assert payload.pop("decision_id") == str(event.event_id)
        out[event.type, json.dumps(payload, sort_keys=True).encode()] += 1
    return out


async def test_bulk_and_service_paths_record_the_same_events(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bulk = await _events(f"sqlite+aiosqlite:///{tmp_path}/bulk.db", home, "bulk")
    service = await _events(f"sqlite+aiosqlite:///{tmp_path}/service.db", home, "service")
    assert sum(n for (kind, _), n in bulk.items() if kind == "DecisionMade") == 60
    assert bulk == service
