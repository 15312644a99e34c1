"""Loopback fake providers for the upstream tests (the lead lifts them to the root conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from router.services.upstream import AiohttpTransport, ProviderRegistry, Upstream
from tests.support.fake_providers import (
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    FakeProvider,
    fake_anthropic,
    fake_openai,
)

__all__ = ["fake_anthropic", "fake_openai"]


@pytest.fixture
def registry(fake_openai: FakeProvider, fake_anthropic: FakeProvider) -> ProviderRegistry:
    """Providers `openai` and `anthropic` pointed at the loopback fakes with their keys."""
    return ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_OPENAI_BASE_URL": fake_openai.base_url,
            "UNHARDCODED_PROVIDER_OPENAI_API_KEY": FAKE_OPENAI_KEY,
            "UNHARDCODED_PROVIDER_OPENAI_TIMEOUT": "5",
            "UNHARDCODED_PROVIDER_ANTHROPIC_BASE_URL": fake_anthropic.base_url,
            "UNHARDCODED_PROVIDER_ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
            "UNHARDCODED_PROVIDER_ANTHROPIC_TIMEOUT": "5",
        }
    )


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """The transport the gateway serves with, closed after the test."""
    async with AiohttpTransport() as pool:
        yield pool


@pytest.fixture
def upstream(transport: AiohttpTransport, registry: ProviderRegistry) -> Upstream:
    """The facade over both fakes and the echo provider."""
    return Upstream(transport, registry)
