"""A PostgreSQL database of its own for tests whose server processes cannot be given a schema
(`unhardcoded serve` reads only a database URL): created fresh, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import DEFAULT_PG_URL


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """The SQLAlchemy URL of a new, empty database on the test server (skipped when the server
    is unreachable, unless UNHARDCODED_TEST_REQUIRE_PG=1)."""
    url = make_url(os.environ.get("UNHARDCODED_TEST_PG_URL", DEFAULT_PG_URL))
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("UNHARDCODED_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL at {url} is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc}")
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
