"""Benchmark of `unhardcoded export parquet`: decisions/s and peak memory, next to a naive
`pandas.DataFrame(rows).to_parquet()` of the same decision rows, measured in the same run.

The ledger (generated once, reused with --db): a 2,500-entry generated catalog (the decision
record benchmark's), four policy variants, eight tenants, token counts drawn from 200 classes (so
outcomes and rank orders repeat, as they do in production), one upstream attempt for 1 decision in
10, recorded through the real `DecisionService` (64 concurrent producers).

Each measured phase runs in a fresh subprocess, so its peak RSS (`ru_maxrss`) is its own:

1. `export`: `export_parquet` of every decision (all six datasets), timed end to end.
2. `naive`: read the same decisions, build one dict per decision with the same columns, then
   `pandas.DataFrame(rows).to_parquet()`. It holds every row in memory, so past `--naive-sample`
   decisions it runs on the first `--naive-sample` only and its time and memory above the
   interpreter's baseline are extrapolated linearly to the full size (the output says so).

Run from the repository root:

    python -m bench.bench_export                              # 1,000,000 decisions
    python -m bench.bench_export --decisions 100000 --json
    python -m bench.bench_export --db /tmp/ledger-1m.db       # reuse a generated ledger
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_decision_record import POLICY, generate_catalog
from ledger import NewEvent, uuid7
from router.core import Policy, RequestFeatures
from router.services.decisions import (
    ATTEMPT_FINISHED,
    ATTEMPT_SCHEMA,
    DECISION_MADE,
    DecisionService,
    attempt_stream,
)
from router.services.decisions._events import decision_event, outcome_event
from unhardcoded.db import migrated_ledger

TENANTS = [f"tenant-{i}" for i in range(8)]


def _policies(catalog: Any) -> list[Policy]:
    variants = [
        POLICY,
        {**POLICY, "rules": POLICY["rules"][:3]},
        {**POLICY, "rank": [["desc", "bench_intelligence"]]},
        {**POLICY, "rules": [r for r in POLICY["rules"] if r["id"] != "residency.eu"]},
    ]
    return [Policy.from_json(v, catalog.schema) for v in variants]


async def generate(db: Path, decisions: int, entries: int) -> None:
    """Record `decisions` decisions (and attempts for 1 in 10) into a new SQLite ledger.

    Each (policy, token class) is decided once through `DecisionService.decide` (which records
    the catalog, the policies and the outcomes the real way); the remaining decisions reuse
    those traces and are appended as real `DecisionMade` / `AttemptFinished` events in batches
    of 5,000 (the service's per-decision path would take most of an hour for a million)."""
    catalog = generate_catalog(entries)
    policies = _policies(catalog)
    classes = [RequestFeatures(200 + 37 * i, 100 + 13 * (i % 17)) for i in range(200)]
    rng = random.Random(7)
    async with migrated_ledger(f"sqlite+aiosqlite:///{db}", home=db.parent / "home") as led:
        service = DecisionService(led)
        seeds = {}
        for p, policy in enumerate(policies):
            for c, features in enumerate(classes):
                decision = await service.decide(TENANTS[0], policy, catalog, features=features)
                seeds[p, c] = (decision.trace, outcome_event(decision.trace)[0], features)
        made = len(seeds)
        while made < decisions:
            events: list[NewEvent] = []
            for _ in range(min(5000, decisions - made)):
                trace, outcome, features = seeds[rng.randrange(4), rng.randrange(200)]
                decision_id = uuid7()
                events.append(
                    decision_event(
                        decision_id=decision_id,
                        tenant=TENANTS[rng.randrange(len(TENANTS))],
                        preview=False,
                        trace=trace,
                        outcome=outcome,
                        features=features,
                        digest=f"{rng.getrandbits(256):064x}",
                        body=None,
                    )
                )
                if made % 10 == 0:
                    entry = trace.catalog.entries[trace.plan[0]].id
                    events.append(
                        NewEvent(
                            ATTEMPT_FINISHED,
                            attempt_stream(decision_id),
                            {
                                "schema": ATTEMPT_SCHEMA,
                                "decision_id": str(decision_id),
                                "attempt": 1,
                                "entry": entry,
                                "status": "ok",
                                "error_class": None,
                                "http_status": 200,
                                "latency_ms": 250.0,
                                "usage": {"in": 1000, "out": 300},
                                "cost_usd": 0.002,
                            },
                        )
                    )
                made += 1
            await led.append(events)
        await led.sequence()


def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike `ru_maxrss` it is not inherited
    from the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def phase_export(db: Path, out: Path) -> dict[str, Any]:
    from reports import export_parquet
    from unhardcoded.cli._period import bounded_memory

    bounded_memory()  # as the CLI does
    base = _rss_mb()
    async with migrated_ledger(f"sqlite+aiosqlite:///{db}", home=db.parent / "home") as led:
        start = time.perf_counter()
        summary = await export_parquet(led, out)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": summary.rows, "rss_mb": _rss_mb(), "base_rss_mb": base}


async def phase_naive(db: Path, out: Path, sample: int) -> dict[str, Any]:
    import pandas as pd

    base = _rss_mb()
    async with migrated_ledger(f"sqlite+aiosqlite:///{db}", home=db.parent / "home") as led:
        start = time.perf_counter()
        rows: list[dict[str, Any]] = []
        position = 0
        while len(rows) < sample:
            batch = await led.read(position, limit=20_000)
            if not batch:
                break
            for envelope in batch:
                if envelope.type != DECISION_MADE or len(rows) >= sample:
                    continue
                p = json.loads(envelope.payload)
                selected = p["selected"]
                rows.append(
                    {
                        "decision_id": p["decision_id"],
                        "position": envelope.position,
                        "recorded_at": pd.Timestamp(envelope.recorded_at_us, unit="us", tz="UTC"),
                        "tenant": p["tenant"],
                        "preview": p["preview"],
                        "policy_fingerprint": p["policy"]["fingerprint"],
                        "policy_digest": p["policy"]["digest"],
                        "catalog_version": p["catalog_version"],
                        "evaluator_version": p["evaluator_version"],
                        "request_digest": p["request_digest"],
                        "tokens_in": None if p["tokens"] is None else p["tokens"]["in"],
                        "tokens_out": None if p["tokens"] is None else p["tokens"]["out"],
                        "outcome_digest": p["filter"]["outcome"],
                        "order_digest": p["rank"]["order_sha256"],
                        "passing": p["filter"]["passing"],
                        "selected_index": None if selected is None else selected["index"],
                        "selected_id": None if selected is None else selected["id"],
                        "plan": p["plan"],
                    }
                )
            position = batch[-1].position + 1
        pd.DataFrame(rows).to_parquet(out / "decisions.parquet")
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(rows), "rss_mb": _rss_mb(), "base_rss_mb": base}


def _subprocess(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_export", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=2500)
    parser.add_argument("--db", type=Path, help="Ledger file (generated when absent).")
    parser.add_argument("--naive-sample", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phase", choices=["export", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "export":
        print(json.dumps(asyncio.run(phase_export(args.db, args.out))))
        return
    if args.phase == "naive":
        print(json.dumps(asyncio.run(phase_naive(args.db, args.out, args.naive_sample))))
        return

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        db = args.db or Path(tmp) / "ledger.db"
        generated = None
        if not db.exists():
            db.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            asyncio.run(generate(db, args.decisions, args.entries))
            generated = time.perf_counter() - start
        out = Path(tmp) / "export"
        export = _subprocess("--phase", "export", "--db", str(db), "--out", str(out))
        shutil.rmtree(out)
        decisions = export["rows"]["decisions"]
        naive_out = Path(tmp) / "naive"
        naive_out.mkdir()
        naive = _subprocess(
            "--phase", "naive", "--db", str(db), "--out", str(naive_out),
            "--naive-sample", str(args.naive_sample),
        )  # fmt: skip
        scale = decisions / max(naive["rows"], 1)
        naive_seconds = naive["seconds"] * scale
        naive_rss = naive["base_rss_mb"] + (naive["rss_mb"] - naive["base_rss_mb"]) * scale
        figures = {
            "decisions": decisions,
            "entries": args.entries,
            "generated_s": generated,
            "export": {
                **export,
                "decisions_per_s": decisions / export["seconds"],
                "peak_rss_mb": export["rss_mb"],
            },
            "naive": {
                **naive,
                "extrapolated": naive["rows"] < decisions,
                "decisions_per_s": decisions / naive_seconds,
                "peak_rss_mb_at_full_size": naive_rss,
            },
            "ratio_speed_export_vs_naive": naive_seconds / export["seconds"],
            "ratio_memory_naive_vs_export": naive_rss / export["rss_mb"],
            "targets": {"decisions_per_s": 200_000, "peak_rss_mb": 512},
        }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    e, n = figures["export"], figures["naive"]
    sampled = f", on {n['rows']:,} decisions, extrapolated" if n["extrapolated"] else ""
    print(
        f"{decisions:,} decisions, {args.entries:,}-entry catalog\n"
        f"export (6 datasets): {e['seconds']:.1f} s = {e['decisions_per_s']:,.0f} decisions/s, "
        f"peak RSS {e['peak_rss_mb']:.0f} MB (after imports {e['base_rss_mb']:.0f} MB); "
        f"rows {e['rows']}\n"
        f"naive DataFrame.to_parquet (decisions only{sampled}): "
        f"{n['decisions_per_s']:,.0f} decisions/s, "
        f"peak RSS {n['peak_rss_mb_at_full_size']:.0f} MB\n"
        f"ratios: export is {figures['ratio_speed_export_vs_naive']:.2f}× the naive speed; "
        f"the naive one needs {figures['ratio_memory_naive_vs_export']:.2f}× the memory\n"
        "targets: ≥ 200,000 decisions/s, ≤ 512 MB peak"
    )


if __name__ == "__main__":
    main()
