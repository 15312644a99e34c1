"""The checkpoint signing key on disk (floor 2: file I/O).

One Ed25519 seed per `UNHARDCODED_HOME` (default `~/.unhardcoded`), in `ledger-signing.key`,
mode 0600 inside a 0700 folder; a key file that group or others can read is refused. Reading
never creates anything: only `create_seed` does, and the ledger calls it only when a ledger that
has never signed signs its first checkpoint, or when told to rotate its key.
The key's note name is the ledger's origin, `unhardcoded/<ledger id>`, so one
home can sign for several ledgers and each checkpoint names the log it belongs to.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ledger._errors import KeyFileError

__all__ = ["KEY_FILE_NAME", "create_seed", "key_file", "read_seed"]

KEY_FILE_NAME = "ledger-signing.key"
_HEADER = "unhardcoded ledger signing key: ed25519 seed, base64\n"


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: the signing key is accessible to group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )


def _read_seed(path: Path) -> bytes:
    _check_private(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the signing key: {exc}") from exc
    if not text.startswith(_HEADER):
        raise KeyFileError(f"{path}: not an unhardcoded signing key file (bad first line)")
    try:
        seed = base64.b64decode(text[len(_HEADER) :].strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFileError(f"{path}: the key line is not base64: {exc}") from exc
    if len(seed) != 32:
        raise KeyFileError(f"{path}: an Ed25519 seed is 32 bytes, the file holds {len(seed)}")
    return seed


def key_file(home: Path) -> Path:
    """Where the signing key of `home` is kept."""
    return home.expanduser() / KEY_FILE_NAME


def read_seed(home: Path) -> bytes | None:
    """The 32-byte Ed25519 seed kept in `home`, or None when there is none (nothing is created)."""
    path = key_file(home)
    try:
        if not path.exists():
            return None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the signing key: {exc}") from exc
    return _read_seed(path)


def create_seed(home: Path) -> bytes:
    """The seed kept in `home`, generated (atomically, 0600) when there is none."""
    home = home.expanduser()
    path = home / KEY_FILE_NAME
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            return _read_seed(path)
        seed = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        tmp = home / f".{KEY_FILE_NAME}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(_HEADER + base64.b64encode(seed).decode("ascii") + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if another process created the key first: then use theirs.
            os.link(tmp, path)
        except FileExistsError:
            return _read_seed(path)
        finally:
            tmp.unlink()
        return seed
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create or read the signing key: {exc}") from exc
