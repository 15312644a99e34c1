"""Default settings that must be known without importing pydantic (the CLI's fast paths)."""

from __future__ import annotations

__all__ = ["DEFAULT_DATABASE_FILE", "DEFAULT_DATABASE_URL", "DEFAULT_MAX_BODY_BYTES"]

DEFAULT_DATABASE_FILE = "unhardcoded.db"
"""The SQLite file of the default database, relative to the working directory."""

DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///./{DEFAULT_DATABASE_FILE}"
DEFAULT_MAX_BODY_BYTES = 1 << 20
