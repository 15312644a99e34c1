"""The gateway's errors, all `RouterError`s; `unhardcoded.app` maps each to one HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.core import RouterError
from router.services.upstream import UpstreamError

__all__ = [
    "AllAttemptsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "GatewayError",
    "IdempotencyInFlightError",
    "IdempotencyKeyReusedError",
    "IdempotencyUnavailableError",
    "IdempotentAnswerNotStoredError",
    "KeyStoreError",
    "KeyStoreUnavailableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
]


class GatewayError(RouterError):
    """Root of the gateway's errors."""


class AuthenticationError(GatewayError):
    """No API key, a malformed one, an unknown one or a revoked one (HTTP 401)."""


class PermissionDeniedError(GatewayError):
    """The key is valid but lacks the scope the operation needs (HTTP 403)."""


class NotFoundError(GatewayError):
    """The thing does not exist — or belongs to another tenant, which is the same to the caller."""


class BadRequestError(GatewayError):
    """The request body is not usable: bad JSON, wrong types. `pointer` is into the body (`""`
    is the whole body; None when there is no node to point at, e.g. a syntax error); `code` is
    the documented error code (docs/gateway.md)."""

    def __init__(
        self, message: str, *, pointer: str | None = None, code: str = "invalid_request"
    ) -> None:
        super().__init__(f"{pointer}: {message}" if pointer else message)
        self.pointer = pointer
        self.code = code


class PayloadTooLargeError(GatewayError):
    """The request body is larger than the configured limit (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than the limit of {limit} bytes")
        self.limit = limit


class KeyStoreError(GatewayError):
    """An API-key operation was given bad input (unknown scope, empty tenant, unknown key id)."""


class KeyStoreUnavailableError(GatewayError):
    """The database of the API keys could not be reached or is not migrated (HTTP 503)."""


class IdempotencyKeyReusedError(GatewayError):
    """The Idempotency-Key was used, within its window, for another request (HTTP 422)."""


class IdempotencyInFlightError(GatewayError):
    """The first request with this Idempotency-Key is still being answered and did not finish
    within the wait (HTTP 409, retryable after `retry_after_s`)."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class IdempotentAnswerNotStoredError(GatewayError):
    """The first request with this Idempotency-Key was answered, but its answer cannot be
    replayed: it was a stream, or its policy requires `no_log` (HTTP 409, final). `decision_id`
    names the decision that answered it."""

    def __init__(self, message: str, *, decision_id: str | None) -> None:
        super().__init__(message)
        self.decision_id = decision_id


class IdempotencyUnavailableError(GatewayError):
    """The database of the idempotency keys could not be reached or is not migrated (HTTP 503)."""


class AllAttemptsFailedError(GatewayError):
    """Every attempt of the fallback plan failed. `attempts` are their JSON summaries (no keys,
    no bodies); `last_error` is the failure that ended the plan (None if nothing was tried):
    whether it was retryable says whether the caller may try again; `all_timed_out` selects 504
    over 502."""

    def __init__(
        self,
        decision_id: str,
        attempts: Sequence[dict[str, Any]],
        last_error: UpstreamError | None = None,
    ) -> None:
        self.decision_id = decision_id
        self.attempts = list(attempts)
        self.last_error = last_error
        self.all_timed_out = bool(attempts) and all(
            a.get("error_class") == "timeout" for a in attempts
        )
        classes = ", ".join(f"{a['entry']}: {a.get('error_class')}" for a in attempts)
        super().__init__(
            f"all {len(attempts)} attempts of decision {decision_id} failed ({classes})"
        )
