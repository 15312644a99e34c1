"""The catalog model: validation with pointers, canonical order, content-addressed version."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from router.core import Catalog, CatalogError, EntryNotFoundError
from router.services.catalogs import (
    DocumentReadError,
    bundled_catalog,
    load_catalog,
    parse_json_text,
)

ROOT = Path(__file__).resolve().parents[2]


def entry(entry_id: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": entry_id,
        "model": "m",
        "provider": "p",
        "region": "eu",
        "price_in": 1.0,
        "price_out": 2.0,
        "status": "active",
    }
    base.update(extra)
    return base


def doc(*entries: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "t", "entries": list(entries), **top}


def problems(document: object) -> list[tuple[str, str]]:
    with pytest.raises(CatalogError) as info:
        Catalog.from_json(document)
    return [(issue.pointer, issue.message) for issue in info.value.issues]


def test_bundled_catalog_is_the_shared_example() -> None:
    catalog = bundled_catalog()
    shared = json.loads((ROOT / "router/data/catalog.json").read_text())
    assert len(catalog) == len(shared["entries"]) == 20
    assert [e.id for e in catalog.entries] == sorted(e["id"] for e in shared["entries"])
    assert catalog.metadata["attributes_note"].startswith("prices in USD")
    assert catalog.schema["bench_intelligence"] == "number"
    assert catalog.schema["capabilities"] == "string_list"
    assert catalog.schema["no_log"] == "boolean"
    assert catalog.index_of("xai/grok-4-fast@us") == 19
    assert catalog["openai/gpt-5@us"].get("bench_intelligence") == 0.88


def test_version_is_content_addressed() -> None:
    a = Catalog.from_json(doc(entry("b", price_in=1), entry("a", extra=["x"])))
    b = Catalog.from_json(
        {"entries": [entry("a", extra=["x"]), entry("b", price_in=1.0)], "name": "t", "schema": {}}
        | {"schema": dict(a.schema)}
    )
    assert a.version == b.version
    assert len(a.version) == 64
    c = Catalog.from_json(doc(entry("b", price_in=1.5), entry("a", extra=["x"])))
    assert c.version != a.version
    assert Catalog.from_json(a.to_json()).version == a.version


def test_round_trip_keeps_the_document() -> None:
    catalog = bundled_catalog()
    again = Catalog.from_json(copy.deepcopy(catalog.to_json()))
    assert again == catalog
    assert again.to_json() == catalog.to_json()


def test_catalog_is_immutable() -> None:
    catalog = bundled_catalog()
    with pytest.raises(AttributeError):
        catalog.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        catalog.entries[0].attributes["region"] = "mars"  # type: ignore[index]


def test_index_of_unknown_entry() -> None:
    with pytest.raises(EntryNotFoundError, match="no entry 'nope'"):
        bundled_catalog().index_of("nope")


@pytest.mark.parametrize(
    ("document", "pointer", "fragment"),
    [
        ([], "", "expected a catalog object"),
        (doc(entry("a"), name=""), "/name", "non-empty string"),
        ({"name": "t", "entries": {}}, "/entries", "a list of entry objects"),
        (
            doc(entry("a"), entry("a")),
            "/entries/1/id",
            'duplicate entry id "a" (also at /entries/0)',
        ),
        (doc(entry("a", price_in=-1)), "/entries/0/price_in", "non-negative price"),
        (doc(entry("a", price_out=float("inf"))), "/entries/0/price_out", "finite number"),
        (doc(entry("a", price_in=True)), "/entries/0/price_in", "price_in is number, found true"),
        (doc(entry("a", region=3)), "/entries/0/region", "region is string, found 3"),
        (doc(entry("a", no_log="yes")), "/entries/0/no_log", 'no_log is boolean, found "yes"'),
        (
            doc(entry("a", score=1), entry("b", score="high")),
            "/entries/1/score",
            "score is number at /entries/0/score",
        ),
        (doc(entry("a", score=None)), "/entries/0/score", "null is not an attribute value"),
        (doc(entry("a", nested={"x": 1})), "/entries/0/nested", "found an object"),
        (doc(entry("a", big=2**60)), "/entries/0/big", "an integer within"),
        (doc(entry("a", cost_per_run=1)), "/entries/0/cost_per_run", "cost_per_run is computed"),
        (
            doc({"id": "a", "model": "m", "provider": "p", "region": "eu", "price_in": 1}),
            "/entries/0/price_out",
            "missing required attribute 'price_out'",
        ),
        (doc(entry("a"), schema={"score": "float"}), "/schema/score", "one of: string, number"),
        (doc(entry("a"), schema={"region": "number"}), "/schema/region", "region is always string"),
        (doc(entry("a", score=1), schema={}), "/entries/0/score", "not declared in /schema"),
        (
            doc(entry("a", score="x"), schema={"score": "number"}),
            "/entries/0/score",
            "score is number",
        ),
        (doc(entry("a"), metadata=[1]), "/metadata", "expected an object"),
        (doc(entry("a", **{"a/b": 1})), "/entries/0/a~1b", ""),
    ],
)
def test_each_validation_rule_names_its_pointer(
    document: object, pointer: str, fragment: str
) -> None:
    if (
        pointer == "/entries/0/a~1b"
    ):  # a valid attribute name with a slash: no error, checks escaping
        catalog = Catalog.from_json(document)
        assert catalog.schema["a/b"] == "number"
        return
    found = problems(document)
    assert any(p == pointer and fragment in m for p, m in found), found


def test_all_problems_are_reported() -> None:
    found = problems(doc(entry("a", price_in=-1), entry("b", region=1), entry("a")))
    assert [p for p, _ in found] == ["/entries/0/price_in", "/entries/1/region", "/entries/2/id"]


def test_schema_declares_attributes_absent_from_entries() -> None:
    catalog = Catalog.from_json(doc(entry("a"), schema={"approved": "boolean"}))
    assert catalog.schema["approved"] == "boolean"
    assert catalog.entries[0].get("approved") is None


def test_extra_top_level_keys_are_kept_in_metadata() -> None:
    catalog = Catalog.from_json(doc(entry("a"), note="x", metadata={"source": "s"}))
    assert dict(catalog.metadata) == {"note": "x", "source": "s"}
    assert problems(doc(entry("a"), note="x", metadata={"note": "y"})) == [
        ("/note", "top-level 'note' is also a metadata key")
    ]


def test_strict_json_reader(tmp_path: Path) -> None:
    with pytest.raises(DocumentReadError, match="NaN is not a JSON number"):
        parse_json_text('{"a": NaN}')
    with pytest.raises(DocumentReadError, match="duplicate key 'a'"):
        parse_json_text('{"a": 1, "a": 2}')
    with pytest.raises(DocumentReadError, match="line 2 column 1"):
        parse_json_text('{"a": 1,\n}')
    with pytest.raises(DocumentReadError, match="cannot read"):
        load_catalog(tmp_path / "absent.json")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc(entry("a"))))
    assert load_catalog(path).entries[0].id == "a"
