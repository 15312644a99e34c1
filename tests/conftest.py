"""Shared fixtures. PostgreSQL: the server named by UNHARDCODED_TEST_PG_URL (default
postgresql+asyncpg://postgres@127.0.0.1:5432/test); each test gets its own freshly created schema,
dropped afterwards, so concurrent test runs never collide. Unreachable server: the test is skipped
with the reason, unless UNHARDCODED_TEST_REQUIRE_PG=1 (CI), which makes it a failure."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import settings
from sqlalchemy.engine import make_url

# The suite is deterministic: property tests explore the same examples on every run, so a red CI
# always reproduces. `HYPOTHESIS_PROFILE=explore pytest` searches new examples when hunting bugs.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class PgSchema:
    """A private schema on the test server: pass `url` and `search_path=schema` to the ledger."""

    url: str
    schema: str
    dsn: str


def _pg_url() -> str:
    return os.environ.get("UNHARDCODED_TEST_PG_URL", DEFAULT_PG_URL)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def pg_schema() -> AsyncIterator[PgSchema]:
    """A fresh schema on the PostgreSQL test server (skipped when unreachable, see module doc)."""
    url = _pg_url()
    dsn = _dsn(url)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("UNHARDCODED_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL at {url} is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc}")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield PgSchema(url=url, schema=schema, dsn=dsn)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL test server, as the libpq URL people paste."""
    base = make_url(_pg_url())
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"serve_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("UNHARDCODED_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL at {base} is required but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {base} is unreachable: {exc}")
    try:
        yield base.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """The CLI sets the process's umask (files private by default); tests run it in-process."""
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)
