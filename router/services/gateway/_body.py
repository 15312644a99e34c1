"""Reading request bodies and per-request provider keys (BYOK) without trusting them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

from router.services.gateway._errors import BadRequestError

__all__ = ["PROVIDER_KEY_HEADER", "parse_json_body", "provider_keys"]

#: `x-provider-key-<provider>: <key>`: the tenant's own key for one provider, this request only.
PROVIDER_KEY_HEADER = "x-provider-key-"
_PROVIDER = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# What `json.loads(text, parse_constant=…)` builds on every call, built once.
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def parse_json_body(raw: bytes) -> Any:
    """The parsed JSON body; `BadRequestError` for anything that is not strict JSON (bad UTF-8,
    syntax, NaN/Infinity, nesting too deep for the parser)."""
    if not raw.strip():
        raise BadRequestError("the request body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        if text.startswith("\ufeff"):  # what json.loads itself refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise BadRequestError(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError("the request body is nested too deeply") from None


def provider_keys(headers: Iterable[tuple[str, str]]) -> dict[str, SecretStr]:
    """Tenant keys from `x-provider-key-<provider>` headers, by provider (`-` read as `_`).

    The values go into `SecretStr`s at once: they are never logged, recorded or echoed.
    """
    keys: dict[str, SecretStr] = {}
    for name, value in headers:
        lowered = name.lower()
        if not lowered.startswith(PROVIDER_KEY_HEADER):
            continue
        provider = lowered[len(PROVIDER_KEY_HEADER) :]
        if not _PROVIDER.match(provider):
            raise BadRequestError(
                f"header {PROVIDER_KEY_HEADER}<provider>: provider name {provider[:64]!r} must "
                "match [a-z][a-z0-9_-]*"
            )
        if not value.strip():
            raise BadRequestError(f"header {PROVIDER_KEY_HEADER}{provider} is empty")
        keys[provider.replace("-", "_")] = SecretStr(value.strip())
    return keys
