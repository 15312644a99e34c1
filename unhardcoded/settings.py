"""Process settings, read from the environment (prefix `UNHARDCODED_`) and overridable by flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from unhardcoded._database_url import normalize_database_url
from unhardcoded._defaults import DEFAULT_DATABASE_URL, DEFAULT_MAX_BODY_BYTES

__all__ = ["DEFAULT_DATABASE_URL", "DEFAULT_MAX_BODY_BYTES", "Settings"]


class Settings(BaseSettings):
    """`UNHARDCODED_DATABASE_URL`, `UNHARDCODED_HOME`, …"""

    model_config = SettingsConfigDict(env_prefix="UNHARDCODED_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy async URL of the ledger database (SQLite file or PostgreSQL). `sqlite://`,
    `postgres://`, `postgresql://` and other drivers' URLs are read as the async driver's."""

    home: Path = Path("~/.unhardcoded")
    """Folder of the process's private state: the checkpoint signing key (mode 0700)."""

    catalog: Path | None = None
    """Catalog JSON file for new decisions (default: the latest published, else the bundled)."""

    catalog_sync: str = ""
    """A catalog source `serve` syncs on a schedule (docs/catalog.md): the source, then
    `every=`, `url=`, `zdr=`, `eu=`, `overlay=`, `name=` options, e.g. `litellm every=1h`.
    Empty: no sync."""

    echo_all: bool = False
    """Send every attempt to the local echo provider (not a real model): try it without keys."""

    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024)
    """Largest accepted HTTP request body (413 above)."""

    key_cache_ttl_s: float = Field(default=2.0, ge=0)
    """How long a verified API key is trusted before it is looked up again (revocation delay)."""

    store_request_bodies: bool = False
    """Store each decision's request body as an erasable ledger attachment (outside the hashed
    payload: only its SHA-256 is chained). Never for a policy with a `no_log` rule
    (docs/decisions.md). Off by default: only the body's digest is recorded."""

    checkpoint_interval_s: float = Field(default=5.0, gt=0)
    """How often `serve` integrates new events into the Merkle tree and signs a checkpoint."""

    idempotency_window_s: float = Field(default=24 * 3600.0, ge=0)
    """How long the answer to a request with an `Idempotency-Key` is kept and sent again to a
    retry with the same key (docs/gateway.md, "Idempotency"); 0 turns idempotency keys off (the
    header is then ignored)."""

    idempotency_wait_s: float = Field(default=10.0, ge=0)
    """How long a retry waits for the first request with its key to be answered before it gets
    409 `idempotency_in_flight` (with `retry-after`)."""

    witnesses: str = ""
    """Witnesses that cosign this ledger's checkpoints (docs/witness.md): entries separated by
    commas or newlines, each `<URL prefix> <witness vkey>`. Each new checkpoint is submitted to
    them in the background, never on a decision's path."""

    witness_timeout_s: float = Field(default=10.0, gt=0)
    """How long one submission to a witness may take before it counts as unreachable."""

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_database_url(value)[0]
