"""`KeyStore.authenticate`: concurrent requests whose cached key expired share one table read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from router.services.gateway import AuthenticationError, KeyStore
from unhardcoded.db import create_engine, upgrade


class CountingKeyStore(KeyStore):
    """The real store, counting its table reads."""

    lookups = 0

    async def _lookup(self, key_id: str) -> Any:
        self.lookups += 1
        return await super()._lookup(key_id)


async def test_concurrent_misses_share_one_lookup_and_revocation_still_applies(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await upgrade(url)
    engine = create_engine(url)
    try:
        keys = CountingKeyStore(engine, cache_ttl_s=0.0)  # every call is a cache miss
        created = await keys.create("acme", ["route"])
        principals = await asyncio.gather(*(keys.authenticate(created.secret) for _ in range(32)))
        assert {p.tenant for p in principals} == {"acme"}
        assert keys.lookups == 1

        # The next miss reads the table again (nothing stale is reused), and sees a revocation.
        await keys.revoke(created.key.key_id)
        with pytest.raises(AuthenticationError):
            await keys.authenticate(created.secret)
        assert keys.lookups == 2

        # A wrong secret for a real key id fails for its caller only.
        other = await keys.create("acme", ["route"])
        wrong = other.secret[:-4] + ("aaaa" if not other.secret.endswith("aaaa") else "bbbb")
        results = await asyncio.gather(
            keys.authenticate(other.secret), keys.authenticate(wrong), return_exceptions=True
        )
        assert results[0].tenant == "acme"  # type: ignore[union-attr]
        assert isinstance(results[1], AuthenticationError)
        assert keys.lookups == 3
    finally:
        await engine.dispose()
