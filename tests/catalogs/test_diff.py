"""Catalog diff: added, removed, changed per field (old → new), schema changes; table and JSON."""

from __future__ import annotations

from typing import Any

from router.core import Catalog
from router.services.catalogs import diff_catalogs


def entry(entry_id: str, **extra: Any) -> dict[str, Any]:
    provider, rest = entry_id.split("/", 1)
    model, region = rest.rsplit("@", 1)
    return {
        "id": entry_id,
        "model": model,
        "provider": provider,
        "region": region,
        "price_in": 1.0,
        "price_out": 2.0,
        "status": "active",
        **extra,
    }


def catalog(*entries: dict[str, Any]) -> Catalog:
    return Catalog.from_json({"name": "t", "entries": list(entries)})


A = catalog(
    entry("openai/gpt-4o@unspecified", capabilities=["tools"]),
    entry("azure/gpt-4o@eu", no_log=True),
    entry("mistral/large@eu"),
)
B = catalog(
    entry("openai/gpt-4o@unspecified", price_in=2.5, capabilities=["tools", "vision"]),
    entry("azure/gpt-4o@eu"),
    entry("anthropic/sonnet@unspecified", bench_intelligence=0.8),
)


def test_added_and_removed_entries_by_id() -> None:
    diff = diff_catalogs(A, B)
    assert diff.added == ("anthropic/sonnet@unspecified",)
    assert diff.removed == ("mistral/large@eu",)


def test_changed_fields_with_old_and_new_values() -> None:
    changes = [(c.entry, c.field, c.old, c.new) for c in diff_catalogs(A, B).changed]
    assert changes == [
        ("azure/gpt-4o@eu", "no_log", True, None),
        ("openai/gpt-4o@unspecified", "capabilities", ("tools",), ("tools", "vision")),
        ("openai/gpt-4o@unspecified", "price_in", 1, 2.5),
    ]


def test_schema_changes_are_reported() -> None:
    schema = {(c.field, c.old, c.new) for c in diff_catalogs(A, B).schema_changed}
    assert schema == {("bench_intelligence", None, "number"), ("no_log", "boolean", None)}


def test_identical_catalogs_have_an_empty_diff() -> None:
    diff = diff_catalogs(A, A)
    assert diff.empty
    assert diff.render().endswith("no differences")


def test_json_groups_changes_per_entry() -> None:
    data = diff_catalogs(A, B).to_json()
    assert (data["a"], data["b"]) == (A.version, B.version)
    assert data["changed"]["openai/gpt-4o@unspecified"] == {
        "capabilities": {"old": ["tools"], "new": ["tools", "vision"]},
        "price_in": {"old": 1, "new": 2.5},
    }
    assert data["changed"]["azure/gpt-4o@eu"] == {"no_log": {"old": True, "new": None}}
    assert data["counts"] == {"added": 1, "removed": 1, "changed_entries": 2, "changed_fields": 3}


def test_the_table_shows_each_change_on_a_row() -> None:
    text = diff_catalogs(A, B).render()
    lines = text.splitlines()
    assert lines[0].endswith("1 added, 1 removed, 2 changed (3 fields)")
    assert "+ anthropic/sonnet@unspecified" in lines
    assert "- mistral/large@eu" in lines
    row = next(line for line in lines if "price_in" in line)
    assert row.split() == ["openai/gpt-4o@unspecified", "price_in", "1", "2.5"]
    absent = next(line for line in lines if "no_log" in line and "azure" in line)
    assert absent.split() == ["azure/gpt-4o@eu", "no_log", "true", "(absent)"]
