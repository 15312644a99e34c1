"""The catalog model: immutable routable entries, an attribute schema, a content-addressed version.

A catalog document is JSON::

    {"name": "illustrative",
     "entries": [{"id": "google/gemini-3.5-flash@eu", "model": "gemini-3.5-flash",
                  "provider": "google", "region": "eu", "price_in": 0.085, "price_out": 0.34,
                  ...other flat attributes}],
     "schema": {"no_log": "boolean", ...},   (optional; inferred from the entries when absent)
     "metadata": {...}}                       (optional; other top-level keys are folded in here)

Prices are USD per million tokens. Attribute values are flat: a string, a finite number, a boolean
or a list of strings. An entry may also carry `price_tiers` (prices above input-token thresholds,
`router.core._pricing`), a key beside its attributes; `price_source: "unknown"` entries have no
prices. The version is the SHA-256 of the RFC 8785 form of `to_json()`, so the same content always
has the same version however it was written (key order, entry order, 1.0 vs 1); an entry without
tiers has the form it had before tiers existed, so old catalogs keep their versions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast

from router.core._canonical import (
    MAX_SAFE_INTEGER,
    canonical_number,
    describe,
    number_problem,
    sha256_hex,
)
from router.core._errors import CatalogError, EntryNotFoundError, Issue, join_pointer
from router.core._pricing import (
    FREE_PRICE,
    PRICE_SOURCES,
    PRICE_TIERS,
    UNKNOWN_PRICE,
    PriceTier,
    parse_tiers,
)

AttrType = Literal["string", "number", "boolean", "string_list"]
AttrValue = str | int | float | bool | tuple[str, ...]

ATTRIBUTE_TYPES: tuple[AttrType, ...] = ("string", "number", "boolean", "string_list")

REQUIRED_ATTRIBUTES: tuple[str, ...] = (
    "id",
    "model",
    "provider",
    "region",
    "price_in",
    "price_out",
)
"""Every entry has these, except that an entry whose `price_source` is `unknown` has no prices."""

PRICE_ATTRIBUTES: tuple[str, ...] = ("price_in", "price_out")

KNOWN_ATTRIBUTE_TYPES: Mapping[str, AttrType] = MappingProxyType(
    {
        "id": "string",
        "model": "string",
        "provider": "string",
        "region": "string",
        "status": "string",
        "price_in": "number",
        "price_out": "number",
        "price_cached_in": "number",
        "price_source": "string",
        "variant": "string",
        "hosting": "string",
        "vendor": "string",
        "alias": "string",
        "deprecation_date": "string",
        "expiration_date": "string",
        "context_window": "number",
        "max_output_tokens": "number",
        "no_log": "boolean",
        "capabilities": "string_list",
    }
)
"""Attributes whose type is fixed whatever a catalog declares or contains."""

_KNOWN: dict[str, AttrType] = dict(KNOWN_ATTRIBUTE_TYPES)

COST_PER_RUN = "cost_per_run"
"""Computed per decision from the prices and token counts; no entry may carry it."""

MAX_NAME_LENGTH = 256
"""Longest entry id or attribute name."""

_CATALOG_KEYS = ("name", "entries", "schema", "metadata")


@dataclass(frozen=True, slots=True, eq=False)
class CatalogEntry:
    """One routable endpoint: a model at a provider in a region. `attributes` includes `id`;
    `tiers` are the entry's price tiers (`price_tiers` in JSON, see `router.core._pricing`)."""

    id: str
    attributes: Mapping[str, AttrValue]
    tiers: tuple[PriceTier, ...] = ()

    def get(self, name: str) -> AttrValue | None:
        """The attribute's value, or None when the entry does not have it."""
        return self.attributes.get(name)

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (lists for string lists; `price_tiers` only when it has
        tiers, so an entry without tiers has the form it always had)."""
        out: dict[str, Any] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.attributes.items()
        }
        if self.tiers:
            out[PRICE_TIERS] = [tier.to_json() for tier in self.tiers]
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CatalogEntry)
            and dict(self.attributes) == dict(other.attributes)
            and self.tiers == other.tiers
        )

    def __hash__(self) -> int:
        return hash(self.id)


_SIMPLE_TYPES: dict[type, AttrType] = {
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
}

# Attributes with checks beyond their type; they always take the full validation path. (Prices
# are checked once the entry's attributes are read: a price is a plain number otherwise.)
_CHECKED_ATTRIBUTES = frozenset({"id"})


_PRICES = frozenset({"price_in", "price_out", "price_cached_in"})


def _prices_agree(
    attrs: Mapping[str, AttrValue],
    tiers: tuple[PriceTier, ...],
    base: str,
    bad: Callable[[str, object, str, str | None], None],
) -> bool:
    """`price_source` is a known value and agrees with the prices: `unknown` has no price and no
    tier, `free` costs 0."""
    source = attrs.get("price_source")
    if source is None or source == "priced":
        return True
    if source not in PRICE_SOURCES:
        expected = "one of: " + ", ".join(PRICE_SOURCES)
        bad(
            join_pointer(base, "price_source"),
            source,
            expected,
            f"expected {expected}, found {describe(source)}",
        )
        return False
    if source == UNKNOWN_PRICE:
        priced = sorted(a for a in _PRICES if a in attrs) + ([PRICE_TIERS] if tiers else [])
        if priced:
            bad(
                join_pointer(base, priced[0]),
                attrs.get(priced[0]),
                "no price on an entry whose price_source is unknown",
                f"price_source is unknown but the entry has {priced[0]}",
            )
            return False
    elif source == FREE_PRICE:
        for attr in PRICE_ATTRIBUTES:
            if attrs.get(attr) != 0:
                bad(
                    join_pointer(base, attr),
                    attrs.get(attr),
                    "0 on an entry whose price_source is free",
                    f"price_source is free but {attr} is {describe(attrs.get(attr))}",
                )
                return False
    return True


def _plain_number(value: object) -> bool:
    """A number that needs no further check: a finite float or an integer JCS can carry."""
    if type(value) is float:
        return math.isfinite(value)
    return abs(cast(int, value)) <= MAX_SAFE_INTEGER


class Catalog:
    """An immutable catalog version. Build it with `Catalog.from_json`; never mutate it.

    `entries` is sorted by id (code-point order), `schema` maps every attribute name to its type,
    `version` is the content address (SHA-256 hex of the canonical form).
    """

    __slots__ = ("_by_id", "_columns", "entries", "metadata", "name", "schema", "version")

    _by_id: dict[str, int]
    _columns: object
    name: str
    entries: tuple[CatalogEntry, ...]
    schema: Mapping[str, AttrType]
    metadata: Mapping[str, Any]
    version: str

    def __init__(self) -> None:
        raise TypeError("build a Catalog with Catalog.from_json(document)")

    @classmethod
    def from_json(cls, obj: object) -> Catalog:
        """Validate a catalog document and build the catalog; raise `CatalogError` listing every
        problem with its JSON pointer."""
        issues: list[Issue] = []

        def bad(pointer: str, found: object, expected: str, message: str | None = None) -> None:
            found_text = describe(found)
            issues.append(
                Issue(
                    pointer,
                    found_text,
                    expected,
                    message or f"expected {expected}, found {found_text}",
                )
            )

        if not isinstance(obj, dict):
            bad("", obj, "a catalog object with keys name and entries")
            raise CatalogError(issues)
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            bad("/name", name, "a non-empty string")
        raw_entries = obj.get("entries")
        if not isinstance(raw_entries, list):
            bad("/entries", raw_entries, "a list of entry objects")
            raw_entries = []

        declared: dict[str, AttrType] = {}
        raw_schema = obj.get("schema")
        if raw_schema is not None:
            if not isinstance(raw_schema, dict):
                bad("/schema", raw_schema, "an object mapping attribute names to types")
            else:
                for attr, kind in raw_schema.items():
                    pointer = join_pointer("/schema", attr)
                    if kind not in ATTRIBUTE_TYPES:
                        bad(pointer, kind, "one of: " + ", ".join(ATTRIBUTE_TYPES))
                    elif attr == COST_PER_RUN:
                        bad(
                            pointer,
                            attr,
                            "not cost_per_run",
                            "cost_per_run is computed, not declared",
                        )
                    elif attr in KNOWN_ATTRIBUTE_TYPES and KNOWN_ATTRIBUTE_TYPES[attr] != kind:
                        bad(
                            pointer,
                            kind,
                            KNOWN_ATTRIBUTE_TYPES[attr],
                            f"{attr} is always {KNOWN_ATTRIBUTE_TYPES[attr]}, "
                            f"found {describe(kind)}",
                        )
                    else:
                        declared[attr] = cast(AttrType, kind)

        metadata: dict[str, Any] = {}
        raw_metadata = obj.get("metadata")
        if raw_metadata is not None:
            if isinstance(raw_metadata, dict):
                metadata.update(raw_metadata)
            else:
                bad("/metadata", raw_metadata, "an object")
        for key, value in obj.items():
            if key in _CATALOG_KEYS:
                continue
            if key in metadata:
                bad(
                    join_pointer("", key),
                    value,
                    "a key not also in metadata",
                    f"top-level {key!r} is also a metadata key",
                )
            else:
                metadata[key] = value
        try:
            sha256_hex(metadata)
        except Exception as exc:  # the canonical encoder rejects NaN, huge ints, non-JSON values
            bad("/metadata", metadata, "JSON values only", f"metadata is not canonical JSON: {exc}")

        inferred_kind: dict[str, AttrType] = {}
        inferred: dict[str, tuple[AttrType, str]] = {}  # attr -> (type, pointer where first seen)
        entries: list[CatalogEntry] = []
        seen_ids: dict[str, int] = {}
        for i, raw in enumerate(raw_entries):
            base = f"/entries/{i}"
            if not isinstance(raw, dict):
                bad(base, raw, "an entry object")
                continue
            attrs: dict[str, AttrValue] = {}
            ok = True
            known = _KNOWN
            tiers: tuple[PriceTier, ...] = ()
            if PRICE_TIERS in raw:
                raw = dict(raw)
                parsed = parse_tiers(raw.pop(PRICE_TIERS), join_pointer(base, PRICE_TIERS), bad)
                if parsed is None:
                    ok = False
                else:
                    tiers = parsed
            unpriced = raw.get("price_source") == UNKNOWN_PRICE
            for attr in REQUIRED_ATTRIBUTES:
                if unpriced and attr in PRICE_ATTRIBUTES:
                    continue
                if attr not in raw:
                    bad(
                        join_pointer(base, attr),
                        None,
                        KNOWN_ATTRIBUTE_TYPES[attr],
                        f"missing required attribute {attr!r}",
                    )
                    ok = False
            for attr, value in raw.items():
                kind = _SIMPLE_TYPES.get(type(value))
                if kind is None and type(value) is list and all(type(v) is str for v in value):
                    kind = "string_list"
                expected = known.get(attr) or declared.get(attr) or inferred_kind.get(attr)
                if (
                    kind is not None
                    and kind == expected
                    and (kind != "number" or _plain_number(value))
                    and attr not in _CHECKED_ATTRIBUTES
                ):  # the common case: a declared or known attribute with a plain value
                    if type(value) is list:
                        attrs[attr] = tuple(value)
                    elif type(value) is float and value.is_integer():
                        attrs[attr] = canonical_number(value)
                    else:
                        attrs[attr] = value
                    continue
                pointer = join_pointer(base, attr)
                if not attr or len(attr) > MAX_NAME_LENGTH:
                    bad(pointer, attr, f"an attribute name of 1 to {MAX_NAME_LENGTH} characters")
                    ok = False
                    continue
                if attr == COST_PER_RUN:
                    bad(
                        pointer,
                        value,
                        "no cost_per_run attribute",
                        "cost_per_run is computed from the prices, an entry cannot carry it",
                    )
                    ok = False
                    continue
                if kind is None:
                    message = (
                        "null is not an attribute value (omit the attribute instead)"
                        if value is None
                        else "expected a string, number, boolean or list of strings, "
                        f"found {describe(value)}"
                    )
                    bad(pointer, value, "a string, number, boolean or list of strings", message)
                    ok = False
                    continue
                if kind == "number":
                    problem = number_problem(cast(int | float, value))
                    if problem is not None:
                        bad(pointer, value, problem)
                        ok = False
                        continue
                if raw_schema is not None and attr not in declared and attr not in known:
                    bad(
                        pointer,
                        value,
                        "an attribute declared in /schema",
                        f"attribute {attr!r} is not declared in /schema",
                    )
                    ok = False
                    continue
                if expected is None:
                    inferred[attr] = (kind, pointer)
                    inferred_kind[attr] = kind
                elif expected != kind:
                    first = inferred.get(attr)
                    where = "" if first is None else f" at {first[1]}"
                    suffix = "" if first is None else " here"
                    bad(
                        pointer,
                        value,
                        expected,
                        f"{attr} is {expected}{where}, found {describe(value)}{suffix}",
                    )
                    ok = False
                    continue
                if attr == "id" and (not value or len(cast(str, value)) > MAX_NAME_LENGTH):
                    bad(pointer, value, f"an entry id of 1 to {MAX_NAME_LENGTH} characters")
                    ok = False
                    continue
                if kind == "number":
                    attrs[attr] = canonical_number(cast(int | float, value))
                elif kind == "string_list":
                    attrs[attr] = tuple(cast(list[str], value))
                else:
                    attrs[attr] = cast(str | bool, value)
            for attr in _PRICES:
                price = attrs.get(attr)
                if price is not None and cast(float, price) < 0:
                    pointer = join_pointer(base, attr)
                    bad(pointer, price, "a non-negative price in USD per million tokens")
                    ok = False
            entry_id = attrs.get("id")
            if isinstance(entry_id, str):
                if entry_id in seen_ids:
                    bad(
                        join_pointer(base, "id"),
                        entry_id,
                        "a unique entry id",
                        f"duplicate entry id {describe(entry_id)} "
                        f"(also at /entries/{seen_ids[entry_id]})",
                    )
                    continue
                seen_ids[entry_id] = i
            if ok and "price_source" in attrs:
                ok = _prices_agree(attrs, tiers, base, bad)
            if not ok or not isinstance(entry_id, str):
                continue
            entries.append(
                CatalogEntry(entry_id, MappingProxyType(dict(sorted(attrs.items()))), tiers)
            )

        if issues:
            raise CatalogError(issues)

        schema: dict[str, AttrType] = {}
        for entry in entries:
            for attr in entry.attributes:
                if attr not in schema:
                    schema[attr] = (
                        KNOWN_ATTRIBUTE_TYPES.get(attr) or declared.get(attr) or inferred[attr][0]
                    )
        schema.update(declared)
        for attr in REQUIRED_ATTRIBUTES:
            schema[attr] = KNOWN_ATTRIBUTE_TYPES[attr]

        catalog = object.__new__(cls)
        object.__setattr__(catalog, "name", cast(str, name))
        object.__setattr__(catalog, "entries", tuple(sorted(entries, key=lambda e: e.id)))
        object.__setattr__(catalog, "schema", MappingProxyType(dict(sorted(schema.items()))))
        object.__setattr__(catalog, "metadata", MappingProxyType(metadata))
        object.__setattr__(catalog, "_by_id", {e.id: i for i, e in enumerate(catalog.entries)})
        object.__setattr__(catalog, "_columns", None)
        object.__setattr__(catalog, "version", sha256_hex(catalog.to_json()))
        return catalog

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Catalog is immutable")

    def to_json(self) -> dict[str, Any]:
        """The canonical document: entries sorted by id, the full schema, metadata (always)."""
        return {
            "name": self.name,
            "entries": [entry.to_json() for entry in self.entries],
            "schema": dict(self.schema),
            "metadata": dict(self.metadata),
        }

    def index_of(self, entry_id: str) -> int:
        """Position of the entry in `entries`; raise `EntryNotFoundError` when absent."""
        try:
            return self._by_id[entry_id]
        except KeyError:
            raise EntryNotFoundError(entry_id, self.version) from None

    def __getitem__(self, entry_id: str) -> CatalogEntry:
        return self.entries[self.index_of(entry_id)]

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._by_id

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Catalog) and other.version == self.version

    def __hash__(self) -> int:
        return hash(self.version)

    def __repr__(self) -> str:
        return f"<Catalog {self.name!r} {len(self.entries)} entries version={self.version[:12]}>"
