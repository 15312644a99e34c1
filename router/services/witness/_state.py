"""The witness's own state: a folder (mode 0700) holding its key and its SQLite database, both
mode 0600.

- `witness.key`: the cosigner secret ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``;
- `witness.db`: the logs it witnesses (origin → the log's verifier key), every checkpoint it
  cosigned (the latest per origin is its view of the log), and the refused requests kept as
  evidence. Cosigned checkpoints and refusals are insert-only: triggers refuse UPDATE and DELETE.

Plain `sqlite3`: one short transaction per request, `BEGIN IMMEDIATE` so that reading the latest
size and recording the new one are one atomic step across threads and processes (the race the
tlog-witness spec warns about).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from ledger import CosignerKey, LedgerError, parse_cosigner_secret
from router.services.witness._errors import WitnessError

__all__ = ["DB_FILE", "KEY_FILE", "connect", "create_state", "load_key"]

KEY_FILE = "witness.key"
DB_FILE = "witness.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS witness_logs (
    origin TEXT PRIMARY KEY,
    verifier_key TEXT NOT NULL,
    added_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS witness_cosigned (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    tree_size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    checkpoint TEXT NOT NULL,
    cosignature TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS witness_cosigned_by_size ON witness_cosigned (origin, tree_size);
CREATE TABLE IF NOT EXISTS witness_refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    request BLOB NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS witness_cosigned_no_update BEFORE UPDATE ON witness_cosigned
BEGIN SELECT RAISE(ABORT, 'witness_cosigned is insert-only'); END;
CREATE TRIGGER IF NOT EXISTS witness_cosigned_no_delete BEFORE DELETE ON witness_cosigned
BEGIN SELECT RAISE(ABORT, 'witness_cosigned is insert-only'); END;
CREATE TRIGGER IF NOT EXISTS witness_refusals_no_update BEFORE UPDATE ON witness_refusals
BEGIN SELECT RAISE(ABORT, 'witness_refusals is insert-only'); END;
CREATE TRIGGER IF NOT EXISTS witness_refusals_no_delete BEFORE DELETE ON witness_refusals
BEGIN SELECT RAISE(ABORT, 'witness_refusals is insert-only'); END;
"""


def _private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WitnessError(
            f"{path}: accessible to group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod {'700' if path.is_dir() else '600'} {path}`"
        )


def create_state(folder: Path, name: str) -> CosignerKey:
    """Create the witness folder with a new key named `name` and an empty database. Refuses a
    folder that already holds a key: a witness's key is its identity."""
    key_path = folder / KEY_FILE
    if key_path.exists():
        raise WitnessError(f"{key_path} exists: this folder already holds a witness")
    try:
        key = CosignerKey.generate(name)
    except LedgerError as exc:
        raise WitnessError(f"witness name {name!r}: {exc}") from None
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key.secret() + "\n")
        db_path = folder / DB_FILE
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        db_path.chmod(0o600)
    except OSError as exc:
        raise WitnessError(f"{folder}: cannot create the witness state: {exc}") from None
    with connect(folder):
        pass
    return key


def load_key(folder: Path) -> CosignerKey:
    """The witness's key, from a file only its owner may read."""
    path = folder / KEY_FILE
    if not path.is_file():
        raise WitnessError(f"{path}: no witness key (run `unhardcoded witness init` first)")
    _private(folder)
    _private(path)
    try:
        return parse_cosigner_secret(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, LedgerError) as exc:
        raise WitnessError(f"{path}: not a witness key: {exc}") from None


@contextlib.contextmanager
def connect(folder: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the witness database (schema ensured), closed afterwards. Statements run
    in autocommit mode; callers open their own `BEGIN IMMEDIATE` transaction."""
    path = folder / DB_FILE
    if not path.is_file():
        raise WitnessError(f"{path}: no witness database (run `unhardcoded witness init` first)")
    _private(path)
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise WitnessError(f"{path}: cannot open the witness database: {exc}") from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.executescript(_SCHEMA)
        yield conn
    except sqlite3.Error as exc:
        raise WitnessError(f"{path}: {exc}") from None
    finally:
        conn.close()
