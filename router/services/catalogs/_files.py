"""Reading catalogs and policies from files, stdin and the package's bundled data.

The JSON reader is strict: NaN/Infinity literals and duplicate object keys are rejected, because
both make a document mean different things to different readers.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from router.core import Catalog, Policy, RouterError

BUNDLED_POLICIES = ("enterprise-eu", "free-tier", "regulated", "vip")
"""Names of the example policies shipped in `router/data/policies/`."""


class DocumentReadError(RouterError):
    """A file cannot be read or is not strict JSON. `source` names it ('-' is stdin)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{'stdin' if source == '-' else source}: {reason}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def parse_json_text(text: str, source: str = "<text>") -> Any:
    """Parse strict JSON (no NaN/Infinity, no duplicate keys); raise `DocumentReadError`."""
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise DocumentReadError(
            source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise DocumentReadError(source, f"invalid JSON: {exc}") from None
    except RecursionError:
        # The standard library's decoder recurses once per nesting level.
        raise DocumentReadError(source, "invalid JSON: nested too deeply") from None


def read_json(source: str | Path) -> Any:
    """Read and parse a JSON file; `-` reads stdin."""
    name = str(source)
    if name == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise DocumentReadError(name, f"cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise DocumentReadError(name, f"cannot read: not UTF-8 ({exc.reason})") from None
    return parse_json_text(text, name)


def load_catalog(source: str | Path) -> Catalog:
    """Read a catalog document from a file (or `-` for stdin) and validate it."""
    return Catalog.from_json(read_json(source))


def bundled_catalog() -> Catalog:
    """The small illustrative catalog shipped inside the package (`router/data/catalog.json`)."""
    text = resources.files("router").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return Catalog.from_json(parse_json_text(text, "router/data/catalog.json"))


def bundled_policy_document(name: str) -> Any:
    """The JSON document of one example policy shipped in `router/data/policies/`."""
    if name not in BUNDLED_POLICIES:
        raise DocumentReadError(
            name, f"no bundled policy (expected one of: {', '.join(BUNDLED_POLICIES)})"
        )
    path = f"data/policies/{name}.json"
    text = resources.files("router").joinpath(path).read_text(encoding="utf-8")
    return parse_json_text(text, f"router/{path}")


def load_policy(source: str | Path, catalog: Catalog) -> Policy:
    """Read a policy document from a file (or `-` for stdin) and validate it against the catalog's
    attribute schema."""
    return Policy.from_json(read_json(source), catalog.schema)
