"""A `DecisionMade` whose payload is not a decision is reported precisely, never as a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import NewEvent
from router.services.decisions import DECISION_MADE, DecisionService, RecordMismatchError
from unhardcoded.db import migrated_ledger


async def test_a_malformed_decision_payload_is_a_record_mismatch(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with migrated_ledger(url, home=tmp_path / "home") as ledger:
        (envelope,) = await ledger.append(NewEvent(DECISION_MADE, "fp", {"not": "a decision"}))
        service = DecisionService(ledger)
        with pytest.raises(
            RecordMismatchError, match=r"position 0 is a DecisionMade whose payload"
        ):
            await service.decision(envelope.event_id)
