"""Upstream provider adapters (floor 3): OpenAI-compatible, Anthropic Messages and the local echo.

Every adapter talks HTTP only through the `Transport` it is given (`AiohttpTransport` in
service, `MockTransport` in tests) and returns
OpenAI-shaped responses and SSE events. Failures are typed `UpstreamError`s with a stable
`error_class` and a `retryable` flag; no error, log line or repr ever holds a provider key.
See docs/providers.md.
"""

from router.services.upstream._anthropic import (
    ANTHROPIC_VERSION,
    AnthropicAdapter,
    AnthropicStream,
    StreamTranslator,
)
from router.services.upstream._anthropic_translate import (
    DEFAULT_MAX_TOKENS,
    request_to_anthropic,
    response_to_openai,
)
from router.services.upstream._client import Upstream
from router.services.upstream._config import (
    DEFAULT_PROVIDERS,
    ENV_PREFIX,
    ProviderConfig,
    ProviderRegistry,
    cost_usd,
)
from router.services.upstream._echo import ECHO_PREFIX, EchoAdapter, EchoStream
from router.services.upstream._errors import (
    ERROR_CLASSES,
    PricingError,
    ProviderConfigError,
    UnsupportedRequestError,
    UpstreamClientError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimitedError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from router.services.upstream._openai import OpenAICompatibleAdapter, OpenAIStream
from router.services.upstream._transport import (
    AiohttpTransport,
    MockTransport,
    Request,
    Response,
    Transport,
    TransportError,
)
from router.services.upstream._types import (
    PROVIDER_KINDS,
    Credentials,
    ProviderKind,
    RequestBody,
    UpstreamAdapter,
    UpstreamResponse,
    UpstreamStream,
    UpstreamTarget,
    Usage,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_PROVIDERS",
    "ECHO_PREFIX",
    "ENV_PREFIX",
    "ERROR_CLASSES",
    "PROVIDER_KINDS",
    "AiohttpTransport",
    "AnthropicAdapter",
    "AnthropicStream",
    "Credentials",
    "EchoAdapter",
    "EchoStream",
    "MockTransport",
    "OpenAICompatibleAdapter",
    "OpenAIStream",
    "PricingError",
    "ProviderConfig",
    "ProviderConfigError",
    "ProviderKind",
    "ProviderRegistry",
    "Request",
    "RequestBody",
    "Response",
    "StreamTranslator",
    "Transport",
    "TransportError",
    "UnsupportedRequestError",
    "Upstream",
    "UpstreamAdapter",
    "UpstreamClientError",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamRateLimitedError",
    "UpstreamResponse",
    "UpstreamServerError",
    "UpstreamStream",
    "UpstreamTarget",
    "UpstreamTimeoutError",
    "Usage",
    "cost_usd",
    "request_to_anthropic",
    "response_to_openai",
]
