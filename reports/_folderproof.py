"""The completeness proof of a per-tenant export folder, on the creating side (docs/reports.md,
"Completeness of a tenant's export"; the argument is docs/bundles.md's, "Completeness").

A bundle proves completeness with every event of the tenant's sequence it holds; an export folder
holds Parquet rows, each with its `sequence` number (its version in `decisions/<tenant>`). Its
manifest carries what the rows cannot prove themselves: the sequence's boundary events (the last
one before the period, the first one at/after its end or the seal appended to bound it) and the
seals recorded in the period, each as a bundle event line with its inclusion proof against one
signed checkpoint. The proof always covers the whole folder: every export into it (the first and
each `--append`) replaces it with the proof of the whole period as the ledger stands then."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ledger import Ledger, SignedCheckpoint
from reports._errors import ReportsError
from reports._events import event_line
from reports._sequence import SEALED, Sequence, plan_sequence

__all__ = ["PROOF_MEMBER", "FolderProof", "check_layout", "covering_checkpoint", "prove_folder"]

PROOF_MEMBER = "completeness_proof"
"""The manifest member holding the signed checkpoint and the proven sequence events."""


@dataclass(frozen=True)
class FolderProof:
    """What a tenant's export folder carries to prove it holds every decision of its period."""

    sequence: Sequence
    checkpoint: SignedCheckpoint
    lines: list[dict[str, Any]]
    """The boundary and seal events, as bundle event lines with their inclusion proofs."""
    sealed_at: int | None
    """The position of the seal that ends the proof inside the period (None: the upper
    boundary is recorded at/after the period's end)."""

    def stop(self, total: int) -> int:
        """The end (exclusive) of the position range to export out of the first `total`: when
        a seal ends the proof inside the period, the data stops at it, as the proof does (what
        is recorded after the seal is left to the next `--append`)."""
        return total if self.sealed_at is None else min(total, self.sealed_at)

    def members(self) -> dict[str, Any]:
        """The manifest's `completeness` (a bundle's statement) and `completeness_proof`."""
        return {
            "completeness": self.sequence.manifest(),
            PROOF_MEMBER: {
                "checkpoint": self.checkpoint.note,
                "verifier_key": self.checkpoint.verifier_key,
                "tree_size": self.checkpoint.tree_size,
                "events": self.lines,
            },
        }


async def covering_checkpoint(ledger: Ledger, last: int) -> SignedCheckpoint:
    """The newest signed checkpoint, sequencing first; refused when it does not yet cover
    position `last` (another process is sequencing)."""
    await ledger.sequence()
    head = await ledger.latest_checkpoint()
    if head is None or head.tree_size <= last:
        raise ReportsError(
            f"no signed checkpoint covers ledger position {last} yet (another process is "
            "sequencing the ledger right now): run the command again"
        )
    return head


async def prove_folder(
    ledger: Ledger, tenant: str, since: datetime | None, until: datetime | None
) -> FolderProof:
    """The proof for `tenant`'s decisions in [`since`, `until`), sealing the tenant's sequence
    first when nothing recorded at/after `until` bounds it (`plan_sequence`)."""
    sequence = await plan_sequence(ledger, tenant, since, until)
    events = sequence.boundaries
    head = await covering_checkpoint(ledger, max(e.position for e in events))
    proofs = await ledger.inclusion_proofs([e.position for e in events], head.tree_size)
    lines = [event_line(e, p.document()) for e, p in zip(events, proofs, strict=True)]
    last = events[-1]
    inside = last.type == SEALED and last.recorded_at_us == sequence.cut_us
    return FolderProof(sequence, head, lines, last.position if inside else None)


def check_layout(base: Path) -> None:
    """Refuse to append to a folder whose decisions lack the `sequence` column (written by an
    earlier release): its datasets would mix two layouts, and its rows could not be proven
    complete."""
    files = sorted((base / "decisions").rglob("*.parquet"))
    if not files:
        return
    try:
        names = pq.read_schema(files[0]).names
    except OSError as exc:
        raise ReportsError(f"{files[0]}: not readable as Parquet ({exc})") from None
    if "sequence" not in names:
        raise ReportsError(
            f"{base}: its decisions were exported by an earlier release (no `sequence` "
            "column): export into a new folder"
        )
