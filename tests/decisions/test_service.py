"""The decision service on SQLite and PostgreSQL: record, re-read (also from a fresh process),
exactly-once catalog/policy/outcome events, previews, no entry passes, attempts, erasure,
listings."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import StreamVersionConflictError
from router.core import Catalog, Policy, RequestError, RequestFeatures
from router.services.catalogs import bundled_catalog, bundled_policy_document
from router.services.decisions import (
    CATALOG_PUBLISHED,
    DECISION_MADE,
    OUTCOME_RECORDED,
    POLICY_RECORDED,
    REQUEST_BODY,
    Attempt,
    DecisionError,
    DecisionNotFoundError,
    NoEntryPassesRecorded,
    UnknownCatalogError,
    rebuild_projection,
)
from tests.support.service_backends import Backend

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model": "auto", "messages": [{"role": "user", "content": "Bonjour, résumé ce contrat."}]}


def catalog() -> Catalog:
    return bundled_catalog()


def policy(name: str = "enterprise-eu") -> Policy:
    return Policy.from_json(bundled_policy_document(name), catalog().schema)


async def types_of(backend: Backend) -> list[str]:
    async with backend.ledger() as led:
        return [e.type for e in await led.read(0, 100_000)]


async def test_a_recorded_decision_rereads_equal_in_this_and_a_fresh_process(
    backend: Backend,
) -> None:
    async with backend.service() as service:
        live = await service.decide("acme", policy(), catalog(), request_body=BODY)
        envelope = await service.ledger.get(live.decision_id)
        assert envelope.type == DECISION_MADE
        assert (envelope.stream_id, envelope.stream_version) == ("decisions/acme", 1)
        assert envelope.event_id == live.decision_id
        payload = envelope.payload_json()
        assert payload["request_digest"] == live.request_digest
        assert payload["features"] == {"tokens_in": 14, "tokens_out": 512}
        assert len(envelope.payload) < 1024
        assert (await service.decision(live.decision_id)).to_json() == live.to_json()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.decisions._show",
        backend.url,
        str(backend.home),
        backend.search_path or "",
        str(live.decision_id),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert json.loads(stdout) == live.to_json()


async def test_catalog_policy_and_outcome_are_recorded_exactly_once_under_concurrency(
    backend: Backend,
) -> None:
    async def producer(index: int) -> None:
        async with backend.service() as service:
            await asyncio.gather(
                *(service.decide(f"t{index}", policy(), catalog()) for _ in range(15))
            )

    await asyncio.gather(*(producer(i) for i in range(3)))
    recorded = await types_of(backend)
    assert recorded.count(CATALOG_PUBLISHED) == 1
    assert recorded.count(POLICY_RECORDED) == 1
    assert recorded.count(OUTCOME_RECORDED) == 1
    assert recorded.count(DECISION_MADE) == 45
    async with backend.ledger() as led:
        stream = await led.stream(policy().fingerprint, 1, 1)
        assert stream[0].type == POLICY_RECORDED


async def test_publishing_the_same_catalog_twice_is_a_no_op(backend: Backend) -> None:
    async with backend.service() as first, backend.service() as second:
        assert (await first.publish_catalog(catalog())).created is True
        assert (await second.publish_catalog(catalog())).created is False
        versions = await second.catalogs()
        assert [v.version for v in versions] == [catalog().version]
        assert versions[0].entries == len(catalog().entries)
        assert (await second.catalog("latest")).version == catalog().version
        assert (await second.catalog(catalog().version[:10])).version == catalog().version
        with pytest.raises(UnknownCatalogError, match="no published catalog version starts"):
            await second.catalog("ffffffffffff")
        with pytest.raises(UnknownCatalogError, match="not a catalog version reference"):
            await second.catalog("nope")


async def test_previews_are_marked(backend: Backend) -> None:
    async with backend.service() as service:
        live = await service.decide("acme", policy(), catalog(), preview=True)
        page = await service.decisions()
    assert live.to_json()["preview"] is True
    assert [d.preview for d in page.decisions] == [True]
    async with backend.ledger() as led:
        assert (await led.get(live.decision_id)).payload_json()["preview"] is True


async def test_no_entry_passes_is_recorded_too(backend: Backend) -> None:
    nothing = {
        "v": "sigma-pol/v1",
        "rules": [{"id": "none", "when": ["eq", "region", "mars"]}],
        "tokens": {"in": 10, "out": 10},
    }
    async with backend.service() as service:
        with pytest.raises(NoEntryPassesRecorded) as caught:
            await service.decide("acme", Policy.from_json(nothing, catalog().schema), catalog())
        recorded = caught.value.decision
        reread = await service.decision(recorded.decision_id)
    assert reread.to_json() == recorded.to_json()
    assert reread.selected is None
    assert reread.plan == ()
    assert len(reread.to_json()["removed"]) == len(catalog().entries)


async def test_a_recorded_attempt_is_returned_as_it_reads_back(backend: Backend) -> None:
    async with backend.service() as service:
        decision = await service.decide("acme", policy(), catalog())
        returned = []
        for number, (cost, latency) in enumerate(
            [(0.0, 0.5), (1.6e-06, 1e-7), (2.0, 30000.0), (None, 12.0)], start=1
        ):
            returned.append(
                await service.record_attempt(
                    decision,
                    Attempt(
                        number=number,
                        entry=decision.plan[0],
                        status="error" if cost is None else "ok",
                        error_class="timeout" if cost is None else None,
                        latency_ms=latency,
                        tokens_in=None if cost is None else 3,
                        tokens_out=None if cost is None else 1,
                        cost_usd=cost,
                    ),
                )
            )
        reread = (await service.decision(decision.decision_id)).attempts
    assert list(reread) == returned
    # Types too (JSON reads an integral cost back as an int): the same JSON either way.
    assert [json.dumps(a.to_json()) for a in reread] == [json.dumps(a.to_json()) for a in returned]


async def test_attempts_are_recorded_in_order_and_only_from_the_plan(backend: Backend) -> None:
    async with backend.service() as service:
        decision = await service.decide("acme", policy(), catalog())
        await service.record_attempt(
            decision,
            Attempt(
                number=1,
                entry=decision.plan[0],
                status="error",
                error_class="timeout",
                latency_ms=30000.0,
                http_status=None,
            ),
        )
        await service.record_attempt(
            decision,
            Attempt(
                number=2,
                entry=decision.plan[1],
                status="ok",
                latency_ms=412.5,
                tokens_in=15,
                tokens_out=80,
                cost_usd=0.00012,
                http_status=200,
            ),
        )
        with pytest.raises(StreamVersionConflictError):
            await service.record_attempt(
                decision, Attempt(number=2, entry=decision.plan[1], status="ok", latency_ms=1.0)
            )
        with pytest.raises(DecisionError, match="not in the decision's plan"):
            await service.record_attempt(
                decision,
                Attempt(number=3, entry="deepseek/deepseek-v3@cn", status="ok", latency_ms=1.0),
            )
        with pytest.raises(DecisionError, match="error_class is required"):
            await service.record_attempt(
                decision, Attempt(number=3, entry=decision.plan[2], status="error", latency_ms=1.0)
            )
        with pytest.raises(DecisionError) as every:  # each problem named, in one message
            await service.record_attempt(
                decision,
                Attempt(
                    number=True,
                    entry=decision.plan[2],
                    status="maybe",  # type: ignore[arg-type]
                    latency_ms=float("nan"),
                    tokens_in=3,
                    cost_usd=-1.0,
                ),
            )
        assert str(every.value) == (
            f"attempt True (entry {decision.plan[2]!r}): attempt must be a positive integer, "
            "got True; status must be 'ok' or 'error', got 'maybe'; latency_ms must be a finite "
            "non-negative number, got nan; give both tokens_in and tokens_out, or neither; "
            "cost_usd must be a finite non-negative number, got -1.0"
        )
        attempts = (await service.decision(decision.decision_id)).to_json()["attempts"]
    assert [(a["attempt"], a["entry"], a["status"], a["error_class"]) for a in attempts] == [
        (1, decision.plan[0], "error", "timeout"),
        (2, decision.plan[1], "ok", None),
    ]
    assert attempts[1]["usage"] == {"in": 15, "out": 80}
    assert attempts[1]["cost_usd"] == 0.00012


async def test_bodies_are_stored_only_when_enabled_and_never_under_no_log(
    backend: Backend,
) -> None:
    async with backend.service() as off, backend.service(store_request_bodies=True) as on:
        default = await off.decide("acme", policy(), catalog(), request_body=BODY)
        stored = await on.decide("acme", policy(), catalog(), request_body=BODY)
        regulated = await on.decide("acme", policy("regulated"), catalog(), request_body=BODY)
        assert (default.body, stored.body, regulated.body) == ("not stored", "stored", "not stored")
        assert await on.request_body(default.decision_id) is None
        assert await on.request_body(regulated.decision_id) is None
        assert json.loads(await on.request_body(stored.decision_id) or b"") == BODY
        assert stored.request_digest == regulated.request_digest == default.request_digest


async def test_erasing_a_body_keeps_verify_green(backend: Backend) -> None:
    async with backend.service(store_request_bodies=True) as service:
        decision = await service.decide("acme", policy(), catalog(), request_body=BODY)
        await service.ledger.sequence()
        await service.erase_request_body(decision.decision_id)
        assert await service.request_body(decision.decision_id) is None
        reread = await service.decision(decision.decision_id)
        assert reread.body == "erased"
        assert reread.request_digest == decision.request_digest
        envelope = await service.ledger.get(decision.decision_id)
        assert REQUEST_BODY in envelope.attachment_digests
        with pytest.raises(DecisionError, match="no stored request body"):
            await service.erase_request_body(
                (await service.decide("acme", policy(), catalog())).decision_id
            )
        await service.ledger.sequence()
        report = await service.ledger.verify()
    assert report.problem is None
    assert report.events == 5  # catalog, policy, outcome, two decisions


async def test_listings_filter_by_tenant_fingerprint_time_and_paginate(backend: Backend) -> None:
    async with backend.service() as service:
        made = []
        for i in range(7):
            name = "vip" if i % 3 == 0 else "enterprise-eu"
            made.append(await service.decide(f"tenant-{i % 2}", policy(name), catalog()))
    async with backend.service() as fresh:  # another connection: the projection catches up
        pages, cursor = [], None
        while True:
            page = await fresh.decisions(limit=3, cursor=cursor)
            pages.append([d.decision_id for d in page.decisions])
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == [[d.decision_id for d in made[i : i + 3]] for i in (0, 3, 6)]
        tenant = await fresh.decisions(tenant="tenant-1")
        assert [d.decision_id for d in tenant.decisions] == [
            d.decision_id for d in made if d.tenant == "tenant-1"
        ]
        vip = await fresh.decisions(fingerprint=policy("vip").fingerprint)
        assert [d.decision_id for d in vip.decisions] == [
            made[0].decision_id,
            made[3].decision_id,
            made[6].decision_id,
        ]
        window = await fresh.decisions(
            since=made[2].recorded_at, until=made[4].recorded_at + timedelta(microseconds=1)
        )
        assert [d.decision_id for d in window.decisions] == [
            d.decision_id
            for d in made
            if made[2].recorded_at <= d.recorded_at <= made[4].recorded_at
        ]
        assert (await fresh.decisions(tenant="nobody")).decisions == ()
        with pytest.raises(DecisionError, match="cursor"):
            await fresh.decisions(cursor="abc")


async def test_bad_input_and_unknown_ids_are_precise_errors(backend: Backend) -> None:
    async with backend.service() as service:
        with pytest.raises(RequestError) as caught:
            await service.decide("", policy(), catalog())
        assert caught.value.pointer == "/tenant"
        with pytest.raises(DecisionNotFoundError, match="no decision"):
            await service.decision("01900000-0000-7000-8000-000000000000")
        await service.publish_catalog(catalog())
        with pytest.raises(DecisionNotFoundError, match="is a CatalogPublished, not a decision"):
            await service.decision(0)


async def test_tokens_from_the_request_are_recorded_and_reproduced(backend: Backend) -> None:
    document: dict[str, Any] = dict(bundled_policy_document("vip"))
    document.pop("tokens", None)
    untokened = Policy.from_json(document, catalog().schema)
    async with backend.service() as service:
        small = await service.decide("acme", untokened, catalog(), features=RequestFeatures(10, 5))
        large = await service.decide(
            "acme", untokened, catalog(), features=RequestFeatures(90000, 20000)
        )
        for live in (small, large):
            assert (await service.decision(live.decision_id)).to_json() == live.to_json()


async def test_the_projection_is_rebuilt_from_the_ledger_alone(backend: Backend) -> None:
    async with backend.service() as service:
        for i in range(4):
            await service.decide(f"tenant-{i % 2}", policy(), catalog(), preview=i == 3)
        before = (await service.decisions()).to_json()
        catalogs_before = [v.to_json() for v in await service.catalogs()]
        last = await rebuild_projection(service.ledger)
        assert last == await service.ledger.count() - 1
        assert (await service.decisions()).to_json() == before
        assert [v.to_json() for v in await service.catalogs()] == catalogs_before
