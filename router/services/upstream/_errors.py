"""Typed upstream errors: one family under `RouterError`, each with a stable `error_class`.

No message built here ever holds a provider key or the request body. What an upstream said about
a failure (it may echo request content, e.g. vLLM's validation errors) is kept apart in `detail`,
which is neither in `str()` nor in `repr()`: the gateway may return it to the caller, never log or
record it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from router.core import RouterError

_SHORT_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_DETAIL_LIMIT = 500

#: Every `error_class` value, stable: the ledger, reports and dashboards group attempts by it.
ERROR_CLASSES = (
    "connect",
    "timeout",
    "rate_limited",
    "server_error",
    "client_error",
    "protocol",
    "unsupported",
    "config",
)


class UpstreamError(RouterError):
    """A provider call failed (or could not be made). Root of the upstream family.

    `retryable` says whether another attempt (the next entry of a fallback plan) may succeed;
    `status` is the upstream HTTP status when there was one; `error_class` is a stable short string;
    `latency_s` is how long the attempt ran before failing (None when nothing was sent).
    """

    error_class: ClassVar[str] = "protocol"
    default_retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status: int | None = None,
        retryable: bool | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(f"{provider}/{model}: {message}")
        self.provider = provider
        self.model = model
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.detail = detail
        self.latency_s: float | None = None


class UpstreamConnectError(UpstreamError):
    """The connection could not be made, or it dropped before a response started."""

    error_class = "connect"


class UpstreamTimeoutError(UpstreamError):
    """Connect, read, write or pool timeout; also an upstream 408."""

    error_class = "timeout"


class UpstreamRateLimitedError(UpstreamError):
    """429 (or Anthropic's in-stream `rate_limit_error`). `retry_after` in seconds when given."""

    error_class = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str,
        status: int | None = 429,
        retryable: bool | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            model=model,
            status=status,
            retryable=retryable,
            detail=detail,
        )
        self.retry_after = retry_after


class UpstreamServerError(UpstreamError):
    """5xx (Anthropic's 529 `overloaded_error` too), or an in-stream server error event."""

    error_class = "server_error"


class UpstreamClientError(UpstreamError):
    """4xx other than 408/429: the request or the key was refused. Not retryable, except 409."""

    error_class = "client_error"
    default_retryable = False


class UpstreamProtocolError(UpstreamError):
    """The upstream broke the protocol: garbage or truncated JSON, a wrong shape, a cut stream."""

    error_class = "protocol"


class UnsupportedRequestError(UpstreamError):
    """The request uses something the target's protocol cannot express; nothing was sent.

    `pointer` is a JSON pointer into the request body (RFC 6901), e.g. `/messages/2/content/0/type`.
    """

    error_class = "unsupported"
    default_retryable = False

    def __init__(self, message: str, *, provider: str, model: str, pointer: str) -> None:
        super().__init__(f"{pointer}: {message}", provider=provider, model=model)
        self.pointer = pointer


class ProviderConfigError(UpstreamError):
    """Provider settings are wrong or missing (unknown provider, no key, bad URL or kind)."""

    error_class = "config"
    default_retryable = False

    def __init__(self, message: str, *, provider: str = "-", model: str = "-") -> None:
        super().__init__(message, provider=provider, model=model)


class PricingError(RouterError):
    """A price or a token count given to the cost function is not usable (negative, NaN, …)."""


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced, cut to a bounded length."""
    if secret:
        text = text.replace(secret, "[REDACTED]")
    if len(text) > _DETAIL_LIMIT:
        text = text[:_DETAIL_LIMIT] + "…"
    return text


def short_code(value: object, secret: str | None = None) -> str | None:
    """`value` if it looks like an error code (`rate_limit_exceeded`), else None (no free text).

    A code that contains the key (an upstream may echo it anywhere) is dropped too.
    """
    if isinstance(value, str) and _SHORT_CODE.match(value):
        if secret and secret in value:
            return None
        return value
    return None


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    value = headers.get("x-should-retry")
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after-ms")
    scale = 1000.0
    if value is None:
        value, scale = headers.get("retry-after"), 1.0
    if value is None:
        return None
    try:
        seconds = float(value) / scale
    except ValueError:
        return None  # an HTTP date: not worth a clock here; the gateway falls back anyway
    return seconds if seconds >= 0 else None


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str,
    code: str | None,
    detail: str | None,
) -> UpstreamError:
    """The typed error for a non-2xx upstream status, retryable or not as docs/providers.md,
    "Errors and retry rules", says (an `x-should-retry` header overrides the rule)."""
    override = _should_retry_header(headers)
    suffix = f" ({code})" if code else ""
    message = f"upstream answered HTTP {status}{suffix}"
    if status == 429:
        return UpstreamRateLimitedError(
            message,
            provider=provider,
            model=model,
            status=status,
            retryable=override,
            detail=detail,
            retry_after=_retry_after(headers),
        )
    cls: type[UpstreamError]
    retryable = override
    if status == 408:
        cls = UpstreamTimeoutError
    elif status >= 500:
        cls = UpstreamServerError
    elif 400 <= status < 500:
        cls = UpstreamClientError
        retryable = override if override is not None else status == 409
    else:
        cls, message = UpstreamProtocolError, f"unexpected HTTP status {status}"
    return cls(
        message, provider=provider, model=model, status=status, retryable=retryable, detail=detail
    )
