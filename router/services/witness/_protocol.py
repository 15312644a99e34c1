"""The c2sp.org/tlog-witness v1 `add-checkpoint` request body, both ways:

old <size>\\n
<base64 hash>\\n      (0 to 63 consistency proof lines, RFC 6962 §2.1.2)
\\n
<signed checkpoint note>
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from router.services.witness._errors import WitnessBadRequestError

__all__ = ["MAX_PROOF_LINES", "SIZE_CONTENT_TYPE", "AddCheckpoint", "parse_conflict_size"]

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""The content type of a 409 answer, whose body is the witness's latest size and a newline."""

_OLD = re.compile(r"old (0|[1-9][0-9]*)")
_SIZE = re.compile(r"(0|[1-9][0-9]*)\n")


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """One add-checkpoint request: the old size, the consistency proof and the checkpoint note."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def to_bytes(self) -> bytes:
        """The request body."""
        lines = [f"old {self.old_size}"]
        lines += [base64.b64encode(h).decode("ascii") for h in self.proof]
        return ("\n".join(lines) + "\n\n" + self.note).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        """Parse a request body; `WitnessBadRequestError` names the line at fault."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WitnessBadRequestError(
                f"request body is not UTF-8 (byte offset {exc.start})"
            ) from None
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise WitnessBadRequestError(
                "request body has no empty line between the old size and proof lines and the "
                "checkpoint"
            )
        lines = head.split("\n")
        found = _OLD.fullmatch(lines[0])
        if found is None:
            raise WitnessBadRequestError(
                f"line 1 {lines[0][:40]!r} is not 'old <size>' (decimal, no leading zeroes)"
            )
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise WitnessBadRequestError(
                f"{len(lines) - 1} consistency proof lines; at most {MAX_PROOF_LINES}"
            )
        proof = []
        for number, line in enumerate(lines[1:], start=2):
            try:
                raw = base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != line:
                raise WitnessBadRequestError(
                    f"line {number} is not the base64 of a 32-byte hash"
                ) from None
            proof.append(raw)
        return cls(int(found.group(1)), tuple(proof), note)


def parse_conflict_size(body: bytes) -> int | None:
    """The size in a 409 answer's body (`text/x.tlog.size`), None when it holds none."""
    try:
        found = _SIZE.fullmatch(body.decode("ascii"))
    except UnicodeDecodeError:
        return None
    return None if found is None else int(found.group(1))
