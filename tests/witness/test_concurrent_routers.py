"""Routers sharing one PostgreSQL database submit to one witness process: every checkpoint is
submitted by the router that signed it, so no tree size is cosigned twice, the witness only ever
moves forward, and every cosignature stored verifies."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from ledger import check_cosignatures, open_ledger, parse_cosigner_key
from router.services.witness import CosignatureStore, Witness
from tests.witness._processes import api_key, env, run, serving, wait_for, witness_init
from tests.witness.test_log_side import RANK

_COSIGNED = re.compile(r'unhardcoded_witness_submissions_total\{outcome="cosigned",[^}]*\} (\S+)')


@pytest.mark.postgres
async def test_concurrent_routers_never_double_cosign(pg_database: str, tmp_path: Path) -> None:
    base = env(tmp_path, UNHARDCODED_DATABASE_URL=pg_database)
    run(["db", "upgrade"], base)
    log_key = run(["ledger", "checkpoint", "--public-key"], base).strip()
    folder = tmp_path / "w1"
    vkey = witness_init(folder, "witness.test/w1", log_key, base)
    witness = parse_cosigner_key(vkey)
    auth = {"authorization": f"Bearer {api_key(base)}"}
    async with open_ledger(pg_database, home=tmp_path / "home") as ledger:
        with serving(["witness", "serve", "--dir", str(folder)], base) as witness_url:
            environ = {
                **base,
                "UNHARDCODED_WITNESSES": f"{witness_url} {vkey}",
                "UNHARDCODED_CHECKPOINT_INTERVAL_S": "0.05",
            }
            with (
                serving(["serve", "--echo"], environ) as one,
                serving(["serve", "--echo"], environ) as two,
            ):
                clients = [
                    httpx.AsyncClient(base_url=u, headers=auth, timeout=60) for u in (one, two)
                ]
                answers = await asyncio.gather(
                    *(clients[i % 2].post("/x/rank", json=RANK) for i in range(60))
                )
                assert {a.status_code for a in answers} == {200}

                async def cosigned_by_routers() -> float:
                    counted = 0.0
                    for client in clients:
                        metrics = (await client.get("/metrics")).text
                        counted += sum(float(v) for v in _COSIGNED.findall(metrics))
                    return counted

                async def caught_up() -> bool:
                    head = await ledger.latest_checkpoint()
                    seen = Witness(folder).latest(ledger.origin)
                    # Every cosignature the witness gave was received by exactly one router.
                    return (
                        head is not None
                        and head.tree_size >= 60
                        and seen is not None
                        and seen.tree_size == head.tree_size
                        and await cosigned_by_routers()
                        == len(Witness(folder).cosigned_sizes(ledger.origin))
                    )

                await wait_for(caught_up, "the witness to cosign the latest checkpoint")
                for client in clients:
                    await client.aclose()
        sizes = Witness(folder).cosigned_sizes(ledger.origin)
        assert sizes == sorted(set(sizes)), "a tree size was cosigned twice or out of order"
        refusals = Witness(folder).refusals()
        assert not [r for r in refusals if r.status == 422 or "fork" in r.reason]
        stored = CosignatureStore(ledger.store)
        for size in sizes:
            lines = await stored.lines(size)
            assert len(lines) == 1
            _, checkpoint, _ = await ledger.consistency_proof(size, size)
            check = check_cosignatures(checkpoint.note + lines[0], [witness])[0]
            assert check.status == "valid"
