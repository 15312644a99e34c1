"""Catalog-wide columns the group rows are built from, computed once and reused by every group.

A decision group's rows hold lists as long as the catalog: the ranked entries with their rank-key
values, and per rule the removed entries with the values the rule saw. Built entry by entry, that
is one `cost_of` per entry and rank key, a sort per group, and one formatted string per removed
entry: thousands of Python calls per group. Both depend on far fewer things than the groups do:

- the rank-key values of every entry depend on (catalog, rank keys, token counts) only, and on
  the token counts only through `cost_per_run`. The evaluator's sort is a total order (keys,
  then entry index), so a group's ranking is its passing entries' rows of that table sorted by
  one `np.lexsort` (`rebuild_trace` still checks it against the recorded order digest);
- what a rule saw of an entry depends on (catalog, the attributes the rule reads, token counts
  when it reads `cost_per_run`): one string per entry and attribute, joined per rule.

Values come from the evaluator's own column index (`columns_of`: the numbers and the
`cost_per_run` it decided with) and strings from `show_value`, so they equal `Trace.sort_keys`
and `Failure.seen` (tests compare them entry by entry)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from router.core import COST_PER_RUN, Catalog, Policy, RankKey, Tokens, columns_of, show_value
from router.services.decisions import rank_order

__all__ = ["CatalogRanks", "Lru", "RankTable"]

_KEEP = 64
"""Rank tables kept whole for ranks without `cost_per_run` (~60 kB at 2,500 entries and 3
keys): catalog versions × such ranks. A rank with `cost_per_run` depends on the tokens of each
group, and its table is rebuilt (`columns_of` keeps the costs of recent token counts)."""

_ATTRIBUTES = 256
"""(catalog, attribute) string columns kept (a few hundred kB at 2,500 entries): catalogs
versions × attributes the rules read."""

_PRICE_SOURCE = "price_source"


@dataclass(frozen=True, slots=True)
class RankTable:
    """Per catalog entry, its value for each rank key (NaN: missing, ranked last)."""

    values: npt.NDArray[np.float64]


class Lru:
    """A small least-recently-used map (what a long export meets last is what it meets next)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: Hashable, value: Any) -> Any:
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return value


class CatalogRanks:
    """The cache of rank tables and observed-value strings (see the module docstring)."""

    def __init__(self, keep: int = _KEEP) -> None:
        self._parts = Lru(_ATTRIBUTES)
        self._unpriced = Lru(keep)
        self._last: tuple[Hashable, RankTable] | None = None

    def table(self, catalog: Catalog, rank: Sequence[RankKey], tokens: Tokens | None) -> RankTable:
        """The rank table of `catalog` under `rank` for `tokens` (cost needs them: a rank on
        `cost_per_run` without tokens has every cost missing)."""
        # Without a cost key the values do not depend on the tokens: one table serves every
        # token count (most groups differ from each other by their tokens only).
        priced = any(k.attr == COST_PER_RUN for k in rank)
        key = (catalog.version, tuple(rank), tokens if priced else None)
        # A group asks twice in a row: for its ranking (`rank`), then for its key values.
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        found: RankTable | None = None if priced else self._unpriced.get(key)
        if found is None:
            found = RankTable(_values(catalog, rank, tokens))
            if not priced:
                self._unpriced.put(key, found)
        self._last = (key, found)
        return found

    def rank(
        self, policy: Policy, catalog: Catalog, tokens: Tokens | None, passing: Sequence[int]
    ) -> tuple[int, ...]:
        """`rank_order` (the `rebuild_trace` hook), sorting the passing entries' rows of the
        catalog-wide table."""
        if tokens is None and any(k.attr == COST_PER_RUN for k in policy.rank):
            return rank_order(policy, catalog, tokens, passing)  # names the missing tokens
        values = self.table(catalog, policy.rank, tokens).values
        entries = np.sort(np.asarray(passing, dtype=np.intp))
        return tuple(entries[_order(values[entries], policy.rank)].tolist())

    def seen(
        self,
        catalog: Catalog,
        attrs: Sequence[str],
        tokens: Tokens | None,
        entries: npt.NDArray[np.int64],
    ) -> pa.Array:
        """What a rule reading `attrs` saw of each of `entries` (`Failure.seen`), e.g.
        `region = "us"`; a `cost_per_run` it could not price also shows the `price_source`."""
        cost = None
        if tokens is not None and COST_PER_RUN in attrs:
            every = columns_of(catalog).cost_per_run(
                tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached
            )
            cost = every[entries]
        parts = [
            _costs_shown(cost, len(entries))
            if attr == COST_PER_RUN
            else pc.take(self._part(catalog, attr), entries)
            for attr in attrs
        ]
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, ", ")
        if cost is None or _PRICE_SOURCE in attrs:
            return joined
        # A cost it could not price: the entry's price_source says why.
        source = pc.take(self._part(catalog, _PRICE_SOURCE), entries)
        with_source = pc.binary_join_element_wise(joined, source, ", ")
        return pc.if_else(pa.array(np.isnan(cost)), with_source, joined)

    def _part(self, catalog: Catalog, attr: str) -> pa.Array:
        """`attr = value` (or `attr missing`) of every entry, as `Failure.seen` shows it."""
        key = (catalog.version, attr)
        found: pa.Array | None = self._parts.get(key)
        if found is None:
            values = [entry.attributes.get(attr) for entry in catalog.entries]
            found = self._parts.put(key, pa.array([_shown(attr, v) for v in values], pa.string()))
        return found


def _shown(attr: str, value: object) -> str:
    return f"{attr} missing" if value is None else f"{attr} = {show_value(value)}"


def _costs_shown(cost: npt.NDArray[np.float64] | None, count: int) -> pa.Array:
    """`cost_per_run = …` per entry (missing: NaN, or no tokens). Only the entries asked for:
    they depend on the token counts, which differ from group to group. A float is shown with
    `show_value`'s format (".6g"), applied here directly: hundreds of thousands of values go
    through it, and the generic `show_value` dispatch cost several times the formatting."""
    missing = _shown(COST_PER_RUN, None)
    if cost is None:
        return pa.array([missing] * count, pa.string())
    shown = [missing if v != v else f"{COST_PER_RUN} = {v:.6g}" for v in cost.tolist()]
    return pa.array(shown, pa.string())


def _values(
    catalog: Catalog, rank: Sequence[RankKey], tokens: Tokens | None
) -> npt.NDArray[np.float64]:
    """Each entry's value for each rank key (NaN: missing), from the evaluator's column index."""
    cols = columns_of(catalog)
    values = np.full((cols.size, len(rank)), np.nan)
    for j, rank_key in enumerate(rank):
        if rank_key.attr == COST_PER_RUN:
            if tokens is not None:
                values[:, j] = cols.cost_per_run(
                    tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached
                )
        else:
            number = cols.numbers.get(rank_key.attr)
            if number is not None:
                values[:, j] = number.values
    values.setflags(write=False)
    return values


def _order(values: npt.NDArray[np.float64], rank: Sequence[RankKey]) -> npt.NDArray[np.intp]:
    """The rows of `values` (entries in index order) in rank order: the evaluator's sort (per
    key, present before missing, then the value, negated for `desc`; ties by entry index). Values
    are finite, so a missing one sorts last as +inf; np.lexsort sorts stably by its last key
    first, from index order. Sorting the passing entries of a group (a few hundred) costs less
    than sorting the catalog once for the groups that share it."""
    if not len(rank):
        return np.arange(len(values))
    signs = np.array([1.0 if k.direction == "asc" else -1.0 for k in rank])
    signed = values * signs
    keys = np.where(np.isnan(signed), np.inf, signed)
    return np.lexsort(keys.T[::-1])
