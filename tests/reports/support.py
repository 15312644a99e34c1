"""A small but varied decision record: four example policies, three tenants, request bodies of
different sizes, decisions with no entry passing, and upstream attempts with fallbacks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from router.core import NoEntryPasses, Policy
from router.services.catalogs import BUNDLED_POLICIES, bundled_catalog, bundled_policy_document
from router.services.decisions import Attempt, Decision, DecisionService
from unhardcoded.db import migrated_ledger

TENANTS = ("acme", "globex", "initech")


@dataclass
class Populated:
    """What `populate` recorded, for the tests to compare exports with."""

    decisions: list[Decision] = field(default_factory=list)
    attempts: int = 0


async def populate(service: DecisionService, rounds: int = 3) -> Populated:
    """Record `rounds` × policies × tenants decisions (and attempts) through the real service."""
    catalog = bundled_catalog()
    await service.publish_catalog(catalog)
    done = Populated()
    for round_ in range(rounds):
        for p, name in enumerate(sorted(BUNDLED_POLICIES)):
            document = Policy.from_json(bundled_policy_document(name), catalog.schema)
            for t, tenant in enumerate(TENANTS):
                size = 40 + 9000 * ((round_ + p + t) % 4) ** 3
                body = {
                    "model": "auto",
                    "messages": [{"role": "user", "content": "x" * size}],
                    "max_tokens": 100 + 50 * round_,
                }
                try:
                    decision = await service.decide(tenant, document, catalog, request_body=body)
                except NoEntryPasses as exc:
                    decision = exc.decision  # type: ignore[attr-defined]
                done.decisions.append(decision)
                for attempt, entry in enumerate(decision.plan[: 1 + (round_ + t) % 3], start=1):
                    last = attempt == min(len(decision.plan), 1 + (round_ + t) % 3)
                    await service.record_attempt(
                        decision,
                        Attempt(
                            number=attempt,
                            entry=entry,
                            status="ok" if last else "error",
                            error_class=None if last else "rate_limited",
                            http_status=200 if last else 429,
                            latency_ms=120.5 * attempt,
                            tokens_in=size // 4 if last else None,
                            tokens_out=80 if last else None,
                            cost_usd=0.00125 * attempt if last else None,
                        ),
                    )
                    done.attempts += 1
    return done


def populate_sqlite(url: str, home: Path, rounds: int = 1) -> Populated:
    """`populate` a ledger from synchronous code (CLI tests)."""

    async def run() -> Populated:
        async with migrated_ledger(url, home=home) as led:
            return await populate(DecisionService(led), rounds)

    return asyncio.run(run())
