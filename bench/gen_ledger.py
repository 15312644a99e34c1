"""Generate a realistic decision ledger for benchmarks (replay, reports).

N decisions from T tenants under P policies, over C catalog versions derived from one generated
E-entry catalog (each version changes the prices of ~1 % of the entries and the status of a few),
published in order as traffic goes on (decision i uses version `i * C // N`; the last one is
`latest`). Each tenant uses one or two policies (Zipf-weighted tenants). Half of the policies fix
their token counts; the others take them from the request, drawn from 24 input × 6 output sizes
(`--token-sizes` changes the 24), so decisions share outcomes the way real traffic does.
Deterministic for a seed: the same seed gives the same sequence of (tenant, policy, catalog,
features, request) — decision ids and timestamps are the clock's.

Two recording paths, same events:

- `--path service`: every decision through `DecisionService.decide` (32 concurrent producers).
- `--path bulk` (default): the first decision of every (policy, catalog version, tokens) group
  goes through `DecisionService.decide` (which records CatalogPublished, PolicyRecorded and
  OutcomeRecorded once); every other decision's `DecisionMade` is built by the same function the
  service uses (`decision_event`, from the same evaluator trace and outcome digest) and appended
  in batches of `--batch` events (one transaction each). The payloads are byte-identical to the
  service path's except for the decision id (tests/replay/test_gen_ledger.py checks it).

Measured on the shared 2-core machine (SQLite): see bench/README.md.

Run from the repository root:

    python bench/gen_ledger.py --db sqlite+aiosqlite:///bench.db            # the defaults below
    python bench/gen_ledger.py --decisions 20000 --db sqlite+aiosqlite:///small.db
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_decision_record import CAPABILITIES, PROVIDERS, REGIONS, generate_catalog
from ledger import Ledger, NewEvent, uuid7
from router.core import Catalog, Policy, RequestFeatures, Trace, decide
from router.services.decisions import DecisionService, NoEntryPassesRecorded, catch_up
from router.services.decisions._events import (
    catalog_event,
    decision_event,
    outcome_event,
    policy_event,
    request_digest,
)
from unhardcoded.db import migrated_ledger

DEFAULTS = {"decisions": 1_000_000, "tenants": 50, "policies": 20, "catalogs": 5, "entries": 2500}
TOKENS_OUT = (64, 128, 256, 512, 1024, 2048)


def catalog_versions(entries: int, versions: int, seed: int) -> list[Catalog]:
    """`versions` catalogs: a generated one, then each derived from the previous by changing the
    prices of ~1 % of the entries (×0.8 … ×1.25) and the status of ~0.2 %."""
    rng = random.Random(seed * 7919 + 1)
    base = generate_catalog(entries, seed)
    out = [base]
    doc = base.to_json()
    for revision in range(1, versions):
        doc = json.loads(json.dumps(doc))
        for entry in rng.sample(doc["entries"], max(1, entries // 100)):
            factor = rng.uniform(0.8, 1.25)
            entry["price_in"] = round(entry["price_in"] * factor, 4)
            entry["price_out"] = round(entry["price_out"] * factor, 4)
        for entry in rng.sample(doc["entries"], max(1, entries // 500)):
            entry["status"] = "deprecated" if entry.get("status") == "active" else "active"
        doc["metadata"] = {"revision": revision}
        out.append(Catalog.from_json(doc))
    return out


def generate_policies(count: int, catalog: Catalog, seed: int) -> list[Policy]:
    """`count` distinct policies from rule templates (providers, residency, no_log, quality
    floors, context, capabilities, cost ceilings), half of them with fixed token counts."""
    rng = random.Random(seed * 104729 + 2)
    policies: list[Policy] = []
    seen: set[str] = set()
    while len(policies) < count:
        rules: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            rules.append(
                {
                    "id": "contract.providers",
                    "when": ["in", "provider", sorted(rng.sample(PROVIDERS, rng.randint(3, 12)))],
                }
            )
        if rng.random() < 0.4:
            rules.append({"id": "residency", "when": ["eq", "region", rng.choice(REGIONS[:3])]})
        if rng.random() < 0.3:
            rules.append({"id": "dpa.no_log", "when": ["is", "no_log"]})
        if rng.random() < 0.6:
            floor = round(rng.uniform(0.3, 0.85), 2)
            rules.append(
                {"id": "quality.floor", "when": ["cmp", "bench_intelligence", "ge", floor]}
            )
        if rng.random() < 0.3:
            window = rng.choice([32768, 128000])
            rules.append({"id": "context.min", "when": ["cmp", "context_window", "ge", window]})
        if rng.random() < 0.3:
            capability = rng.choice(CAPABILITIES)
            rules.append({"id": "needs.capability", "when": ["has", "capabilities", capability]})
        if rng.random() < 0.2:
            blocked = rng.sample(PROVIDERS, 2)
            blocking = ["not", ["in", "provider", sorted(blocked)]]
            rules.append({"id": "dpa.blocked", "when": blocking})
        if rng.random() < 0.2:
            ceiling = round(rng.uniform(0.001, 0.02), 4)
            rules.append({"id": "budget.ceiling", "when": ["cmp", "cost_per_run", "le", ceiling]})
        rank = rng.choice(
            [
                [["asc", "cost_per_run"]],
                [["asc", "cost_per_run"], ["desc", "bench_intelligence"]],
                [["desc", "bench_intelligence"], ["asc", "cost_per_run"]],
            ]
        )
        doc: dict[str, Any] = {
            "v": "sigma-pol/v1",
            "rules": rules,
            "rank": rank,
            "fallback": {"max_attempts": rng.randint(1, 4)},
        }
        if len(policies) % 2 == 0:
            doc["tokens"] = {"in": rng.choice([500, 1200, 4000]), "out": rng.choice([200, 400])}
        policy = Policy.from_json(doc, catalog.schema)
        if policy.digest not in seen:
            seen.add(policy.digest)
            policies.append(policy)
    return policies


@dataclass(frozen=True, slots=True)
class Traffic:
    """The deterministic plan of a generated ledger."""

    catalogs: list[Catalog]
    policies: list[Policy]
    tenants: list[str]
    tenant_policies: list[list[int]]
    tenant_weights: list[float]
    tokens_in: list[int]


def plan_traffic(
    *,
    tenants: int,
    policies: int,
    catalogs: int,
    entries: int,
    seed: int,
    token_sizes: int,
    largest_share: float | None = None,
) -> Traffic:
    """Catalogs, policies and tenants of a generated ledger (see the module docstring)."""
    versions = catalog_versions(entries, catalogs, seed)
    pols = generate_policies(policies, versions[0], seed)
    rng = random.Random(seed * 15485863 + 3)
    names = [f"tenant-{i:03d}" for i in range(tenants)]
    assigned = [
        sorted(rng.sample(range(policies), min(policies, rng.choice([1, 1, 2])))) for _ in names
    ]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(tenants)]
    if largest_share is not None and tenants > 1:
        # The first tenant takes that share; the others keep their Zipf proportions.
        weights[0] = largest_share / (1 - largest_share) * sum(weights[1:])
    sizes = sorted({int(rng.lognormvariate(6.5, 1.1)) + 20 for _ in range(token_sizes * 4)})
    tokens_in = sorted(rng.sample(sizes, min(token_sizes, len(sizes))))
    return Traffic(versions, pols, names, assigned, weights, tokens_in)


def decision_stream(traffic: Traffic, decisions: int, seed: int) -> Any:
    """Yield (i, tenant, policy index, catalog index, features, request body) in order."""
    rng = random.Random(seed * 32452843 + 4)
    versions = len(traffic.catalogs)
    for i in range(decisions):
        t = rng.choices(range(len(traffic.tenants)), traffic.tenant_weights)[0]
        p = rng.choice(traffic.tenant_policies[t])
        features = RequestFeatures(rng.choice(traffic.tokens_in), rng.choice(TOKENS_OUT))
        body = {"model": "auto", "messages": [{"role": "user", "content": f"request {seed}/{i}"}]}
        yield i, traffic.tenants[t], p, i * versions // decisions, features, body


def _progress(done: int, total: int, start: float, enabled: bool) -> None:
    if enabled:
        rate = done / max(time.perf_counter() - start, 1e-9)
        print(f"\r{done:,}/{total:,} decisions ({rate:,.0f}/s)", end="", file=sys.stderr)


async def _record_group_head(
    service: DecisionService,
    tenant: str,
    policy: Policy,
    catalog: Catalog,
    features: RequestFeatures,
    body: dict[str, Any],
) -> None:
    # A NoEntryPasses is recorded all the same: "no entry passes" is part of realistic traffic.
    with contextlib.suppress(NoEntryPassesRecorded):
        await service.decide(tenant, policy, catalog, request_body=body, features=features)


async def generate(
    led: Ledger,
    *,
    decisions: int,
    tenants: int,
    policies: int,
    catalogs: int,
    entries: int,
    seed: int = 1,
    path: str = "bulk",
    batch: int = 2000,
    token_sizes: int = 24,
    largest_share: float | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Record a generated ledger into `led`; returns figures (counts, seconds, rates)."""
    traffic = plan_traffic(
        tenants=tenants,
        policies=policies,
        catalogs=catalogs,
        entries=entries,
        seed=seed,
        token_sizes=token_sizes,
        largest_share=largest_share,
    )
    service = DecisionService(led, cache_size=100_000)
    traces: dict[tuple[int, int, RequestFeatures], Trace] = {}
    outcomes: dict[tuple[str, str, Any], str] = {}
    pending: list[NewEvent] = []
    inflight: list[asyncio.Task[Any]] = []
    start = time.perf_counter()
    published = -1

    async def flush() -> None:
        nonlocal pending
        if pending:
            inflight.append(asyncio.create_task(led.append(pending)))
            pending = []
        while len(inflight) > 3:
            await inflight.pop(0)

    async def drain() -> None:
        await flush()
        while inflight:
            await inflight.pop(0)

    if path == "service":
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                _, tenant, p, c, features, body = item
                await _record_group_head(
                    service, tenant, traffic.policies[p], traffic.catalogs[c], features, body
                )

        workers = [asyncio.create_task(worker()) for _ in range(32)]
        for item in decision_stream(traffic, decisions, seed):
            if item[3] != published:
                published = item[3]
                await service.publish_catalog(traffic.catalogs[published])
            await queue.put(item)
            if (item[0] + 1) % 20_000 == 0:
                _progress(item[0] + 1, decisions, start, progress)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    elif path == "bulk":
        if await led.count():
            raise SystemExit("--path bulk needs an empty ledger (it writes first-of-stream events)")
        recorded_policies: set[str] = set()
        recorded_outcomes: set[str] = set()
        for i, tenant, p, c, features, body in decision_stream(traffic, decisions, seed):
            policy, catalog = traffic.policies[p], traffic.catalogs[c]
            if c != published:
                published = c
                pending.append(catalog_event(catalog))
            if policy.digest not in recorded_policies:
                recorded_policies.add(policy.digest)
                pending.append(policy_event(policy))
            trace = traces.get((p, c, features))
            if trace is None:
                trace = traces[p, c, features] = decide(policy, catalog, features)
            key = (policy.digest, catalog.version, trace.tokens)
            outcome = outcomes.get(key)
            if outcome is None:
                outcome, event = outcome_event(trace)
                outcomes[key] = outcome
                if outcome not in recorded_outcomes:  # one stream per distinct outcome
                    recorded_outcomes.add(outcome)
                    pending.append(event)
            digest, _ = request_digest(body)
            pending.append(
                decision_event(
                    decision_id=uuid7(),
                    tenant=tenant,
                    preview=False,
                    trace=trace,
                    outcome=outcome,
                    features=features,
                    digest=digest,
                    body=None,
                )
            )
            if len(pending) >= batch:
                await flush()
            if (i + 1) % 20_000 == 0:
                _progress(i + 1, decisions, start, progress)
        await drain()
    else:
        raise ValueError(f"path must be 'bulk' or 'service', got {path!r}")
    seconds = time.perf_counter() - start
    if progress:
        print(file=sys.stderr)
    projection_start = time.perf_counter()
    await catch_up(led)
    return {
        "decisions": decisions,
        "tenants": tenants,
        "policies": policies,
        "catalogs": catalogs,
        "entries": entries,
        "seed": seed,
        "path": path,
        "groups": len(outcomes) if path == "bulk" else None,
        "record_seconds": round(seconds, 2),
        "decisions_per_s": round(decisions / seconds),
        "projection_seconds": round(time.perf_counter() - projection_start, 2),
        "latest_catalog": traffic.catalogs[-1].version,
        "policy_fingerprints": [policy.fingerprint for policy in traffic.policies],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=DEFAULTS["decisions"])
    parser.add_argument("--tenants", type=int, default=DEFAULTS["tenants"])
    parser.add_argument("--policies", type=int, default=DEFAULTS["policies"])
    parser.add_argument("--catalogs", type=int, default=DEFAULTS["catalogs"])
    parser.add_argument("--entries", type=int, default=DEFAULTS["entries"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token-sizes", type=int, default=24, help="distinct input sizes")
    parser.add_argument(
        "--largest-share",
        type=float,
        default=None,
        help="share of the decisions the first tenant makes (default: its Zipf share, ~10 %%)",
    )
    parser.add_argument("--db", required=True, metavar="URL", help="SQLAlchemy async URL")
    parser.add_argument("--home", default=None, help="signing key folder (default: next to it)")
    parser.add_argument("--path", choices=["bulk", "service"], default="bulk")
    parser.add_argument("--batch", type=int, default=2000, help="events per bulk append")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.largest_share is not None and not 0 < args.largest_share < 1:
        parser.error(f"--largest-share: {args.largest_share} is not between 0 and 1 (exclusive)")
    return args


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    home = args.home or str(Path.cwd() / ".gen_ledger_home")
    async with migrated_ledger(args.db, home=home) as led:
        return await generate(
            led,
            decisions=args.decisions,
            tenants=args.tenants,
            policies=args.policies,
            catalogs=args.catalogs,
            entries=args.entries,
            seed=args.seed,
            path=args.path,
            batch=args.batch,
            token_sizes=args.token_sizes,
            largest_share=args.largest_share,
            progress=not args.quiet,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    print(json.dumps(asyncio.run(_main(parse_args(argv))), indent=2))


if __name__ == "__main__":
    main()
