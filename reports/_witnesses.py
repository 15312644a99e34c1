"""The witnesses' part of `bundle verify`: the witness keys and quorum an auditor gives, the
cosignatures on the bundle's checkpoint (C2SP tlog-cosignature), and the log's own note."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger import CosignerVerifier, LedgerError, check_cosignatures, parse_cosigner_key
from reports._bundle import CHECKPOINT
from reports._errors import ReportsError

__all__ = ["check_witnesses", "key_argument", "log_note", "witness_quorum"]


def key_argument(text: str, option: str, what: str) -> str:
    """The key string an option was given: the string itself, or the content of the file it
    names (`ReportsError` when it is neither)."""
    candidate = text.strip()
    path = Path(candidate)
    if "+" not in candidate or path.is_file():
        try:
            candidate = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ReportsError(f"{option} {text!r}: not {what}, and unreadable: {exc}") from None
    return candidate


def _witness_key(text: str) -> CosignerVerifier:
    """A witness vkey given as the string itself or as a file holding it."""
    try:
        return parse_cosigner_key(key_argument(text, "--witness-key", "a witness key"))
    except LedgerError as exc:
        raise ReportsError(f"--witness-key: {exc}") from None


def witness_quorum(witness_keys: Sequence[str], quorum: int | None) -> list[CosignerVerifier]:
    """Parse the witness keys and check the quorum against them (bad input: `ReportsError`)."""
    keys = [_witness_key(k) for k in witness_keys]
    if len({str(k) for k in keys}) != len(keys):
        raise ReportsError("--witness-key: a witness key is given twice")
    if quorum is not None and not keys:
        raise ReportsError("--quorum needs at least one --witness-key")
    if quorum is not None and not 1 <= quorum <= len(keys):
        raise ReportsError(f"--quorum {quorum}: expected 1 to {len(keys)} (the witness keys given)")
    return keys


def check_witnesses(
    note: bytes, witnesses: Sequence[CosignerVerifier], quorum: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """At least `quorum` of `witnesses` must have cosigned the checkpoint `note`; a line naming
    one of them that does not verify over this checkpoint (forged, or moved from another) fails.
    Returns what was found per witness and the problems."""
    try:
        checks = check_cosignatures(note, witnesses)
    except LedgerError as exc:
        return [], [f"{CHECKPOINT}: {exc}"]
    found_lines: list[dict[str, Any]] = []
    problems: list[str] = []
    valid = 0
    for found in checks:
        found_lines.append(
            {"witness_key": str(found.witness), "status": found.status, "time": found.timestamp}
        )
        if found.status == "valid":
            valid += 1
        elif found.status == "invalid":
            problems.append(
                f"{CHECKPOINT}: the cosignature by witness {found.witness.name}+"
                f"{found.witness.key_id:08x} does not verify over this checkpoint"
            )
    if valid < quorum:
        absent = [c.witness.name for c in checks if c.status == "absent"]
        problems.append(
            f"{CHECKPOINT}: {valid} valid witness cosignature(s), the quorum is {quorum}"
            + (f" (none by {', '.join(absent)})" if absent else "")
        )
    return found_lines, problems


def log_note(note: str, log_name: str) -> str:
    """The checkpoint note with the log's own signature only, as the report was built over it:
    witness cosignature lines (added or dropped later) are no part of the report."""
    body, blank, signatures = note.partition("\n\n")
    own = [
        line for line in signatures.splitlines(keepends=True) if line.startswith(f"— {log_name} ")
    ]
    return body + blank + "".join(own)
