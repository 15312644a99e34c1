"""The log side of witnesses for commands: the checkpoint's cosigned note, submitting it to the
configured witnesses ($UNHARDCODED_WITNESSES) first when some have not cosigned it yet."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledger import Ledger, SignedCheckpoint


@contextlib.asynccontextmanager
async def cosigner(ledger: Ledger) -> AsyncIterator[Callable[[SignedCheckpoint], Awaitable[str]]]:
    """A function from a checkpoint to its cosigned note, for the time of the block."""
    import aiohttp

    from router.services.witness import (
        CosignatureStore,
        WitnessSubmitter,
        cosign_now,
        parse_witnesses,
    )
    from unhardcoded.settings import Settings

    settings = Settings()
    witnesses = parse_witnesses(settings.witnesses)
    store = CosignatureStore(ledger.store)
    async with aiohttp.ClientSession() as client:
        submitter = None
        if witnesses:
            submitter = WitnessSubmitter(
                ledger, witnesses, client, timeout_s=settings.witness_timeout_s
            )

        async def cosigned(checkpoint: SignedCheckpoint) -> str:
            return await cosign_now(submitter, store, checkpoint)

        yield cosigned


async def witness_lines(ledger: Ledger) -> list[str]:
    """One line per witness: the size it cosigned against the latest checkpoint, and its last
    submission's outcome (the last error and when, if any)."""
    from datetime import UTC, datetime

    from ledger import LedgerError
    from router.services.witness import CosignatureStore

    try:
        statuses = await CosignatureStore(ledger.store).statuses()
        head = await ledger.latest_checkpoint()
    except LedgerError as exc:
        return [f"witnesses: unknown ({exc})"]
    size = 0 if head is None else head.tree_size
    lines = []
    for status in statuses:
        name = status.witness_key.split("+", 1)[0]
        done = status.cosigned_size
        cosigned = "nothing" if done is None else f"tree size {done}"
        line = (
            f"witness {name} ({status.url}): cosigned {cosigned} of {size}; "
            f"last submission {status.last_outcome}"
        )
        if status.last_error is not None and status.last_error_at_us is not None:
            at = datetime.fromtimestamp(status.last_error_at_us / 1e6, UTC).isoformat()
            line += f"; last failure at {at[:19]}Z: {status.last_error}"
        lines.append(line)
    return lines
