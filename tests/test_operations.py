"""docs/operations.md: the append-only PostgreSQL role it documents is enough to run the service
(decide, attempts, erase a request body, sequence and sign, verify, API keys) and refuses any
change to the ledger's events with "permission denied" — the doc's SQL block is what runs."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from ledger import open_ledger
from router.core import Policy
from router.services.catalogs import bundled_catalog, bundled_policy_document
from router.services.decisions import Attempt, DecisionService
from router.services.gateway import Claim, IdempotencyStore, KeyStore, StoredAnswer
from tests.conftest import PgSchema
from unhardcoded.db import create_engine, upgrade

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
DOC_ROLE = "unhardcoded_router"


def _role_sql(role: str, schema: str) -> str:
    (block,) = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert DOC_ROLE in block
    return block.replace(DOC_ROLE, role).replace("SCHEMA public", f'SCHEMA "{schema}"')


@pytest.mark.postgres
async def test_the_documented_append_only_role_runs_the_service_and_cannot_rewrite(
    pg_schema: PgSchema, tmp_path: Path
) -> None:
    await upgrade(pg_schema.url, search_path=pg_schema.schema)
    role = f"r_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_schema.dsn)
    try:
        await admin.execute(f'SET search_path TO "{pg_schema.schema}"')
        await admin.execute(_role_sql(role, pg_schema.schema))
        url = make_url(pg_schema.url).set(username=role).render_as_string(hide_password=False)

        async with open_ledger(url, home=tmp_path / "home", search_path=pg_schema.schema) as led:
            service = DecisionService(led, store_request_bodies=True)
            catalog = bundled_catalog()
            decision = await service.decide(
                "acme",
                Policy.from_json(bundled_policy_document("vip"), catalog.schema),
                catalog,
                request_body={"messages": [{"role": "user", "content": "hi"}]},
            )
            await service.record_attempt(
                decision, Attempt(number=1, entry=decision.plan[0], status="ok", latency_ms=1.0)
            )
            await service.erase_request_body(decision.decision_id)
            assert await service.request_body(decision.decision_id) is None
            assert await led.sequence() is not None
            report = await led.verify()
            assert report.problem is None
            assert (await service.decision(decision.decision_id)).tenant == "acme"

        keys_engine = create_engine(url, search_path=pg_schema.schema)
        try:
            keys = KeyStore(keys_engine)
            created = await keys.create("acme", ["route"])
            await keys.revoke(created.key.key_id)
            idempotency = IdempotencyStore(keys_engine, window_s=60, wait_s=0)
            request = {"messages": [{"role": "user", "content": "hi"}]}
            answered = await idempotency.claim("acme", "answered", request)
            assert isinstance(answered, Claim)
            await idempotency.finish(answered, decision_id=None, status=200, headers={}, body=b"{}")
            assert isinstance(await idempotency.claim("acme", "answered", request), StoredAnswer)
            given_up = await idempotency.claim("acme", "given-up", request)
            assert isinstance(given_up, Claim)
            await idempotency.release(given_up)
            assert isinstance(await idempotency.claim("acme", "given-up", request), Claim)
        finally:
            await keys_engine.dispose()

        as_role = await asyncpg.connect(
            make_url(pg_schema.dsn).set(username=role).render_as_string(hide_password=False)
        )
        try:
            await as_role.execute(f'SET search_path TO "{pg_schema.schema}"')
            for statement in (
                "UPDATE ledger_events SET stream_id = 'x'",
                "DELETE FROM ledger_events",
                "TRUNCATE ledger_checkpoints",
                "UPDATE ledger_attachments SET position = 0",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await as_role.execute(statement)
        finally:
            await as_role.close()
    finally:
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
