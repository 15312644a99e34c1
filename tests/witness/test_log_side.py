"""The log side with real processes on loopback: `unhardcoded serve` submits each new checkpoint
to a running witness in the background, serves the cosigned checkpoint, shows witness failures
in /metrics and `ledger verify`, and keeps deciding while the witness is down."""

from __future__ import annotations

from pathlib import Path

import httpx

from ledger import check_cosignatures, open_checkpoint, parse_cosigner_key
from router.services.catalogs import bundled_policy_document
from tests.witness._processes import api_key, env, run, serving, wait_for, witness_init

POLICY = bundled_policy_document("enterprise-eu")
RANK = {
    "policy": POLICY,
    "request": {"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
    "record": True,
}


async def test_serve_submits_checkpoints_and_shows_witness_failures(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    base = env(tmp_path, UNHARDCODED_DATABASE_URL=db)
    run(["db", "upgrade"], base)
    log_key = run(["ledger", "checkpoint", "--public-key"], base).strip()
    folder = tmp_path / "w1"
    vkey = witness_init(folder, "witness.test/w1", log_key, base)
    key = api_key(base)
    auth = {"authorization": f"Bearer {key}"}
    with serving(["witness", "serve", "--dir", str(folder)], base) as witness_url:
        environ = {
            **base,
            "UNHARDCODED_WITNESSES": f"{witness_url} {vkey}",
            "UNHARDCODED_CHECKPOINT_INTERVAL_S": "0.2",
            "UNHARDCODED_WITNESS_TIMEOUT_S": "5",
        }
        with serving(["serve", "--echo"], environ) as url:
            async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as client:
                for _ in range(5):
                    ranked = await client.post("/x/rank", json=RANK)
                    assert ranked.status_code == 200, ranked.text

                async def cosigned() -> bool:
                    note = (await client.get("/x/checkpoint")).text
                    size = open_checkpoint(note, log_key).size
                    checks = check_cosignatures(note, [parse_cosigner_key(vkey)])
                    return size >= 5 and checks[0].status == "valid"

                await wait_for(cosigned, "the witness's cosignature on the latest checkpoint")
                latest = (await client.get("/x/checkpoints/latest")).json()
                assert latest["cosignatures"][0].startswith("\u2014 witness.test/w1 ")

                async def counted() -> bool:
                    metrics = (await client.get("/metrics")).text
                    return 'unhardcoded_witness_submissions_total{outcome="cosigned"' in metrics

                await wait_for(counted, "the cosigned submission in /metrics")
    # The witness is down: decisions go on, the failure shows in /metrics and `ledger verify`.
    with serving(["serve", "--echo"], environ) as url:
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as client:
            ranked = await client.post("/x/rank", json=RANK)
            assert ranked.status_code == 200, ranked.text

            async def failure_counted() -> bool:
                metrics = (await client.get("/metrics")).text
                return 'outcome="unreachable"' in metrics

            await wait_for(failure_counted, "the unreachable witness in /metrics")
    verified = run(["ledger", "verify"], environ)
    assert "ledger intact" in verified
    assert "witness witness.test/w1" in verified
    assert "last submission unreachable" in verified
    assert "last failure at" in verified
