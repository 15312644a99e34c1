"""The one place where errors become HTTP responses, in OpenAI's error shape.

`{"error": {"message", "type", "param", "code"}}`: `param` is a JSON pointer into the request body
where there is one (for policy errors, `/policy/...`). Messages come from the packages' errors,
which never hold a provider key or a request body; unexpected exceptions get a generic 500, in
the same shape, on a connection that stays usable (`CatchErrors`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger import (
    EventNotFoundError,
    InvalidEventError,
    LedgerError,
    NotSequencedError,
    StoreUnavailableError,
)
from router.core import (
    InputError,
    MissingTokensError,
    NoEntryPasses,
    PolicyError,
    RouterError,
)
from router.services.decisions import (
    DecisionError,
    DecisionNotFoundError,
    NoEntryPassesRecorded,
    UnknownCatalogError,
)
from router.services.gateway import (
    AllAttemptsFailedError,
    AuthenticationError,
    BadRequestError,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    IdempotencyUnavailableError,
    IdempotentAnswerNotStoredError,
    KeyStoreError,
    KeyStoreUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from router.services.upstream import (
    UnsupportedRequestError,
    UpstreamClientError,
    UpstreamError,
    UpstreamRateLimitedError,
)

__all__ = [
    "CatchErrors",
    "answer",
    "error_body",
    "install_error_handlers",
    "retry_headers",
    "translate",
]

log = logging.getLogger("unhardcoded.app")


#: What a client that went away before its answer is counted as (nginx's "client closed request").
CLIENT_CLOSED_REQUEST = 499


def _printable(value: Any) -> Any:
    """`value` with every string encodable as UTF-8: a lone surrogate taken from the request
    (JSON can escape one, UTF-8 cannot carry it) is shown as its escape, `\\ud800`."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The OpenAI error object (every string in it encodable, whatever the request held)."""
    return {
        "error": _printable(
            {"message": message, "type": type_, "param": param, "code": code, **extra}
        )
    }


def _input_error(exc: InputError, prefix: str, code: str) -> tuple[int, dict[str, Any]]:
    issues = [{"pointer": prefix + issue.pointer, "message": issue.message} for issue in exc.issues]
    first = issues[0]
    return 400, error_body(
        f"{first['pointer'] or '/'}: {first['message']}"
        + (f" (and {len(issues) - 1} more issue(s))" if len(issues) > 1 else ""),
        "invalid_request_error",
        param=first["pointer"],
        code=code,
        issues=issues,
    )


#: The provider's own 4xx statuses passed to the caller when the request (or the caller's own
#: provider key) was refused, with OpenAI's error type for each.
_CALLERS_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
}


def _callers_fault(exc: AllAttemptsFailedError) -> bool:
    """Whether the failure that ended the plan was the caller's doing: the provider refused the
    request, or refused the key the caller brought (a refused operator key is ours)."""
    last = exc.last_error
    if not isinstance(last, UpstreamClientError) or last.retryable:
        return False
    if last.status in (401, 403):
        return bool(exc.attempts) and exc.attempts[-1].get("key_source") == "tenant"
    return last.status in _CALLERS_STATUS


def _plan_failed(exc: AllAttemptsFailedError) -> tuple[int, dict[str, Any]]:
    last = exc.last_error
    extra: dict[str, Any] = {"decision_id": exc.decision_id, "attempts": exc.attempts}
    if isinstance(last, UnsupportedRequestError):
        return 400, error_body(
            str(last), "invalid_request_error", param=last.pointer, code="unsupported", **extra
        )
    if last is not None and last.status is not None and _callers_fault(exc):
        message = f"{last}: {last.detail}" if last.detail else str(last)
        return last.status, error_body(
            message, _CALLERS_STATUS[last.status], code="upstream_refused_request", **extra
        )
    if exc.attempts and all(a.get("error_class") == "rate_limited" for a in exc.attempts):
        return 429, error_body(str(exc), "rate_limit_error", code="upstream_rate_limited", **extra)
    if exc.all_timed_out:
        return 504, error_body(str(exc), "upstream_error", code="all_attempts_timed_out", **extra)
    return 502, error_body(str(exc), "upstream_error", code="all_attempts_failed", **extra)


def retry_headers(exc: Exception, status: int) -> dict[str, str]:
    """`x-should-retry` for every error answer, and `retry-after`/`retry-after-ms` when the
    provider said when: what is transient and what is final, docs/gateway.md, "Errors"."""
    if isinstance(exc, AllAttemptsFailedError):
        retry = exc.last_error is None or exc.last_error.retryable
    elif isinstance(exc, UpstreamError):
        retry = exc.retryable
    else:
        retry = status == 503 or isinstance(exc, NotSequencedError | IdempotencyInFlightError)
    headers = {"x-should-retry": "true" if retry else "false"}
    if isinstance(exc, IdempotencyInFlightError):
        headers["retry-after"] = str(math.ceil(exc.retry_after_s))
        headers["retry-after-ms"] = str(round(exc.retry_after_s * 1000))
    last = exc.last_error if isinstance(exc, AllAttemptsFailedError) else exc
    if retry and isinstance(last, UpstreamRateLimitedError) and last.retry_after is not None:
        headers["retry-after"] = str(math.ceil(last.retry_after))
        headers["retry-after-ms"] = str(round(last.retry_after * 1000))
    return headers


def answer(exc: Exception) -> JSONResponse:
    """The HTTP answer to an error raised while handling a request."""
    status, body = translate(exc)
    return JSONResponse(body, status_code=status, headers=retry_headers(exc, status))


#: The errors whose answer is their own message, by class, in the order they are asked about:
#: (classes, HTTP status, OpenAI error type, code). `translate` asks about the ones whose answer
#: needs more (a pointer, a decision id, a logged cause) first.
_ANSWERS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int, str, str | None], ...] = (
    (PayloadTooLargeError, 413, "invalid_request_error", "payload_too_large"),
    (AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    (PermissionDeniedError, 403, "permission_error", "insufficient_scope"),
    (
        (NotFoundError, EventNotFoundError, DecisionNotFoundError),
        404,
        "not_found_error",
        "not_found",
    ),
    (IdempotencyKeyReusedError, 422, "invalid_request_error", "idempotency_key_reused"),
    (IdempotencyInFlightError, 409, "conflict_error", "idempotency_in_flight"),
    (KeyStoreError, 400, "invalid_request_error", "invalid_key_request"),
    (UnknownCatalogError, 404, "not_found_error", "unknown_catalog"),
    ((DecisionError, RouterError), 400, "invalid_request_error", "invalid_request"),
    (InvalidEventError, 400, "invalid_request_error", "invalid_id"),
    (NotSequencedError, 409, "conflict_error", "not_sequenced"),
)


def translate(exc: Exception) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for an error raised while handling a request."""
    if isinstance(exc, ClientDisconnect):
        log.info("the client went away before its answer")
        return CLIENT_CLOSED_REQUEST, error_body(
            "client closed the request", "invalid_request_error", code="client_closed_request"
        )
    if isinstance(exc, PolicyError):
        return _input_error(exc, "/policy", "invalid_policy")
    if isinstance(exc, InputError):
        return _input_error(exc, "", "invalid_request")
    if isinstance(exc, NoEntryPasses):
        return _no_entry(exc)
    if isinstance(exc, MissingTokensError):
        return 400, error_body(
            str(exc), "invalid_request_error", param="/policy/tokens", code="missing_tokens"
        )
    if isinstance(exc, BadRequestError | UnsupportedRequestError):
        reason = exc.code if isinstance(exc, BadRequestError) else "unsupported"
        return 400, error_body(str(exc), "invalid_request_error", param=exc.pointer, code=reason)
    if isinstance(exc, IdempotentAnswerNotStoredError):
        return 409, error_body(
            str(exc),
            "conflict_error",
            code="idempotency_answer_not_stored",
            decision_id=exc.decision_id,
        )
    if isinstance(exc, KeyStoreUnavailableError | IdempotencyUnavailableError):
        log.error("%s", exc)
        which = "API key" if isinstance(exc, KeyStoreUnavailableError) else "gateway"
        return 503, error_body(f"the {which} database is unavailable", "server_error", code=None)
    if isinstance(exc, AllAttemptsFailedError):
        return _plan_failed(exc)
    if isinstance(exc, UpstreamError):
        return 502, error_body(str(exc), "upstream_error", code=exc.error_class)
    if isinstance(exc, StoreUnavailableError):
        return 503, error_body("the ledger database is unavailable", "server_error", code=None)
    for classes, status, kind, code in _ANSWERS:
        if isinstance(exc, classes):
            return status, error_body(str(exc), kind, code=code)
    if isinstance(exc, LedgerError):
        log.error("ledger error: %s", exc)
        return 500, error_body("ledger error", "server_error", code="ledger_error")
    log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return 500, error_body("internal server error", "server_error")


def _no_entry(exc: NoEntryPasses) -> tuple[int, dict[str, Any]]:
    trace = exc.trace
    removed = {
        rule: count
        for rule, bitmap in zip(trace.rule_ids, trace.failures, strict=True)
        if (count := int.from_bytes(bitmap, "big").bit_count())
    }
    recorded = exc.decision if isinstance(exc, NoEntryPassesRecorded) else None
    return 422, error_body(
        str(exc),
        "invalid_request_error",
        param="/policy",
        code="no_entry_passes",
        decision_id=None if recorded is None else str(recorded.decision_id),
        fingerprint=trace.policy.fingerprint,
        catalog_version=trace.catalog.version,
        removed_by_rule=removed,
    )


async def _package_error(request: Request, exc: Exception) -> JSONResponse:
    return answer(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = [str(p) for p in first.get("loc", ())]
    param = "/" + "/".join(location[1:]) if len(location) > 1 else None
    message = f"{'.'.join(location)}: {first.get('msg', 'invalid')}"
    return JSONResponse(
        error_body(message, "invalid_request_error", param=param),
        status_code=400,
        headers={"x-should-retry": "false"},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return JSONResponse(
        error_body(str(exc.detail), kind),
        status_code=exc.status_code,
        headers={**(exc.headers or {}), "x-should-retry": "false"},
    )


class CatchErrors:
    """Pure ASGI middleware: any exception a handler let through becomes its translation here.

    Starlette's own last resort (the `Exception` handler) answers and then re-raises, and the
    server closes a connection whose application raised — so the client's *next* request on
    that keep-alive connection failed. Here nothing is re-raised once an answer went out whole;
    only an exception in the middle of a response already started (a broken stream) still
    propagates, because closing the connection is then the only way to tell the client.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_started)
        except Exception as exc:
            if started:
                raise
            await answer(exc)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations on `app` (call before adding the access log, so that the log
    sees the status of a translated 500)."""
    app.add_exception_handler(RouterError, _package_error)
    app.add_exception_handler(LedgerError, _package_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CatchErrors)
