"""Benchmark of replay: `--mode original` and `--against latest` decisions/s and peak memory on a
generated ledger, next to re-evaluating decisions one by one (the baseline) in the same run.

- Each replay mode runs in a fresh child process, so its peak RSS (ru_maxrss) is its own; the
  child opens the ledger, runs the service (`ReplayService.original` / `.against(latest)`,
  without recording a ReplayRun), and reports decisions/s over the whole scan.
- Baseline (same run, a child process too): for a sample of decisions spread over the ledger,
  one at a time — read its `DecisionMade`, load its policy and catalog (cached, as any real
  implementation would), re-evaluate it with the evaluator (`decide`, no memo) and compare the
  outcome digests: what replay costs without grouping. Extrapolated per decision.

Run from the repository root (make the ledger once with bench/gen_ledger.py):

    python bench/gen_ledger.py --db sqlite+aiosqlite:////tmp/bench1m.db         # 1,000,000
    python bench/bench_replay.py --db sqlite+aiosqlite:////tmp/bench1m.db [--json]
    python bench/bench_replay.py --decisions 50000       # generates a temporary ledger first
    python bench/bench_replay.py --db … --floor   # + reading alone, reading + parsing alone
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_ledger import generate
from ledger import Ledger, open_ledger
from router.core import RequestFeatures, Tokens, decide, effective_tokens
from router.services.decisions import (
    DECISION_MADE,
    DecisionService,
    encode_outcome,
    outcome_digest,
)
from router.services.replay import DecisionFilter, ReplayService
from router.services.replay._columnar import Columnar
from router.services.replay._rows import ORIGINAL_RESULTS
from unhardcoded.db import migrated_ledger

HOME = "/tmp/.bench_replay_home"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _child(mode: str, url: str, sample: int) -> dict[str, Any]:
    async with open_ledger(url, home=HOME) as led:
        service = DecisionService(led)
        if mode == "baseline":
            return await _baseline(service, sample)
        if mode in FLOORS:
            return await _floor(led, mode)
        replay = ReplayService(service)
        cpu = _cpu()
        start = time.perf_counter()
        if mode == "original":
            report = await replay.original(record=False)
        else:
            report = await replay.against(await service.catalog("latest"), record=False)
        seconds = time.perf_counter() - start
        cpu = _cpu() - cpu
    return {
        "mode": mode,
        "decisions": report.decisions,
        "groups": report.groups,
        "evaluations": report.evaluations,
        "mismatches": report.mismatches,
        "changed": report.changed,
        "seconds": round(seconds, 2),
        "decisions_per_s": round(report.decisions / seconds),
        "cpu_seconds": round(cpu, 2),
        "decisions_per_cpu_s": round(report.decisions / cpu),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


FLOORS = ("read", "parse")


async def _floor(led: Ledger, mode: str) -> dict[str, Any]:
    """What replay cannot go below: reading every decision in batches (`read`), and reading them
    and parsing their payloads into group keys in DuckDB (`parse`), with nothing evaluated,
    joined or reported."""
    cols = Columnar(ORIGINAL_RESULTS, DecisionFilter(), original=True) if mode == "parse" else None
    decisions = 0
    cpu = _cpu()
    start = time.perf_counter()
    try:
        async for batch in led.scan_batches(types=(DECISION_MADE,), batch=ReplayService.PAGE):
            decisions += batch.num_rows
            if cols is not None:
                cols.load(cols.parse(batch))
    finally:
        if cols is not None:
            cols.close()
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    return {
        "mode": mode,
        "decisions": decisions,
        "seconds": round(seconds, 2),
        "decisions_per_s": round(decisions / seconds),
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_decision": round(cpu / decisions * 1e6, 2),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


async def _baseline(service: DecisionService, sample: int) -> dict[str, Any]:
    total = await service.ledger.count()
    step = max(1, total // sample)
    picked = 0
    seconds = 0.0
    position = 0
    cpu = 0.0
    while picked < sample and position < total:
        start = time.perf_counter()
        cpu_start = _cpu()
        envelope = await service.ledger.get(position)
        if envelope.type == "DecisionMade":
            payload = envelope.payload_json()
            policy = await service.policy(payload["policy"]["fingerprint"])
            catalog = await service.catalog_version(payload["catalog_version"])
            doc = payload["features"]
            features = None if doc is None else RequestFeatures(**doc)
            tokens: Tokens | None = effective_tokens(policy, features)
            trace = decide(policy, catalog, features)
            assert trace.tokens == tokens
            if outcome_digest(encode_outcome(trace)) != payload["filter"]["outcome"]:
                raise AssertionError(f"baseline mismatch at position {position}")
            seconds += time.perf_counter() - start
            cpu += _cpu() - cpu_start
            picked += 1
        position += step if envelope.type == "DecisionMade" else 1
    return {
        "mode": "baseline",
        "sampled": picked,
        "seconds": round(seconds, 2),
        "decisions_per_s": round(picked / seconds),
        "cpu_seconds": round(cpu, 2),
        "decisions_per_cpu_s": round(picked / cpu),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


def _run_child(mode: str, url: str, sample: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--db", url, "--sample", str(sample)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, metavar="URL", help="a ledger made by gen_ledger")
    parser.add_argument("--decisions", type=int, default=50_000, help="without --db: generate")
    parser.add_argument("--sample", type=int, default=500, help="baseline sample size")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--floor", action="store_true", help="also time reading alone, and reading + parsing"
    )
    parser.add_argument("--child", choices=["original", "against", "baseline", *FLOORS])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.db, args.sample))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db
        if url is None:
            url = f"sqlite+aiosqlite:///{tmp}/ledger.db"

            async def make() -> None:
                async with migrated_ledger(url, home=HOME) as led:
                    await generate(
                        led, decisions=args.decisions, tenants=50, policies=20, catalogs=5,
                        entries=2500,
                    )  # fmt: skip

            asyncio.run(make())
        figures = {mode: _run_child(mode, url, args.sample) for mode in ("original", "against")}
        figures["baseline"] = _run_child("baseline", url, args.sample)
        if args.floor:
            figures.update({mode: _run_child(mode, url, args.sample) for mode in FLOORS})
    base = figures["baseline"]["decisions_per_s"]
    for mode in ("original", "against"):
        figures[mode]["ratio_vs_baseline"] = round(figures[mode]["decisions_per_s"] / base, 1)
        figures[mode]["cpu_ratio_vs_baseline"] = round(
            figures[mode]["decisions_per_cpu_s"] / figures["baseline"]["decisions_per_cpu_s"], 1
        )
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for mode in ("original", "against"):
        f = figures[mode]
        print(
            f"--mode {mode}: {f['decisions']:,} decisions in {f['seconds']} s = "
            f"{f['decisions_per_s']:,}/s wall, {f['decisions_per_cpu_s']:,}/CPU-s "
            f"({f['groups']:,} groups, {f['evaluations']:,} evaluations), peak RSS "
            f"{f['peak_rss_mb']} MB; {f['ratio_vs_baseline']}x baseline "
            f"({f['cpu_ratio_vs_baseline']}x per CPU-s)"
        )
    b = figures["baseline"]
    print(
        f"baseline (one by one, {b['sampled']} sampled): {b['decisions_per_s']:,}/s wall, "
        f"{b['decisions_per_cpu_s']:,}/CPU-s "
        f"-> {1_000_000 / b['decisions_per_s'] / 60:.0f} min per million decisions"
    )
    for mode in FLOORS if args.floor else ():
        f = figures[mode]
        print(
            f"floor, {mode}{' alone' if mode == 'read' else ' (read + DuckDB parse)'}: "
            f"{f['decisions']:,} decisions in {f['seconds']} s = {f['decisions_per_s']:,}/s "
            f"wall, {f['cpu_us_per_decision']} µs CPU per decision, peak RSS "
            f"{f['peak_rss_mb']} MB"
        )


if __name__ == "__main__":
    main()
