"""`translate`, the one place errors become HTTP: status, OpenAI error type and code for the
errors the HTTP tests do not provoke, and no internal detail in the 5xx bodies."""

from __future__ import annotations

import pytest

from ledger import InvalidEventError, LedgerError, NotSequencedError, StoreUnavailableError
from router.core import RouterError
from router.services.decisions import DecisionError, UnknownCatalogError
from router.services.gateway import KeyStoreError
from router.services.upstream import UnsupportedRequestError, UpstreamError
from router.services.upstream._errors import UpstreamConnectError
from unhardcoded.app import translate

SECRET = "postgresql://app:hunter2@db.internal/ledger"

CASES = [
    (KeyStoreError("unknown scope 'root'"), 400, "invalid_request_error", "invalid_key_request"),
    (
        UpstreamConnectError("refused", provider="openai", model="m"),
        502,
        "upstream_error",
        "connect",
    ),
    (UnknownCatalogError("no catalog 'abc'"), 404, "not_found_error", "unknown_catalog"),
    (DecisionError("bad record"), 400, "invalid_request_error", "invalid_request"),
    (RouterError("bad"), 400, "invalid_request_error", "invalid_request"),
    (InvalidEventError("not a UUID"), 400, "invalid_request_error", "invalid_id"),
    (NotSequencedError("not yet in a checkpoint"), 409, "conflict_error", "not_sequenced"),
    (StoreUnavailableError(f"cannot connect to {SECRET}"), 503, "server_error", None),
    (LedgerError(f"odd state at {SECRET}"), 500, "server_error", "ledger_error"),
    (RuntimeError(f"bug near {SECRET}"), 500, "server_error", None),
]


@pytest.mark.parametrize(("exc", "status", "type_", "code"), CASES, ids=lambda v: type(v).__name__)
def test_each_error_has_its_status_type_and_code(
    exc: Exception, status: int, type_: str, code: str | None
) -> None:
    got_status, body = translate(exc)
    assert (got_status, body["error"]["type"], body["error"]["code"]) == (status, type_, code)
    if status >= 500:
        assert SECRET not in str(body)  # the log has the detail, the caller does not
    else:
        assert body["error"]["message"] == str(exc)


def test_every_upstream_error_class_reaches_the_code() -> None:
    kinds = [k for k in UpstreamError.__subclasses__() if k is not UnsupportedRequestError]
    assert len(kinds) >= 5
    for kind in kinds:
        status, body = translate(kind("x", provider="p", model="m"))
        assert (status, body["error"]["code"]) == (502, kind.error_class)


def test_a_request_the_provider_cannot_take_is_the_callers_error_with_its_pointer() -> None:
    exc = UnsupportedRequestError(
        "audio parts are not supported", provider="anthropic", model="m", pointer="/messages/0"
    )
    status, body = translate(exc)
    assert status == 400
    assert body["error"]["param"] == "/messages/0"
    assert body["error"]["code"] == "unsupported"
