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


class _DuplicateKeyError(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _DuplicateKeyError
    return obj


class _Duplicated(dict[str, Any]):
    """An object of the body that holds a key twice (`duplicate`): built only to find where."""

    duplicate: str


def _mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            obj = _Duplicated(pairs)
            obj.duplicate = key
            return obj
        seen.add(key)
    return dict(pairs)


def _duplicate_pointer(value: Any, pointer: str = "") -> str | None:
    """The pointer of the first key held twice, depth first in document order."""
    if isinstance(value, dict):
        if isinstance(value, _Duplicated):
            return pointer + "/" + value.duplicate.replace("~", "~0").replace("/", "~1")
        items: Iterable[tuple[str, Any]] = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        found = _duplicate_pointer(item, pointer + "/" + key.replace("~", "~0").replace("/", "~1"))
        if found is not None:
            return found
    return None


# What `json.loads(text, parse_constant=…, object_pairs_hook=…)` builds on every call, built once.
_DECODER = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_refuse_duplicates)
_LOCATOR = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_mark_duplicates)


def _decode(decoder: json.JSONDecoder, text: str) -> Any:
    """`decoder.decode(text)`; `BadRequestError` for anything but strict JSON (the duplicate
    key error of `_DECODER` passes through)."""
    try:
        if text.startswith("\ufeff"):  # what json.loads itself refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return decoder.decode(text)
    except _DuplicateKeyError:
        raise
    except json.JSONDecodeError as exc:
        raise BadRequestError(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise BadRequestError(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError("the request body is nested too deeply") from None


def parse_json_body(raw: bytes) -> Any:
    """The parsed JSON body; `BadRequestError` for anything that is not strict JSON (bad UTF-8,
    syntax, NaN/Infinity, nesting too deep for the parser) and for a key held twice by one
    object (code `duplicate_key`, with the pointer of the second one)."""
    if not raw.strip():
        raise BadRequestError("the request body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        return _decode(_DECODER, text)
    except _DuplicateKeyError:
        pass
    # JSON parsers disagree on which of two values wins: refuse, saying where. The duplicate is
    # found when its object closes, so the rest of the text is unread: the locator parses it
    # all, and a syntax error further on is the answer instead.
    pointer = _duplicate_pointer(_decode(_LOCATOR, text))
    raise BadRequestError(
        "a key appears twice in the same object", pointer=pointer, code="duplicate_key"
    )


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
