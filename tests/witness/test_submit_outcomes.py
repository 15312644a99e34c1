"""A submission the log itself cannot prepare is counted as the log's `error`, not blamed on the
witness: an operator looking at `refused` would look at the witness's side."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp

from ledger import CosignerKey, NewEvent
from router.services.witness import WitnessEndpoint, WitnessSubmitter
from unhardcoded.db import migrated_ledger


async def test_the_logs_own_database_failure_is_an_error_outcome(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    url = f"sqlite+aiosqlite:///{path}"
    seen: list[tuple[str, str]] = []
    async with migrated_ledger(url, home=tmp_path / "home") as ledger:
        await ledger.append(NewEvent("Noted", "s-1", {"n": 1}))
        checkpoint = await ledger.sequence()
        assert checkpoint is not None
        # The log's own table is gone (a damaged database); the witness is never reached.
        with sqlite3.connect(path) as raw:
            raw.execute("DROP TABLE witness_cosignatures")
        witness = CosignerKey.generate("witness.test/w1").verifier()
        async with aiohttp.ClientSession() as client:
            submitter = WitnessSubmitter(
                ledger,
                [WitnessEndpoint("http://127.0.0.1:9", witness)],
                client,
                on_outcome=lambda name, outcome, _size: seen.append((name, outcome)),
            )
            outcomes = await submitter.submit(checkpoint)
    assert outcomes == {"witness.test/w1": "error"}
    assert seen == [("witness.test/w1", "error")]
