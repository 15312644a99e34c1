"""`Upstream`: what the gateway holds — provider registry, an adapter per kind, one transport."""

from __future__ import annotations

import time

from pydantic import SecretStr

from router.services.upstream._anthropic import AnthropicAdapter
from router.services.upstream._anthropic_translate import DEFAULT_MAX_TOKENS
from router.services.upstream._config import ProviderRegistry
from router.services.upstream._echo import EchoAdapter
from router.services.upstream._http import Clock
from router.services.upstream._openai import OpenAICompatibleAdapter
from router.services.upstream._transport import Transport
from router.services.upstream._types import (
    Credentials,
    ProviderKind,
    RequestBody,
    UpstreamAdapter,
    UpstreamResponse,
    UpstreamStream,
    UpstreamTarget,
)


class Upstream:
    """Calls a provider's model by name: looks up its configuration, key and protocol adapter.

    All HTTP goes through `transport` (an `AiohttpTransport`, owned by the caller; a
    `MockTransport` in tests). A `tenant_key` (BYOK) replaces the operator's key for that call.
    """

    def __init__(
        self,
        transport: Transport,
        registry: ProviderRegistry,
        *,
        clock: Clock = time.perf_counter,
        anthropic_default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.registry = registry
        chat_completions = OpenAICompatibleAdapter(transport, clock=clock)
        self._adapters: dict[ProviderKind, UpstreamAdapter] = {
            "openai_compatible": chat_completions,
            "openrouter": chat_completions,
            "anthropic": AnthropicAdapter(
                transport, clock=clock, default_max_tokens=anthropic_default_max_tokens
            ),
            "echo": EchoAdapter(clock=clock),
        }

    def prepare(
        self,
        provider: str,
        model: str,
        tenant_key: SecretStr | None = None,
        region: str | None = None,
    ) -> tuple[UpstreamTarget, Credentials]:
        """Target and credentials for one attempt at the endpoint for `region`
        (`ProviderConfigError` if the provider is unknown, keyless or has no such endpoint)."""
        config = self.registry.provider(provider)
        return config.target(model, region), config.credentials(tenant_key)

    async def complete(
        self,
        request_body: RequestBody,
        provider: str,
        model: str,
        *,
        tenant_key: SecretStr | None = None,
        region: str | None = None,
    ) -> UpstreamResponse:
        """One non-streaming attempt at `model` of `provider`, in `region`."""
        target, credentials = self.prepare(provider, model, tenant_key, region)
        return await self._adapters[target.kind].complete(request_body, target, credentials)

    def stream(
        self,
        request_body: RequestBody,
        provider: str,
        model: str,
        *,
        tenant_key: SecretStr | None = None,
        region: str | None = None,
    ) -> UpstreamStream:
        """One streaming attempt in `region` (use with `async with`)."""
        target, credentials = self.prepare(provider, model, tenant_key, region)
        return self._adapters[target.kind].stream(request_body, target, credentials)
