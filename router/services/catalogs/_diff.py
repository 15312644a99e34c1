"""Differences between two catalogs: entries added, removed, and changed field by field.

`diff_catalogs` is pure on two `Catalog`s, so it compares files today and published versions once
they exist, the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.core import AttrValue, Catalog

_ABSENT: Any = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One attribute of one entry: old → new (None where the attribute is absent)."""

    entry: str
    field: str
    old: AttrValue | None
    new: AttrValue | None


@dataclass(frozen=True)
class CatalogDiff:
    """What changed from catalog `a` to `b` (ids sorted, changes sorted by id then field)."""

    a_version: str
    b_version: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[FieldChange, ...]
    schema_changed: tuple[FieldChange, ...]

    @property
    def empty(self) -> bool:
        """No entry or schema difference (names and metadata are not compared)."""
        return not (self.added or self.removed or self.changed or self.schema_changed)

    def to_json(self) -> dict[str, Any]:
        """The diff as JSON: changes grouped per entry, each field as {old, new}."""
        changed: dict[str, dict[str, Any]] = {}
        for c in self.changed:
            changed.setdefault(c.entry, {})[c.field] = {"old": _json(c.old), "new": _json(c.new)}
        return {
            "a": self.a_version,
            "b": self.b_version,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": changed,
            "schema": {c.field: {"old": c.old, "new": c.new} for c in self.schema_changed},
            "counts": {
                "added": len(self.added),
                "removed": len(self.removed),
                "changed_entries": len(changed),
                "changed_fields": len(self.changed),
            },
        }

    def render(self) -> str:
        """A readable report: header, added and removed ids, and a table of field changes."""
        counts = self.to_json()["counts"]
        lines = [
            f"a {self.a_version[:12]} → b {self.b_version[:12]}: "
            f"{counts['added']} added, {counts['removed']} removed, "
            f"{counts['changed_entries']} changed ({counts['changed_fields']} fields)"
        ]
        if self.empty:
            lines.append("no differences")
            return "\n".join(lines)
        lines.extend(f"+ {ident}" for ident in self.added)
        lines.extend(f"- {ident}" for ident in self.removed)
        if self.schema_changed:
            lines.append("schema:")
            lines.extend(
                f"  {c.field}: {_show(c.old)} → {_show(c.new)}" for c in self.schema_changed
            )
        if self.changed:
            rows = [("entry", "field", "old", "new")]
            rows.extend((c.entry, c.field, _show(c.old), _show(c.new)) for c in self.changed)
            widths = [max(len(r[i]) for r in rows) for i in range(3)]
            for row in rows:
                lines.append(
                    "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
                    + "  "
                    + row[3]
                )
        return "\n".join(lines)


def _json(value: AttrValue | None) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _show(value: object) -> str:
    if value is None:
        return "(absent)"
    return json.dumps(_json(value), ensure_ascii=False)  # type: ignore[arg-type]


def _field_changes(entry: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    fields = sorted(set(old) | set(new))
    return [
        FieldChange(entry, f, old.get(f, _ABSENT), new.get(f, _ABSENT))
        for f in fields
        if old.get(f, _ABSENT) != new.get(f, _ABSENT)
    ]


def diff_catalogs(a: Catalog, b: Catalog) -> CatalogDiff:
    """Compare two catalogs entry by entry (matched by id) and their attribute schemas."""
    a_ids = {e.id for e in a.entries}
    b_ids = {e.id for e in b.entries}
    changed: list[FieldChange] = []
    for ident in sorted(a_ids & b_ids):
        changed.extend(_field_changes(ident, a[ident].attributes, b[ident].attributes))
    return CatalogDiff(
        a_version=a.version,
        b_version=b.version,
        added=tuple(sorted(b_ids - a_ids)),
        removed=tuple(sorted(a_ids - b_ids)),
        changed=tuple(changed),
        schema_changed=tuple(_field_changes("", a.schema, b.schema)),
    )
