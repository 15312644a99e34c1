"""What every catalog importer shares: the source of a document, import errors with pointers, the
import summary, price conversion, duplicate resolution and the assembly of the catalog document
with its provenance metadata.

An importer maps a parsed source document to *draft entries* (plain dicts of attributes) plus an
`ImportSummary`; overlays then edit the drafts; `assemble` turns them into a validated `Catalog`.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from router.core import Catalog, InputError, Issue

IMPORTER_FORMAT = "unhardcoded-import/1"
"""Version of the metadata layout written by the importers (`metadata.importer`)."""

UNSPECIFIED_REGION = "unspecified"
"""Region of an endpoint whose source names none (the provider's default endpoint). Distinct from
`global`, which a source writes explicitly (e.g. Bedrock's `global.` inference profiles)."""

PRICE_SIGNIFICANT_DIGITS = 10
"""Prices per million tokens are rounded to this many significant digits (removes binary noise
such as 9.499999999999999e-07 written by the source; far below any real price precision)."""

MAX_ISSUES_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Source:
    """One input file: its kind (`litellm`, `openrouter`, `overlay`), its base name, the SHA-256 of
    its bytes, for an overlay its `name` (default: the file's stem) and the date its values were
    checked (`as_of`, when the overlay states one)."""

    kind: str
    file: str
    sha256: str
    label: str = ""
    as_of: str = ""

    @classmethod
    def of_bytes(cls, kind: str, file: str, data: bytes, label: str = "") -> Source:
        """The source of a file with these bytes."""
        return cls(kind, file, hashlib.sha256(data).hexdigest(), label)

    @property
    def tag(self) -> str:
        """Short stable label used in provenance: `litellm:<sha256 prefix>`, `overlay:<name>`."""
        if self.kind == "overlay":
            return f"overlay:{self.label or self.file.rsplit('.', 1)[0]}"
        return f"{self.kind}:{self.sha256[:12]}"

    def to_json(self) -> dict[str, str]:
        """How the catalog metadata records the source (`as_of` only when stated)."""
        out = {"kind": self.kind, "file": self.file, "sha256": self.sha256}
        if self.as_of:
            out["as_of"] = self.as_of
        return out


class CatalogImportError(InputError):
    """A source file cannot be imported. `source` names the file; every issue carries a JSON
    pointer into that file."""

    def __init__(self, source: str, issues: Sequence[Issue]) -> None:
        super().__init__(issues)
        self.source = source
        shown = [f"{source}: {issue}" for issue in self.issues[:MAX_ISSUES_SHOWN]]
        if len(self.issues) > MAX_ISSUES_SHOWN:
            shown.append(f"{source}: … and {len(self.issues) - MAX_ISSUES_SHOWN} more problems")
        self.args = ("\n".join(shown),)

    def __str__(self) -> str:
        return str(self.args[0])


class Issues:
    """Collects the problems found in one source file; `raise_if_any` raises them all at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[Issue] = []

    def add(self, pointer: str, found: object, expected: str, message: str | None = None) -> None:
        """Record that `found` at `pointer` is not `expected`."""
        found_text = describe(found)
        self.items.append(
            Issue(
                pointer, found_text, expected, message or f"expected {expected}, found {found_text}"
            )
        )

    def raise_if_any(self) -> None:
        if self.items:
            raise CatalogImportError(self.source, self.items)


@dataclass
class ImportSummary:
    """What an import did: counts by provider and region, skipped source entries by reason,
    duplicates merged, warnings (never silent)."""

    source: str
    imported: int = 0
    by_provider: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    merged_identical: int = 0
    warnings: list[str] = field(default_factory=list)
    version: str | None = None

    def skip(self, reason: str) -> None:
        """Count one source entry skipped for `reason`."""
        self.skipped[reason] += 1

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON (counts sorted by key)."""
        return {
            "source": self.source,
            "imported": self.imported,
            "version": self.version,
            "by_provider": dict(sorted(self.by_provider.items())),
            "by_region": dict(sorted(self.by_region.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "skipped_total": sum(self.skipped.values()),
            "merged_identical_duplicates": self.merged_identical,
            "warnings": list(self.warnings),
        }

    def render(self, top: int = 12) -> str:
        """A readable multi-line report."""
        lines = [f"imported {self.imported} entries from {self.source}"]
        if self.version:
            lines.append(f"catalog version {self.version}")
        lines.append(_counts("by provider", self.by_provider, top))
        lines.append(_counts("by region", self.by_region, top))
        total = sum(self.skipped.values())
        lines.append(f"skipped {total} source entries" + (":" if total else ""))
        lines.extend(f"  {n:6d}  {reason}" for reason, n in _ordered(self.skipped))
        if self.merged_identical:
            lines.append(
                f"merged {self.merged_identical} identical duplicates (same id, same values)"
            )
        lines.append(f"{len(self.warnings)} warnings" + (":" if self.warnings else ""))
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _counts(label: str, counts: Mapping[str, int], top: int) -> str:
    items = _ordered(counts)
    shown = ", ".join(f"{k} {n}" for k, n in items[:top])
    more = f", … {len(items) - top} more" if len(items) > top else ""
    return f"{label} ({len(items)}): {shown}{more}"


def per_million(value: Decimal) -> float:
    """USD per token → USD per million tokens, rounded to `PRICE_SIGNIFICANT_DIGITS` significant
    digits. Decimal arithmetic: the shift itself adds no binary noise."""
    if value == 0:
        return 0.0
    return float(format(value.scaleb(6), f".{PRICE_SIGNIFICANT_DIGITS}g"))


def price_decimal(value: object) -> Decimal | None:
    """A per-token price as a Decimal: a JSON number (not bool) or a numeric string; None when it
    is neither, NaN or infinite. Floats go through their shortest repr, which is the literal the
    source file wrote."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def describe(value: object) -> str:
    """A short JSON-ish rendering of a found value for messages."""
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 60 else f'"{value[:57]}..."'
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return "null" if value is None else json_scalar(value)


def json_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def pointer(*tokens: str | int) -> str:
    """An RFC 6901 JSON pointer from unescaped reference tokens (`~` → `~0`, `/` → `~1`)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def is_whole(value: object) -> TypeGuard[int | float]:
    """A JSON number that is a non-negative whole number (a token count); not bool, NaN or inf."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0 and value == int(value)


def entry_id(provider: str, model: str, locator: str) -> str:
    """`provider/model@locator`: the locator is the location when the source names one, else the
    region. Parse from the right: model names may contain `/` and `@`."""
    return f"{provider}/{model}@{locator}"


@dataclass
class Draft:
    """One mapped entry before assembly: its attributes and the source key it came from."""

    key: str
    attributes: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.attributes["id"])


def resolve_duplicates(drafts: Iterable[Draft], summary: ImportSummary) -> list[Draft]:
    """One draft per id. Identical duplicates (apart from `upstream_model`) merge (counted);
    differing ones keep the draft whose source key sorts first (code-point order, so the result
    does not depend on the file's key order) and add a warning naming what differed."""
    by_id: dict[str, list[Draft]] = {}
    for draft in drafts:
        by_id.setdefault(draft.id, []).append(draft)
    kept: list[Draft] = []
    for ident in sorted(by_id):
        group = sorted(by_id[ident], key=lambda d: d.key)
        winner = group[0]
        for other in group[1:]:
            differing = _differing(winner.attributes, other.attributes)
            if not differing:
                summary.merged_identical += 1
                continue
            detail = ", ".join(
                _difference(a, winner.attributes.get(a), other.attributes.get(a)) for a in differing
            )
            summary.warnings.append(
                f"duplicate id {ident}: kept source key {winner.key!r}, "
                f"dropped {other.key!r} ({detail})"
            )
        kept.append(winner)
    return kept


def _difference(attr: str, kept: object, dropped: object) -> str:
    if isinstance(kept, list) and isinstance(dropped, list):
        only_kept = sorted(set(kept) - set(dropped))
        only_dropped = sorted(set(dropped) - set(kept))
        return f"{attr}: only kept {only_kept}, only dropped {only_dropped}"
    return f"{attr}: {describe(kept)} vs {describe(dropped)}"


def _differing(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    keys = (set(a) | set(b)) - {"upstream_model"}
    return sorted(k for k in keys if a.get(k) != b.get(k))


@dataclass
class ImportResult:
    """A validated catalog, the summary of how it was made."""

    catalog: Catalog
    summary: ImportSummary


def assemble(
    name: str,
    drafts: Sequence[Draft],
    base: Source,
    overlays: Sequence[Source],
    overrides: Mapping[str, Mapping[str, str]],
    schema: Mapping[str, str],
    summary: ImportSummary,
) -> ImportResult:
    """Build the catalog document and validate it with `Catalog.from_json`.

    Provenance is compact: every attribute of every entry comes from `base` unless
    `metadata.provenance.overrides[<id>][<attr>]` names the overlay rule that set it. There are no
    timestamps, so the same inputs give the same catalog version.
    """
    summary.imported = len(drafts)
    summary.by_provider = Counter(str(d.attributes["provider"]) for d in drafts)
    summary.by_region = Counter(str(d.attributes["region"]) for d in drafts)
    document: dict[str, Any] = {
        "name": name,
        "entries": [d.attributes for d in drafts],
        "metadata": {
            "importer": IMPORTER_FORMAT,
            "sources": {s.tag: s.to_json() for s in (base, *overlays)},
            "provenance": {
                "default": base.tag,
                "overrides": {
                    i: dict(sorted(v.items())) for i, v in sorted(overrides.items()) if v
                },
            },
        },
    }
    if schema:
        inferred = _infer_schema(drafts)
        document["schema"] = {**inferred, **schema}
    catalog = Catalog.from_json(document)
    summary.version = catalog.version
    return ImportResult(catalog, summary)


def _infer_schema(drafts: Sequence[Draft]) -> dict[str, str]:
    schema: dict[str, str] = {}
    for draft in drafts:
        for attr, value in draft.attributes.items():
            if attr in schema:
                continue
            if isinstance(value, bool):
                schema[attr] = "boolean"
            elif isinstance(value, int | float):
                schema[attr] = "number"
            elif isinstance(value, list):
                schema[attr] = "string_list"
            else:
                schema[attr] = "string"
    return schema
