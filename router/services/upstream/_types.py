"""The values crossing the upstream seam: target, credentials, usage, responses, adapter shape."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from pydantic import SecretStr

#: `openrouter` speaks Chat Completions like `openai_compatible`; the gateway adds OpenRouter's
#: `provider` routing preferences to its calls (docs/providers.md, OpenRouter).
ProviderKind = Literal["openai_compatible", "openrouter", "anthropic", "echo"]
PROVIDER_KINDS: tuple[ProviderKind, ...] = ("openai_compatible", "openrouter", "anthropic", "echo")

#: A chat request body in OpenAI's Chat Completions shape (already stripped of gateway-only fields).
RequestBody = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where one attempt goes: a provider (by name and protocol kind) and the provider's model name.

    `base_url` follows each SDK's convention: OpenAI-compatible URLs include the version path
    (`https://api.openai.com/v1`, the adapter appends `/chat/completions`); Anthropic's does not
    (`https://api.anthropic.com`, the adapter appends `/v1/messages`).
    """

    provider: str
    model: str
    kind: ProviderKind = "openai_compatible"
    base_url: str = ""
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """The key of one attempt; `source` says whose: the operator's, the tenant's (BYOK) or none.

    The key is a `SecretStr`: its `repr`/`str` show asterisks; only the adapter reads the value.
    """

    api_key: SecretStr | None = None
    source: Literal["operator", "tenant", "none"] = "none"

    def reveal(self) -> str | None:
        """The raw key, for building the request header — and for nothing else."""
        return None if self.api_key is None else self.api_key.get_secret_value()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one attempt, in OpenAI's terms (prompt includes cached input tokens)."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> dict[str, int]:
        """The OpenAI `usage` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A finished non-streaming attempt.

    `content` is the OpenAI-shaped JSON to return to the caller as is (for OpenAI-compatible
    providers: the upstream's own bytes, never re-encoded); `body` is the same, parsed.
    `latency_s` runs from just before the request is sent to the last byte of the response.
    """

    body: dict[str, Any]
    content: bytes
    usage: Usage | None
    status: int
    latency_s: float
    finish_reason: str | None


class UpstreamStream(ABC):
    """A streaming attempt: `async with` opens it, iterating yields OpenAI SSE events as bytes.

    Entering sends the request and checks the status, so HTTP-level failures (429, 5xx, connect,
    timeout) raise *before* any byte could reach the caller — the gateway can still fall back.
    Each item is one complete event (`b"data: {...}\\n\\n"`), the last one `b"data: [DONE]\\n\\n"`,
    ready to be written to the caller unchanged. After the iteration ends, `usage`,
    `finish_reason`, `ttfb_s` (send → first event) and `latency_s` (send → end) are set. The usage
    chunk is only passed on when the caller asked for it (`stream_options.include_usage`), but
    `usage` is always recorded.
    """

    def __init__(self) -> None:
        self.status: int | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.ttfb_s: float | None = None
        self.latency_s: float | None = None

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    @abstractmethod
    async def _open(self) -> None:
        """Send the request; raise the typed error for a failed connection or status."""

    @abstractmethod
    def _events(self) -> AsyncIterator[bytes]:
        """The OpenAI-shaped SSE events, ending with `data: [DONE]`."""

    async def aclose(self) -> None:  # noqa: B027 - nothing to release unless overridden
        """Release the connection (idempotent)."""


class UpstreamAdapter(Protocol):
    """One provider protocol; HTTP only through the `Transport` it was given."""

    async def complete(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> UpstreamResponse:
        """One non-streaming chat completion, OpenAI-shaped; `UpstreamError` on failure."""
        ...

    def stream(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> UpstreamStream:
        """A streaming chat completion (use with `async with`), OpenAI-shaped SSE events."""
        ...
