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

_KEEP = 64
"""(catalog, rank keys, tokens) tables and (catalog, attribute, tokens) string columns kept: a
table is entries × keys floats, a string column one string per entry (a few hundred kB)."""

_PRICE_SOURCE = "price_source"


@dataclass(frozen=True, slots=True)
class RankTable:
    """Per catalog entry, its value for each rank key (NaN: missing, ranked last), and every
    entry index in rank order."""

    values: npt.NDArray[np.float64]
    order: npt.NDArray[np.int64]


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
        self._tables = _Lru(keep)
        self._parts = _Lru(keep)

    def table(self, catalog: Catalog, rank: Sequence[RankKey], tokens: Tokens | None) -> RankTable:
        """The rank table of `catalog` under `rank` for `tokens` (cost needs them: a rank on
        `cost_per_run` without tokens has every cost missing)."""
        key = (catalog.version, tuple(rank), tokens)
        found: RankTable | None = self._tables.get(key)
        if found is not None:
            return found
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
        # The evaluator's sort: per key, present before missing, then the value (negated for
        # `desc`); ties by entry index. np.lexsort sorts by its last key first.
        keys: list[npt.NDArray[Any]] = [np.arange(cols.size)]
        for j in reversed(range(len(rank))):
            missing = np.isnan(values[:, j])
            value = np.where(missing, 0.0, values[:, j])
            keys += [value if rank[j].direction == "asc" else -value, missing]
        order = np.lexsort(keys)
        values.setflags(write=False)
        order.setflags(write=False)
        return self._tables.put(key, RankTable(values, order))  # type: ignore[no-any-return]

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
        parts = [pc.take(self._part(catalog, attr, tokens), entries) for attr in attrs]
        if tokens is not None and COST_PER_RUN in attrs and _PRICE_SOURCE not in attrs:
            unpriced = pc.is_null(pc.take(self._cost(catalog, tokens), entries))
            source = pc.take(self._part(catalog, _PRICE_SOURCE, None), entries)
            joined = pc.binary_join_element_wise(*parts, ", ")
            with_source = pc.binary_join_element_wise(joined, source, ", ")
            return pc.if_else(unpriced, with_source, joined)
        if len(parts) == 1:
            return parts[0]
        return pc.binary_join_element_wise(*parts, ", ")

    def _cost(self, catalog: Catalog, tokens: Tokens) -> pa.Array:
        """The `cost_per_run` of every entry (null: unknown price)."""
        key = ("cost", catalog.version, tokens)
        found: pa.Array | None = self._parts.get(key)
        if found is None:
            cost = columns_of(catalog).cost_per_run(
                tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached
            )
            found = self._parts.put(key, pa.array(cost, mask=np.isnan(cost)))
        return found

    def _part(self, catalog: Catalog, attr: str, tokens: Tokens | None) -> pa.Array:
        """`attr = value` (or `attr missing`) of every entry, as `Failure.seen` shows it."""
        cost = attr == COST_PER_RUN
        key = (catalog.version, attr, tokens if cost else None)
        found: pa.Array | None = self._parts.get(key)
        if found is not None:
            return found
        values: list[object]
        if cost:
            values = [None] * len(catalog.entries)
            if tokens is not None:
                values = self._cost(catalog, tokens).to_pylist()
        else:
            values = [entry.attributes.get(attr) for entry in catalog.entries]
        shown = [
            f"{attr} missing" if value is None else f"{attr} = {show_value(value)}"
            for value in values
        ]
        return self._parts.put(key, pa.array(shown, pa.string()))
