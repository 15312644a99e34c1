"""A column index over one catalog version, so that one atom is evaluated for every entry at once.

Built once per catalog (cached on the catalog object) and read-only afterwards:
- string attributes: integer codes per entry (a code past the vocabulary for "missing");
- number attributes: float64 values (NaN where missing) and a presence mask;
- boolean attributes: a true mask and a presence mask;
- string-list attributes: a presence mask and, per member value, a membership mask.
Every value is exactly representable: catalog integers are within ±(2**53 - 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from router.core._catalog import Catalog
from router.core._pricing import PriceTier, run_cost, tier_for

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CatalogEntryPrices = tuple[Mapping[str, object], tuple[PriceTier, ...]]

_COST_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class StringColumn:
    """Codes per entry; `len(vocabulary)` marks a missing value."""

    codes: IntArray
    vocabulary: dict[str, int]
    present: BoolArray


@dataclass(frozen=True, slots=True)
class NumberColumn:
    """Values per entry (NaN where missing)."""

    values: FloatArray
    present: BoolArray


@dataclass(frozen=True, slots=True)
class BooleanColumn:
    """True where the attribute is true; `present` where it exists."""

    true: BoolArray
    present: BoolArray


@dataclass(frozen=True, slots=True)
class ListColumn:
    """Membership mask per member value; `present` where the attribute exists."""

    members: dict[str, BoolArray]
    present: BoolArray


class Columns:
    """The column index of one catalog (see the module docstring)."""

    def __init__(self, catalog: Catalog) -> None:
        n = len(catalog.entries)
        self.size = n
        self.strings: dict[str, StringColumn] = {}
        self.numbers: dict[str, NumberColumn] = {}
        self.booleans: dict[str, BooleanColumn] = {}
        self.lists: dict[str, ListColumn] = {}
        self.none: BoolArray = np.zeros(n, dtype=np.bool_)
        self.every: BoolArray = np.ones(n, dtype=np.bool_)
        self.none.setflags(write=False)
        self.every.setflags(write=False)
        self._costs: dict[tuple[int, int, int], FloatArray] = {}
        for attr, kind in catalog.schema.items():
            raw = [entry.attributes.get(attr) for entry in catalog.entries]
            present = np.fromiter((v is not None for v in raw), dtype=np.bool_, count=n)
            if kind == "string":
                vocabulary: dict[str, int] = {}
                codes = np.empty(n, dtype=np.int64)
                for i, value in enumerate(raw):
                    codes[i] = (
                        -1 if value is None else vocabulary.setdefault(str(value), len(vocabulary))
                    )
                codes[codes < 0] = len(vocabulary)
                self.strings[attr] = StringColumn(_frozen(codes), vocabulary, _frozen(present))
            elif kind == "number":
                values = np.fromiter(
                    (np.nan if v is None else float(v) for v in raw),  # type: ignore[arg-type]
                    dtype=np.float64,
                    count=n,
                )
                self.numbers[attr] = NumberColumn(_frozen(values), _frozen(present))
            elif kind == "boolean":
                true = np.fromiter((v is True for v in raw), dtype=np.bool_, count=n)
                self.booleans[attr] = BooleanColumn(_frozen(true), _frozen(present))
            else:
                member_rows: dict[str, list[int]] = {}
                for i, value in enumerate(raw):
                    for member in value or ():  # type: ignore[union-attr]
                        member_rows.setdefault(member, []).append(i)
                members: dict[str, BoolArray] = {}
                for member, rows in member_rows.items():
                    mask = np.zeros(n, dtype=np.bool_)
                    mask[rows] = True
                    members[member] = _frozen(mask)
                self.lists[attr] = ListColumn(members, _frozen(present))
        self.price_in = self.numbers["price_in"].values
        self.price_out = self.numbers["price_out"].values
        cached = self.numbers.get("price_cached_in")
        # Cached input tokens cost price_cached_in where the entry has one, else price_in.
        self.price_cached_in = (
            self.price_in
            if cached is None
            else _frozen(np.where(cached.present, cached.values, self.price_in))
        )
        self.tiered: tuple[tuple[int, CatalogEntryPrices], ...] = tuple(
            (i, (entry.attributes, entry.tiers))
            for i, entry in enumerate(catalog.entries)
            if entry.tiers
        )
        self._lowest_tier = min(
            (tiers[0].above_tokens_in for _, (_, tiers) in self.tiered), default=None
        )

    def cost_per_run(self, tokens_in: int, tokens_out: int, tokens_cached: int = 0) -> FloatArray:
        """USD per run for every entry (NaN where the price is unknown):
        (uncached in × price_in + cached × cached price + out × price_out) / 1e6, with the prices
        of the tier the input tokens fall in (`router.core._pricing.run_cost`, entry by entry)."""
        key = (tokens_in, tokens_out, tokens_cached)
        cost = self._costs.get(key)
        if cost is None:
            cached = min(tokens_cached, tokens_in)
            if cached == 0:
                values = (tokens_in * self.price_in + tokens_out * self.price_out) / 1e6
            else:
                values = (
                    (tokens_in - cached) * self.price_in
                    + cached * self.price_cached_in
                    + tokens_out * self.price_out
                ) / 1e6
            if self._lowest_tier is not None and tokens_in > self._lowest_tier:
                for i, (attributes, tiers) in self.tiered:
                    if tier_for(tiers, tokens_in) is not None:
                        tiered = run_cost(attributes, tiers, tokens_in, tokens_out, tokens_cached)
                        values[i] = np.nan if tiered is None else tiered
            cost = _frozen(values)
            if len(self._costs) >= _COST_CACHE_SIZE:
                self._costs.clear()  # simple and safe if threads race; refilled on demand
            self._costs[key] = cost
        return cost


_A = TypeVar("_A", bound="np.ndarray[Any, Any]")


def _frozen(array: _A) -> _A:
    array.setflags(write=False)
    return array


def columns_of(catalog: Catalog) -> Columns:
    """The catalog's column index, built on first use and kept with the catalog."""
    cached = catalog._columns
    if isinstance(cached, Columns):
        return cached
    built = Columns(catalog)
    object.__setattr__(catalog, "_columns", built)
    return built
