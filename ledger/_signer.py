"""Which key signs the next checkpoint (floor 2: reads the key file and the database).

The key file of the home folder is read when the ledger opens and never created there: a command
that only reads leaves a mistaken `--home` untouched. Signing uses the home's key only when it is
the key the ledger signs with (`ledger._rotation`); a ledger that has never signed creates its
first key, and `rotate` records a new one explicitly. Anything else is a `SigningKeyError`
naming the home, the key found there and the key the ledger expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._errors import SigningKeyError
from ledger._keyfile import create_seed, key_file, read_seed
from ledger._keys import SigningKey
from ledger._rotation import KEY_STREAM, Rotation, designated_key, parse_rotation
from ledger._tables import checkpoints, events

__all__ = ["Signer", "read_rotations"]

_ROTATE = "`unhardcoded ledger rotate-key`"


async def read_rotations(conn: AsyncConnection) -> list[Rotation]:
    """Every recorded rotation, in position order (few rows: read by the stream's index)."""
    rows = await conn.execute(
        select(events.c.position, events.c.payload)
        .where(events.c.stream_id == KEY_STREAM)
        .order_by(events.c.position)
    )
    return [parse_rotation(int(p), bytes(payload)) for p, payload in rows.all()]


async def _first_key(conn: AsyncConnection) -> str | None:
    return await conn.scalar(
        select(checkpoints.c.verifier_key).order_by(checkpoints.c.tree_size).limit(1)
    )


@dataclass
class Signer:
    """The home folder's signing key (None until there is one) for the ledger of `origin`."""

    home: Path
    origin: str
    key: SigningKey | None = field(default=None)

    @classmethod
    def open(cls, home: Path, origin: str) -> Signer:
        """The signer of `home` (its key read if there is one; nothing created)."""
        seed = read_seed(home)
        key = None if seed is None else SigningKey.from_private_bytes(origin, seed)
        return cls(home, origin, key)

    def reread(self) -> None:
        """Another process (or ledger object) on the same home may have created the key since
        this one opened: read it again while there is none."""
        if self.key is None:
            seed = read_seed(self.home)
            if seed is not None:
                self.key = SigningKey.from_private_bytes(self.origin, seed)

    def _create(self) -> SigningKey:
        self.key = SigningKey.from_private_bytes(self.origin, create_seed(self.home))
        return self.key

    def _refuse(self, expected: str) -> SigningKeyError:
        where = key_file(self.home)
        found = "holds no key" if self.key is None else f"holds key {self.key.verifier_key()}"
        return SigningKeyError(
            f"{where} {found}, but this ledger signs with key {expected}: is the home folder "
            f"right (--home, UNHARDCODED_HOME)? To sign with another key from now on, record "
            f"the change with {_ROTATE}"
        )

    async def current(self, conn: AsyncConnection) -> str | None:
        """The key the ledger signs its next checkpoints with (None: it has never signed)."""
        return designated_key(await read_rotations(conn), await _first_key(conn), 2**63)

    async def for_batch(
        self, conn: AsyncConnection, size: int, max_leaves: int
    ) -> tuple[SigningKey, int]:
        """The key to sign the next batch from tree size `size` with, and how many leaves the
        batch may take (more than `max_leaves` when a rotation to this key is pending further
        on: its checkpoint must cover the rotation)."""
        self.reread()
        rotations = await read_rotations(conn)
        mine = None if self.key is None else self.key.verifier_key()
        pending = [r for r in rotations if r.position >= size]
        limit = max_leaves
        if pending and pending[-1].to == mine:
            limit = max(max_leaves, pending[-1].position + 1 - size)
        expected = designated_key(rotations, await _first_key(conn), size + limit)
        if expected is None:
            return self.key or self._create(), limit  # a new ledger: its first key
        if self.key is None or mine != expected:
            raise self._refuse(expected)
        return self.key, limit

    async def rotation(self, conn: AsyncConnection) -> tuple[str | None, SigningKey]:
        """(the current key, the home's key — created if the home has none) for a rotation;
        `SigningKeyError` when the home's key already is the current key."""
        current = await self.current(conn)
        self.reread()
        key = self.key or self._create()
        if key.verifier_key() == current:
            raise SigningKeyError(
                f"{key_file(self.home)} already holds this ledger's key {current}: to rotate to "
                "a new key, move that file out of the home folder first (a new key is then "
                "created), or point --home at the folder holding the new key"
            )
        return current, key
