"""What one run costs at one entry: where the price comes from, price tiers, cached input.

An entry's prices are USD per million tokens: `price_in`, `price_out` and, when the source gives
one, `price_cached_in` (input tokens read from the provider's prompt cache). `price_source` says
what the prices are:

- `priced` (or no `price_source`, as in catalogs written before it existed): the source states
  the prices;
- `free`: the source states that the entry costs nothing (both prices are 0);
- `unknown`: the source gives no usable price; the entry has no `price_in`/`price_out`, so its
  `cost_per_run` is unknown: every cost rule is UNKNOWN on it (fail closed) and cost ranks it
  after every priced entry.

`price_tiers` (an entry key beside the attributes, not an attribute policies test) lists the
prices that replace the base prices when the request's input tokens exceed a threshold
(long-context surcharges, tiered prices). The tier of a run is the one with the largest
`above_tokens_in` below the run's input tokens; a tier leaves out what it does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from router.core._canonical import MAX_SAFE_INTEGER, canonical_number, number_problem

PRICE_SOURCES: tuple[str, ...] = ("priced", "free", "unknown")
"""Values of `price_source`; an entry without it is `priced`."""

UNKNOWN_PRICE = "unknown"
FREE_PRICE = "free"

PRICE_TIERS = "price_tiers"
"""The entry key holding the price tiers (not an attribute: policies test `cost_per_run`)."""

TIER_PRICES: tuple[str, ...] = ("price_in", "price_out", "price_cached_in")
"""The prices a tier may set; the others keep the base price."""

MAX_TIERS = 16
"""Most tiers one entry may have."""


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices (USD per million tokens) for runs with more than `above_tokens_in` input tokens;
    None keeps the base price."""

    above_tokens_in: int
    price_in: float | None = None
    price_out: float | None = None
    price_cached_in: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The tier as JSON, without the prices it leaves unchanged."""
        out: dict[str, Any] = {"above_tokens_in": self.above_tokens_in}
        for name in TIER_PRICES:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def label(self) -> str:
        """E.g. `above 200,000 input tokens`."""
        return f"above {self.above_tokens_in:,} input tokens"


BASE_TIER_LABEL = "base prices"

Complain = Callable[[str, object, str], None]
"""`(pointer, found, expected)`: how the catalog validator records a problem."""


def parse_tiers(raw: object, pointer: str, bad: Complain) -> tuple[PriceTier, ...] | None:
    """Validate a `price_tiers` value: a list of 1 to `MAX_TIERS` objects with a whole
    `above_tokens_in` (strictly increasing, > 0) and at least one non-negative price. None (after
    reporting through `bad`) when it is invalid."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TIERS:
        bad(pointer, raw, f"a list of 1 to {MAX_TIERS} price tier objects")
        return None
    tiers: list[PriceTier] = []
    ok = True
    previous = 0
    for i, item in enumerate(raw):
        base = f"{pointer}/{i}"
        if not isinstance(item, dict):
            bad(base, item, "a price tier object")
            ok = False
            continue
        unknown = sorted(set(item) - {"above_tokens_in", *TIER_PRICES})
        if unknown:
            bad(
                f"{base}/{unknown[0]}",
                unknown[0],
                "one of: above_tokens_in, " + ", ".join(TIER_PRICES),
            )
            ok = False
            continue
        above = item.get("above_tokens_in")
        if type(above) is not int or not previous < above <= MAX_SAFE_INTEGER:
            bad(
                f"{base}/above_tokens_in",
                above,
                f"a whole number of tokens above {previous:,} (tiers in increasing order)",
            )
            ok = False
            continue
        previous = above
        prices: dict[str, int | float] = {}
        for name in TIER_PRICES:
            if name not in item:
                continue
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                bad(f"{base}/{name}", value, "a non-negative price in USD per million tokens")
                ok = False
                continue
            problem = number_problem(value)
            if problem is not None or value < 0:
                bad(f"{base}/{name}", value, problem or "a non-negative price")
                ok = False
                continue
            prices[name] = canonical_number(value)
        if not prices:
            bad(base, item, "a tier setting at least one of " + ", ".join(TIER_PRICES))
            ok = False
            continue
        tiers.append(PriceTier(above, **prices))
    return tuple(tiers) if ok else None


def tier_for(tiers: tuple[PriceTier, ...], tokens_in: int) -> PriceTier | None:
    """The tier a run with `tokens_in` input tokens pays (None: the base prices)."""
    chosen = None
    for tier in tiers:
        if tokens_in > tier.above_tokens_in:
            chosen = tier
    return chosen


def run_cost(
    attributes: Mapping[str, object],
    tiers: tuple[PriceTier, ...],
    tokens_in: int,
    tokens_out: int,
    tokens_cached: int = 0,
) -> float | None:
    """USD for one run, or None when the entry's price is unknown.

    `(uncached_in × price_in + cached × price_cached_in + tokens_out × price_out) / 1e6` with the
    prices of the tier for `tokens_in`; cached input costs `price_in` where no cached price is
    known. With no tier and no cached tokens it is exactly
    `(in × price_in + out × price_out) / 1e6`, the formula catalogs without these fields had.
    """
    price_in = attributes.get("price_in")
    price_out = attributes.get("price_out")
    if not _is_price(price_in) or not _is_price(price_out):
        return None
    p_in, p_out = float(price_in), float(price_out)
    cached_raw = attributes.get("price_cached_in")
    p_cached = float(cached_raw) if _is_price(cached_raw) else None
    tier = tier_for(tiers, tokens_in) if tiers else None
    if tier is not None:
        p_in = p_in if tier.price_in is None else tier.price_in
        p_out = p_out if tier.price_out is None else tier.price_out
        p_cached = p_cached if tier.price_cached_in is None else tier.price_cached_in
    cached = min(tokens_cached, tokens_in)
    if cached == 0:
        return (tokens_in * p_in + tokens_out * p_out) / 1e6
    cached_price = p_in if p_cached is None else p_cached
    return ((tokens_in - cached) * p_in + cached * cached_price + tokens_out * p_out) / 1e6


def _is_price(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
