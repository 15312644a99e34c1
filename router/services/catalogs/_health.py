"""The health report of a catalog: the entries a user should look at before routing on it —
unpriced entries, free/batch/local variants, aliases, duplicates, entries without a region — so
nobody learns about them from a surprising route."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.core import UNKNOWN_PRICE, Catalog
from router.services.catalogs._imports import UNSPECIFIED_REGION, ImportSummary
from router.services.catalogs._vocabulary import LOCAL_HOSTING, STANDARD_VARIANT

EXAMPLES_SHOWN = 5
"""Entry ids shown per finding in the text report (`--json` lists them all)."""


@dataclass
class CatalogHealth:
    """Findings by name → the entry ids concerned (sorted), plus the duplicates the import
    resolved (merged identical ones, and differing ones with the key kept)."""

    entries: int
    findings: dict[str, list[str]] = field(default_factory=dict)
    variants: dict[str, int] = field(default_factory=dict)
    merged_duplicates: int = 0
    differing_duplicates: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON: counts, and every entry id per finding."""
        return {
            "entries": self.entries,
            "counts": {name: len(ids) for name, ids in self.findings.items()},
            "variants": dict(self.variants),
            "duplicates": {
                "merged_identical": self.merged_duplicates,
                "differing": list(self.differing_duplicates),
            },
            "findings": {name: list(ids) for name, ids in self.findings.items()},
        }

    def render(self) -> str:
        """A readable report: one line per finding with a few example ids."""
        lines = [f"health of {self.entries} entries:"]
        for name, ids in self.findings.items():
            shown = ", ".join(ids[:EXAMPLES_SHOWN])
            more = f", … {len(ids) - EXAMPLES_SHOWN} more" if len(ids) > EXAMPLES_SHOWN else ""
            lines.append(f"  {len(ids):6d}  {_TITLES[name]}" + (f": {shown}{more}" if ids else ""))
        if self.variants:
            counts = ", ".join(f"{k} {n}" for k, n in sorted(self.variants.items()))
            lines.append(f"  variants besides standard: {counts}")
        lines.append(
            f"  {self.merged_duplicates:6d}  identical duplicates merged, "
            f"{len(self.differing_duplicates)} differing (see warnings)"
        )
        return "\n".join(lines)


_TITLES: Mapping[str, str] = {
    "unpriced": "unpriced (price_source unknown: never win on cost)",
    "free": "free (price_source free)",
    "free_variant": "free variants (variant free)",
    "batch_variant": "batch variants (variant batch)",
    "other_variant": "other variants (variant not standard, free or batch)",
    "local": "self-hosted (hosting local)",
    "aliases": "aliases (resolved to their target; alias names the alias)",
    "tiered": "with price tiers (cost depends on the prompt size)",
    "time_of_day": "time-of-day prices (priced at the dearest window)",
    "without_region": "without region (region unspecified)",
    "without_vendor": "without vendor",
    "not_active": "not active (status is not active)",
}


def catalog_health(catalog: Catalog, summary: ImportSummary | None = None) -> CatalogHealth:
    """The findings of one catalog (and of the import that made it, when given)."""
    findings: dict[str, list[str]] = {name: [] for name in _TITLES}
    variants: Counter[str] = Counter()
    for entry in catalog.entries:
        attrs = entry.attributes
        source = attrs.get("price_source")
        variant = attrs.get("variant")
        checks: Sequence[tuple[str, bool]] = (
            ("unpriced", source == UNKNOWN_PRICE),
            ("free", source == "free"),
            ("free_variant", variant == "free"),
            ("batch_variant", variant == "batch"),
            (
                "other_variant",
                isinstance(variant, str) and variant not in (STANDARD_VARIANT, "free", "batch"),
            ),
            ("local", attrs.get("hosting") == LOCAL_HOSTING),
            ("aliases", "alias" in attrs),
            ("tiered", bool(entry.tiers)),
            ("time_of_day", attrs.get("time_of_day_pricing") is True),
            ("without_region", attrs.get("region") == UNSPECIFIED_REGION),
            ("without_vendor", "vendor" not in attrs),
            ("not_active", attrs.get("status") != "active"),
        )
        for name, hit in checks:
            if hit:
                findings[name].append(entry.id)
        if isinstance(variant, str) and variant != STANDARD_VARIANT:
            variants[variant] += 1
    differing = [] if summary is None else [w for w in summary.warnings if "duplicate id" in w]
    return CatalogHealth(
        entries=len(catalog.entries),
        findings=findings,
        variants=dict(sorted(variants.items())),
        merged_duplicates=0 if summary is None else summary.merged_identical,
        differing_duplicates=differing,
    )
