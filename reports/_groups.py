"""Catalog-wide columns the group rows are built from, computed once and reused by every group.

A decision group's rows hold lists as long as the catalog: the ranked entries with their rank-key
values, and per rule the removed entries with the values the rule saw. Built entry by entry, that
is one `cost_of` per entry and rank key, a sort per group, and one formatted string per removed
entry: thousands of Python calls per group. Both depend on far fewer things than the groups do:

- the rank-key values of every entry and the rank order of the whole catalog depend on (catalog,
  rank keys, token counts) only. The evaluator's sort is a total order (keys, then entry index),
  so a group's ranking is the catalog's order restricted to the entries that passed: a mask and
  a take (`rebuild_trace` still checks it against the recorded order digest);
- what a rule saw of an entry depends on (catalog, the attributes the rule reads, token counts
  when it reads `cost_per_run`): one string per entry and attribute, joined per rule.

Values come from the evaluator's own column index (`columns_of`: the numbers and the
`cost_per_run` it decided with) and strings from `show_value`, so they equal `Trace.sort_keys`
and `Failure.seen` (tests compare them entry by entry)."""

from __future__ import annotations

import math
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

__all__ = ["CatalogRanks", "RankTable"]

_KEEP = 2048
"""(catalog, rank keys, tokens) rank orders kept (one int32 per entry: 10 kB at 2,500 entries).
The generated ledgers meet ~2,200, each again in ~3 groups, in no particular order: a smaller
cache sorted again for most groups. The values are cheap to gather again (`columns_of` keeps
the costs of recent token counts)."""

_ATTRIBUTES = 256
"""(catalog, attribute) string columns kept (a few hundred kB at 2,500 entries): catalogs
versions × attributes the rules read."""

_PRICE_SOURCE = "price_source"


@dataclass(frozen=True, slots=True)
class RankTable:
    """Per catalog entry, its value for each rank key (NaN: missing, ranked last), and every
    entry index in rank order."""

    values: npt.NDArray[np.float64]
    order: npt.NDArray[np.int32]


class _Lru:
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
        self._orders = _Lru(keep)
        self._parts = _Lru(_ATTRIBUTES)
        self._last: tuple[Hashable, RankTable] | None = None

    def table(self, catalog: Catalog, rank: Sequence[RankKey], tokens: Tokens | None) -> RankTable:
        """The rank table of `catalog` under `rank` for `tokens` (cost needs them: a rank on
        `cost_per_run` without tokens has every cost missing)."""
        key = (catalog.version, tuple(rank), tokens)
        # A group asks twice in a row: for its ranking (`rank`), then for its key values.
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        cols = columns_of(catalog)
        values = np.full((cols.size, len(rank)), np.nan)
        for j, rank_key in enumerate(rank):
            if rank_key.attr == COST_PER_RUN:
                if tokens is not None:
                    cost = cols.cost_per_run(
                        tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached
                    )
                    values[:, j] = cost
            else:
                number = cols.numbers.get(rank_key.attr)
                if number is not None:
                    values[:, j] = number.values
        values.setflags(write=False)
        order: npt.NDArray[np.int32] | None = self._orders.get(key)
        if order is None:
            order = self._orders.put(key, _order(values, rank))
        table = RankTable(values, order)
        self._last = (key, table)
        return table

    def rank(
        self, policy: Policy, catalog: Catalog, tokens: Tokens | None, passing: Sequence[int]
    ) -> tuple[int, ...]:
        """`rank_order` (the `rebuild_trace` hook) from the catalog's cached rank order."""
        if tokens is None and any(k.attr == COST_PER_RUN for k in policy.rank):
            return rank_order(policy, catalog, tokens, passing)  # names the missing tokens
        order = self.table(catalog, policy.rank, tokens).order
        passed = np.zeros(len(catalog.entries), dtype=np.bool_)
        passed[list(passing)] = True
        return tuple(order[passed[order]].tolist())

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
    they depend on the token counts, which differ from group to group."""
    if cost is None:
        return pa.array([_shown(COST_PER_RUN, None)] * count, pa.string())
    shown = [_shown(COST_PER_RUN, None if math.isnan(v) else v) for v in cost.tolist()]
    return pa.array(shown, pa.string())


def _order(values: npt.NDArray[np.float64], rank: Sequence[RankKey]) -> npt.NDArray[np.int32]:
    """Every entry index in rank order: the evaluator's sort (per key, present before missing,
    then the value, negated for `desc`; ties by entry index). Values are finite, so a missing one
    sorts last as +inf; np.lexsort sorts stably by its last key first, from index order."""
    signs = np.array([1.0 if k.direction == "asc" else -1.0 for k in rank])
    signed = values * signs
    keys = np.where(np.isnan(signed), np.inf, signed)
    order = np.lexsort(keys.T[::-1]) if len(rank) else np.arange(len(values))
    ranked = order.astype(np.int32)
    ranked.setflags(write=False)
    return ranked
