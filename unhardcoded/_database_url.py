"""Database URLs as people paste them, mapped to the async drivers the ledger runs on.

The ledger needs SQLAlchemy's asyncio drivers: `sqlite+aiosqlite://` and `postgresql+asyncpg://`.
What people paste is often the synchronous form (`sqlite:///x.db`), a libpq URL
(`postgres://…`, `postgresql://…`) or another driver's (`postgresql+psycopg2://…`); those name
the same database, so they are read as the async driver's URL, with a note saying so. A plain
file path is read as a SQLite file. Any other scheme is refused with the two that work.

Plain string handling, no SQLAlchemy: the CLI maps `--db` before it imports anything heavy.
"""

from __future__ import annotations

__all__ = ["DatabaseUrlError", "normalize_database_url"]

_SQLITE = "sqlite+aiosqlite"
_POSTGRES = "postgresql+asyncpg"

_ALIASES = {
    "sqlite": _SQLITE,
    "sqlite+pysqlite": _SQLITE,
    "postgres": _POSTGRES,
    "postgresql": _POSTGRES,
    "postgresql+psycopg2": _POSTGRES,
    "postgresql+psycopg": _POSTGRES,
    "postgresql+pg8000": _POSTGRES,
}

# libpq's sslmode names asyncpg's ssl option (same values: disable, prefer, require, …).
_QUERY_ALIASES = {_POSTGRES: {"sslmode": "ssl"}}


class DatabaseUrlError(ValueError):
    """A database URL whose scheme names no database the ledger runs on."""


def _rename_query(scheme: str, rest: str) -> str:
    renames = _QUERY_ALIASES.get(scheme)
    if not renames or "?" not in rest:
        return rest
    location, _, query = rest.partition("?")
    parts = []
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        parts.append(f"{renames.get(key, key)}{sep}{value}")
    return f"{location}?{'&'.join(parts)}"


def normalize_database_url(url: str) -> tuple[str, str | None]:
    """`(async URL, note)`: `url` with its scheme mapped to the async driver, and a note (None
    when `url` was already one the ledger uses). Raises `DatabaseUrlError` for other schemes."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        if not url.strip():
            raise DatabaseUrlError("the database URL is empty")
        mapped = f"{_SQLITE}:///{url}"
        return mapped, f"read the path {url!r} as the SQLite database {mapped}"
    lowered = scheme.lower()
    if lowered in (_SQLITE, _POSTGRES):
        return url, None
    target = _ALIASES.get(lowered)
    if target is None:
        raise DatabaseUrlError(
            f"unsupported database URL scheme {scheme!r}: use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user@host:5432/database"
        )
    return (
        f"{target}://{_rename_query(target, rest)}",
        f"read the database URL scheme {scheme!r} as {target!r} (the async driver)",
    )
