"""Benchmark: one full policy decision (filter → rank → select → plan, with its trace) on a
generated 2,500-entry catalog with a 5-rule policy, the memoized path, and the floor of a bare
Python loop over the same entries reading one attribute, all measured in the same run.

Run from the repository root:  .venv/bin/python bench/bench_policy.py [--entries N] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.core import Catalog, Evaluator, Policy, RequestFeatures, decide

PROVIDERS = ["openai", "anthropic", "google", "mistral", "deepseek", "xai", "groq", "together"]
REGIONS = ["us", "eu", "apac"]
CAPABILITIES = ["tools", "vision", "json", "reasoning", "audio"]

POLICY = {
    "v": "sigma-pol/v1",
    "rules": [
        {"id": "tier.floor", "when": ["cmp", "bench_intelligence", "ge", 0.3]},
        {
            "id": "contract.providers",
            "when": ["in", "provider", ["anthropic", "google", "mistral", "openai"]],
        },
        {"id": "residency.not_apac", "when": ["not", ["eq", "region", "apac"]]},
        {"id": "dpa.no_log", "when": ["is", "no_log"]},
        {
            "id": "product.tools_or_cheap",
            "when": ["any", ["has", "capabilities", "tools"], ["cmp", "cost_per_run", "le", 0.01]],
        },
    ],
    "rank": [["asc", "cost_per_run"], ["desc", "bench_intelligence"]],
    "tokens": {"in": 1200, "out": 400},
    "fallback": {"max_attempts": 3},
}


def generated_catalog(size: int, seed: int = 7) -> Catalog:
    """A deterministic catalog of `size` entries; 5% lack `no_log`, 5% are not active."""
    rng = random.Random(seed)
    entries: list[dict[str, Any]] = []
    for i in range(size):
        provider = rng.choice(PROVIDERS)
        region = rng.choice(REGIONS)
        entry: dict[str, Any] = {
            "id": f"{provider}/model-{i:05d}@{region}",
            "model": f"model-{i:05d}",
            "provider": provider,
            "region": region,
            "price_in": round(rng.uniform(0.01, 20), 3),
            "price_out": round(rng.uniform(0.05, 80), 3),
            "context_window": rng.choice([8000, 128000, 200000, 1000000]),
            "bench_intelligence": round(rng.random(), 2),
            "no_log": rng.random() < 0.5,
            "capabilities": rng.sample(CAPABILITIES, rng.randint(0, 4)),
            "status": "active" if rng.random() < 0.95 else "deprecated",
        }
        if rng.random() < 0.05:
            del entry["no_log"]
        entries.append(entry)
    return Catalog.from_json({"name": f"generated-{size}", "entries": entries})


def median_seconds(func: Callable[[], object], batch: int, rounds: int = 31) -> float:
    """Median over `rounds` of the mean time of one call in a batch of `batch` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch):
            func()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2500)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    start = time.perf_counter()
    catalog = generated_catalog(args.entries)
    load = time.perf_counter() - start
    policy = Policy.from_json(POLICY, catalog.schema)
    features = RequestFeatures(1200, 400)

    start = time.perf_counter()
    first = decide(policy, catalog, features)  # builds the catalog's column index once
    cold = time.perf_counter() - start

    entries = catalog.entries

    def floor() -> int:
        seen = 0
        for entry in entries:
            if entry.attributes.get("bench_intelligence") is not None:
                seen += 1
        return seen

    evaluator = Evaluator()
    evaluator.evaluate(policy, catalog, features)

    decision = median_seconds(lambda: decide(policy, catalog, features), batch=20)
    memo = median_seconds(lambda: evaluator.evaluate(policy, catalog, features), batch=2000)
    loop = median_seconds(floor, batch=10)
    words = median_seconds(first.to_json, batch=1, rounds=5)

    figures = {
        "entries": len(entries),
        "rules": len(policy.rules),
        "passing": len(first.ranked),
        "catalog_load_ms": round(load * 1e3, 1),
        "first_decision_ms": round(cold * 1e3, 2),
        "decision_us": round(decision * 1e6, 1),
        "memoized_us": round(memo * 1e6, 2),
        "floor_loop_us": round(loop * 1e6, 1),
        "decision_over_floor": round(decision / loop, 3),
        "memoized_over_floor": round(memo / loop, 5),
        "full_words_trace_ms": round(words * 1e3, 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    rows = [
        ("catalog load + validation", f"{figures['catalog_load_ms']} ms", "once per version"),
        ("first decision (builds the index)", f"{figures['first_decision_ms']} ms", "once"),
        ("decision with trace (median)", f"{figures['decision_us']} µs", "target ≤ 500 µs"),
        ("memoized decision (median)", f"{figures['memoized_us']} µs", "target ≤ 20 µs"),
        ("floor: bare loop reading 1 attribute", f"{figures['floor_loop_us']} µs", "same run"),
        ("decision / floor", str(figures["decision_over_floor"]), ""),
        ("memoized / floor", str(figures["memoized_over_floor"]), ""),
        ("full trace in words (to_json)", f"{figures['full_words_trace_ms']} ms", "on demand"),
    ]
    print(
        f"catalog: {figures['entries']} entries, policy: {figures['rules']} rules "
        f"(+ built-in catalog.status), {figures['passing']} entries pass"
    )
    for label, value, note in rows:
        print(f"{label:<38}{value:>12}  {note}".rstrip())


if __name__ == "__main__":
    main()
