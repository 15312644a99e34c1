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
    """The request body is not usable: bad JSON, wrong types. `pointer` is into the body."""

    def __init__(self, message: str, *, pointer: str = "") -> None:
        super().__init__(f"{pointer}: {message}" if pointer else message)
        self.pointer = pointer


class PayloadTooLargeError(GatewayError):
    """The request body is larger than the configured limit (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than the limit of {limit} bytes")
        self.limit = limit


class KeyStoreError(GatewayError):
    """An API-key operation was given bad input (unknown scope, empty tenant, unknown key id)."""


class KeyStoreUnavailableError(GatewayError):
    """The database of the API keys could not be reached or is not migrated (HTTP 503)."""


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
