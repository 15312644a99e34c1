"""Signing-key rotation, recorded in the log itself (pure: no I/O).

A ledger signs every checkpoint with one key until a `SigningKeyRotated` event (stream
`ledger/signing-key`, payload ``{"from": <verifier key or null>, "to": <verifier key>,
"reason": <text>}``) names the next one. The key that must sign the checkpoint of tree size S is
the `to` key of the last rotation at a position below S (the rotation is inside the tree it
introduces the key for), else the key of the ledger's first checkpoint. Signing refuses any other
key, and `verify` names every checkpoint signed by another: a key nobody recorded is what a
mistaken home folder or a rewritten log looks like.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ledger._errors import StoreIntegrityError, VerifierKeyError
from ledger._keys import parse_verifier_key

__all__ = ["KEY_ROTATED", "KEY_STREAM", "Rotation", "designated_key", "parse_rotation"]

KEY_STREAM = "ledger/signing-key"
"""The stream of the rotation events."""

KEY_ROTATED = "SigningKeyRotated"
"""The type of a rotation event."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """A recorded rotation: its position and the key it hands signing to."""

    position: int
    to: str


def parse_rotation(position: int, payload: bytes) -> Rotation:
    """The rotation recorded at `position`; `StoreIntegrityError` when its payload is not one."""
    try:
        document = json.loads(payload)
        to = document["to"]
        parse_verifier_key(to)
    except (ValueError, KeyError, TypeError, VerifierKeyError) as exc:
        raise StoreIntegrityError(
            f"position {position}: a {KEY_ROTATED} event without a valid verifier key in /to "
            f"({type(exc).__name__}: {exc})"
        ) from None
    return Rotation(position, to)


def designated_key(rotations: Sequence[Rotation], first_key: str | None, size: int) -> str | None:
    """The key that must sign the checkpoint of tree size `size` (None: any, the ledger has
    neither signed nor rotated yet). `rotations` are in position order."""
    chosen = first_key
    for rotation in rotations:
        if rotation.position >= size:
            break
        chosen = rotation.to
    return chosen
