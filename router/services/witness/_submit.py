"""The log side: submit each new checkpoint to the configured witnesses and keep their
cosignatures (c2sp.org/tlog-witness v1, as a client).

`WitnessSubmitter.notify` is the ledger's checkpoint listener: it only remembers the newest
checkpoint and wakes the background task (`run`), so a witness that is slow or down never delays
a decision. The task submits with the consistency proof from the size the witness last cosigned
(learnt from its 409 answer when unknown), with a timeout, retries with backoff while the
checkpoint is still the newest, and records every outcome (`witness_status`, and the metrics
callback). Only the process that signed a checkpoint submits it, so routers sharing a database
never submit the same checkpoint twice; the witness's atomic check settles any race between two
checkpoints (the smaller gets a 409 and is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ledger import (
    CosignerVerifier,
    Ledger,
    LedgerError,
    SignedCheckpoint,
    Store,
    check_cosignatures,
    parse_cosigner_key,
    parse_note,
    signature_line,
)
from router.services.witness._errors import WitnessError
from router.services.witness._protocol import AddCheckpoint, parse_conflict_size
from router.services.witness._tables import cosignatures, status

__all__ = [
    "CosignatureStore",
    "Outcome",
    "WitnessEndpoint",
    "WitnessStatus",
    "WitnessSubmitter",
    "cosign_now",
    "parse_witnesses",
]

log = logging.getLogger("unhardcoded.witness")

Outcome = Literal["cosigned", "superseded", "refused", "unreachable", "invalid", "error"]
"""`cosigned`: a valid cosignature was stored; `superseded`: the witness already holds this size
or a larger one (another submission won); `refused`: a 4xx answer; `unreachable`: no answer in
time or a 5xx; `invalid`: a 200 whose body holds no valid cosignature by the witness's key;
`error`: the log could not do its own part (its database failed while reading the witness's last
size, building the consistency proof or storing the cosignature) — the witness is not to blame."""

_MAX_ROUNDS = 3
_MAX_BACKOFF_S = 60.0


@dataclass(frozen=True, slots=True)
class WitnessEndpoint:
    """A witness the log submits to: its submission URL prefix and its public key."""

    url: str
    key: CosignerVerifier

    @property
    def name(self) -> str:
        """The witness's key name."""
        return self.key.name


def parse_witnesses(text: str) -> list[WitnessEndpoint]:
    """Parse `UNHARDCODED_WITNESSES`: entries separated by commas or newlines, each the
    witness's URL prefix and its vkey separated by a space."""
    found: list[WitnessEndpoint] = []
    entries = [e.strip() for e in text.replace("\n", ",").split(",")]
    for number, entry in enumerate((e for e in entries if e), start=1):
        parts = entry.split()
        if len(parts) != 2 or not parts[0].startswith(("http://", "https://")):
            raise WitnessError(
                f"witness {number} ({entry[:60]!r}): expected '<http(s) URL> <witness vkey>'"
            )
        try:
            key = parse_cosigner_key(parts[1])
        except LedgerError as exc:
            raise WitnessError(f"witness {number} ({parts[0]}): {exc}") from None
        found.append(WitnessEndpoint(parts[0].rstrip("/"), key))
    if len({str(w.key) for w in found}) != len(found):
        raise WitnessError("a witness key is listed twice")
    return found


@dataclass(frozen=True, slots=True)
class WitnessStatus:
    """A witness's latest submission outcome, as recorded in the ledger's database."""

    witness_key: str
    url: str
    cosigned_size: int | None
    last_outcome: str
    last_error: str | None
    last_error_at_us: int | None
    updated_at_us: int

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "witness_key": self.witness_key,
            "url": self.url,
            "cosigned_size": self.cosigned_size,
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
            "last_error_at_us": self.last_error_at_us,
            "updated_at_us": self.updated_at_us,
        }


class CosignatureStore:
    """The witness tables in the ledger's database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def latest_size(self, witness: CosignerVerifier) -> int | None:
        """The largest tree size `witness` cosigned for this log, as far as we stored."""
        async with self._store.read() as conn:
            found = await conn.scalar(
                select(cosignatures.c.tree_size)
                .where(cosignatures.c.witness_key == str(witness))
                .order_by(cosignatures.c.tree_size.desc())
                .limit(1)
            )
        return None if found is None else int(found)

    async def add(
        self, witness: CosignerVerifier, checkpoint: SignedCheckpoint, line: str, cosigned_at: int
    ) -> None:
        """Keep one cosignature (a second one for the same witness and size is not stored)."""
        row = {
            "witness_key": str(witness),
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "signature_line": line,
            "cosigned_at": cosigned_at,
            "received_at_us": time.time_ns() // 1000,
        }
        with contextlib.suppress(IntegrityError, LedgerError):
            async with self._store.locked("witness") as conn:
                await conn.execute(cosignatures.insert(), [row])

    async def lines(self, tree_size: int) -> list[str]:
        """The stored cosignature lines of the checkpoint at `tree_size`."""
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(cosignatures.c.signature_line)
                .where(cosignatures.c.tree_size == tree_size)
                .order_by(cosignatures.c.witness_key)
            )
            return [str(r[0]) for r in rows]

    async def cosigned_note(self, checkpoint: SignedCheckpoint) -> str:
        """The checkpoint's note with every stored cosignature line appended."""
        return checkpoint.note + "".join(await self.lines(checkpoint.tree_size))

    async def record(
        self, endpoint: WitnessEndpoint, outcome: Outcome, error: str | None, size: int | None
    ) -> None:
        """Overwrite the witness's latest outcome (kept: the last error and its time)."""
        now = time.time_ns() // 1000
        values: dict[str, Any] = {"url": endpoint.url, "last_outcome": outcome}
        values["updated_at_us"] = now
        if size is not None:
            values["cosigned_size"] = size
        if error is not None:
            values["last_error"] = error[:2000]
            values["last_error_at_us"] = now
        key = str(endpoint.key)
        async with self._store.locked("witness") as conn:
            changed = await conn.execute(
                update(status).where(status.c.witness_key == key).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(status.insert(), [{"witness_key": key, **values}])

    async def statuses(self) -> list[WitnessStatus]:
        """Every witness's latest outcome."""
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(
                    status.c.witness_key,
                    status.c.url,
                    status.c.cosigned_size,
                    status.c.last_outcome,
                    status.c.last_error,
                    status.c.last_error_at_us,
                    status.c.updated_at_us,
                ).order_by(status.c.witness_key)
            )
            return [WitnessStatus(*row) for row in rows]


#: Called with (witness name, outcome, the witness's cosigned size when known) after each try.
OutcomeListener = Callable[[str, Outcome, int | None], None]


class WitnessSubmitter:
    """Submits new checkpoints to witnesses in the background (see the module docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        witnesses: Sequence[WitnessEndpoint],
        client: aiohttp.ClientSession,
        *,
        timeout_s: float = 10.0,
        on_outcome: OutcomeListener | None = None,
    ) -> None:
        self._ledger = ledger
        self.witnesses = list(witnesses)
        self.store = CosignatureStore(ledger.store)
        self._client = client
        self._timeout = timeout_s
        self._on_outcome = on_outcome
        self._pending: SignedCheckpoint | None = None
        self._wake = asyncio.Event()

    def notify(self, checkpoint: SignedCheckpoint) -> None:
        """The ledger's checkpoint listener: remember the newest checkpoint, wake the task."""
        if self._pending is None or checkpoint.tree_size > self._pending.tree_size:
            self._pending = checkpoint
            self._wake.set()

    async def run(self) -> None:
        """Submit the newest notified checkpoint to every witness that has not cosigned it,
        retrying with backoff until they all did or a newer checkpoint replaces it. Forever:
        cancel it on shutdown."""
        backoff = 1.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            checkpoint = self._pending
            if checkpoint is None:
                continue
            outcomes = await self.submit(checkpoint)
            if all(o in ("cosigned", "superseded") for o in outcomes.values()):
                backoff = 1.0
                if self._pending is checkpoint:
                    self._pending = None
                continue
            # Some witness is down or refused: try again later unless a newer one comes first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            self._wake.set()
            backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def submit(self, checkpoint: SignedCheckpoint) -> dict[str, Outcome]:
        """Submit `checkpoint` to every witness at once; each witness's outcome by name."""
        results = await asyncio.gather(*(self._one(w, checkpoint) for w in self.witnesses))
        return {w.name: outcome for w, outcome in zip(self.witnesses, results, strict=True)}

    async def _one(self, witness: WitnessEndpoint, checkpoint: SignedCheckpoint) -> Outcome:
        try:
            outcome, error, size = await self._exchange(witness, checkpoint)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            outcome, error, size = "unreachable", f"{type(exc).__name__}: {exc}", None
        except LedgerError as exc:
            # Our own database, not the witness: told apart so that an operator looks in the
            # right place.
            outcome, error, size = "error", f"the log's own database: {exc}", None
        if error is not None:
            log.warning(
                "witness %s did not cosign the checkpoint at tree size %d: %s",
                witness.name,
                checkpoint.tree_size,
                error,
            )
        if self._on_outcome is not None:
            self._on_outcome(witness.name, outcome, size)
        with contextlib.suppress(LedgerError):
            await self.store.record(witness, outcome, error, size)
        return outcome

    async def _exchange(
        self, witness: WitnessEndpoint, checkpoint: SignedCheckpoint
    ) -> tuple[Outcome, str | None, int | None]:
        stored = await self.store.latest_size(witness.key)
        if stored is not None and stored >= checkpoint.tree_size:
            return "superseded", None, stored
        old = stored or 0
        for _ in range(_MAX_ROUNDS):
            proof: tuple[bytes, ...] = ()
            if 0 < old < checkpoint.tree_size:
                proof = (await self._ledger.consistency_proof(old, checkpoint.tree_size))[0].hashes
            body = AddCheckpoint(old, proof, checkpoint.note).to_bytes()
            async with self._client.post(
                f"{witness.url}/add-checkpoint",
                data=body,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                status, content = response.status, await response.read()
            text = content.decode("utf-8", "replace")
            if status == 409:
                size = parse_conflict_size(content)
                if size is None:
                    return "refused", f"409 without a tree size: {text[:200]!r}", None
                if size > checkpoint.tree_size:
                    return "superseded", None, size
                if size == old:
                    return "refused", f"409: the witness holds another tree of size {size}", size
                # Our old size was stale: the witness says which it holds (the protocol's way).
                old = size
                continue
            if status != 200:
                outcome: Outcome = "unreachable" if status >= 500 else "refused"
                return outcome, f"{status}: {text[:300]!r}", None
            return await self._keep(witness, checkpoint, text)
        return "refused", f"the witness's size kept moving ({old})", old

    async def _keep(
        self, witness: WitnessEndpoint, checkpoint: SignedCheckpoint, answer: str
    ) -> tuple[Outcome, str | None, int | None]:
        try:
            check = check_cosignatures(checkpoint.note + answer, [witness.key])[0]
        except LedgerError as exc:
            return "invalid", f"the answer is not note signature lines: {exc}", None
        if check.status != "valid" or check.timestamp is None:
            return "invalid", f"no valid cosignature by {witness.key} in {answer[:300]!r}", None
        _, signatures = parse_note(checkpoint.note + answer)
        body, _ = parse_note(checkpoint.note)
        line = next(s for s in signatures if witness.key.matches(s) and witness.key.verify(body, s))
        await self.store.add(witness.key, checkpoint, signature_line(line), check.timestamp)
        return "cosigned", None, checkpoint.tree_size


async def cosign_now(
    submitter: WitnessSubmitter | None, store: CosignatureStore, checkpoint: SignedCheckpoint
) -> str:
    """The checkpoint's cosigned note, submitting it first (and waiting) when a submitter is
    given and some witness has no cosignature of it yet."""
    if submitter is not None:
        have = set(await store.lines(checkpoint.tree_size))
        if len(have) < len(submitter.witnesses):
            await submitter.submit(checkpoint)
    return await store.cosigned_note(checkpoint)
