"""Process settings, read from the environment (prefix `UNHARDCODED_`) and overridable by flags."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./unhardcoded.db"


class Settings(BaseSettings):
    """`UNHARDCODED_DATABASE_URL`, `UNHARDCODED_HOME`, …"""

    model_config = SettingsConfigDict(env_prefix="UNHARDCODED_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy async URL of the ledger database (SQLite file or PostgreSQL)."""

    home: Path = Path("~/.unhardcoded")
    """Folder of the process's private state: the checkpoint signing key (mode 0700)."""
