"""Overlays: globs, file order, warnings for rules matching nothing, region pins, provenance,
validation with pointers into the overlay file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.services.catalogs import CatalogImportError, load_overlay
from tests.catalogs.support import (
    EXAMPLE_OVERLAY,
    chat,
    import_litellm,
    litellm_fixture,
    overlay,
)

BASE = {
    "gpt-4o": chat("openai"),
    "gpt-4o-mini": chat("openai"),
    "azure/eu/gpt-4o": chat("azure"),
    "mistral/mistral-large-latest": chat("mistral"),
}


def rules(*items: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"rules": list(items), **top}


def test_an_exact_id_sets_attributes_on_that_entry_only() -> None:
    ov = overlay(rules({"match": "openai/gpt-4o@unspecified", "set": {"bench_intelligence": 0.8}}))
    catalog = import_litellm(BASE, ov).catalog
    assert catalog["openai/gpt-4o@unspecified"].get("bench_intelligence") == 0.8
    assert catalog["openai/gpt-4o-mini@unspecified"].get("bench_intelligence") is None


def test_a_glob_matches_every_fitting_id() -> None:
    ov = overlay(rules({"match": "*/gpt-4o@*", "set": {"no_log": True}}))
    catalog = import_litellm(BASE, ov).catalog
    assert {e.id for e in catalog.entries if e.get("no_log") is True} == {
        "openai/gpt-4o@unspecified",
        "azure/gpt-4o@eu",
    }


def test_a_list_of_globs_matches_their_union() -> None:
    ov = overlay(rules({"match": ["openai/gpt-4o-mini@*", "azure/*"], "set": {"no_log": True}}))
    catalog = import_litellm(BASE, ov).catalog
    assert {e.id for e in catalog.entries if e.get("no_log")} == {
        "openai/gpt-4o-mini@unspecified",
        "azure/gpt-4o@eu",
    }


def test_globs_are_case_sensitive() -> None:
    result = import_litellm(BASE, overlay(rules({"match": "OPENAI/*", "set": {"no_log": True}})))
    assert not any(e.get("no_log") for e in result.catalog.entries)
    assert len(result.summary.warnings) == 1


def test_later_rules_win_within_a_file() -> None:
    ov = overlay(
        rules(
            {"match": "openai/*", "set": {"bench_intelligence": 0.5}},
            {"match": "openai/gpt-4o@*", "set": {"bench_intelligence": 0.8}},
        )
    )
    catalog = import_litellm(BASE, ov).catalog
    assert catalog["openai/gpt-4o@unspecified"].get("bench_intelligence") == 0.8
    assert catalog["openai/gpt-4o-mini@unspecified"].get("bench_intelligence") == 0.5


def test_later_overlay_files_win() -> None:
    first = overlay(rules({"match": "openai/*", "set": {"bench_intelligence": 0.5}}), "a.yaml")
    second = overlay(rules({"match": "openai/*", "set": {"bench_intelligence": 0.7}}), "b.yaml")
    catalog = import_litellm(BASE, first, second).catalog
    assert catalog["openai/gpt-4o@unspecified"].get("bench_intelligence") == 0.7
    provenance = catalog.metadata["provenance"]["overrides"]["openai/gpt-4o@unspecified"]
    assert provenance == {"bench_intelligence": "overlay:b#/rules/0"}


def test_overlay_values_override_imported_ones() -> None:
    ov = overlay(rules({"match": "openai/gpt-4o@*", "set": {"price_in": 0.5}}))
    assert import_litellm(BASE, ov).catalog["openai/gpt-4o@unspecified"].get("price_in") == 0.5


def test_a_rule_matching_nothing_is_a_warning() -> None:
    ov = overlay(rules({"match": "nobody/*", "set": {"no_log": True}}), "ov.yaml")
    result = import_litellm(BASE, ov)
    assert result.summary.warnings == ["ov.yaml /rules/0: match ['nobody/*'] matched no entry"]
    assert "1 warnings" in result.summary.render()


def test_a_region_pin_rebuilds_the_id_and_records_it() -> None:
    ov = overlay(rules({"match": "mistral/*@unspecified", "set": {"region": "eu"}}), "pins.yaml")
    catalog = import_litellm(BASE, ov).catalog
    pinned = catalog["mistral/mistral-large-latest@eu"]
    assert pinned.get("region") == "eu"
    assert "mistral/mistral-large-latest@unspecified" not in catalog
    assert catalog.metadata["provenance"]["overrides"]["mistral/mistral-large-latest@eu"] == {
        "id": "overlay:pins#/rules/0",
        "region": "overlay:pins#/rules/0",
    }


def test_later_rules_see_the_pinned_id() -> None:
    ov = overlay(
        rules(
            {"match": "mistral/*", "set": {"region": "eu"}},
            {"match": "*@eu", "set": {"no_log": True}},
        )
    )
    catalog = import_litellm(BASE, ov).catalog
    assert catalog["mistral/mistral-large-latest@eu"].get("no_log") is True


def test_a_pin_onto_an_existing_id_is_rejected() -> None:
    ov = overlay(rules({"match": "openai/gpt-4o@*", "set": {"provider": "azure", "region": "eu"}}))
    with pytest.raises(CatalogImportError) as caught:
        import_litellm(BASE, ov)
    assert caught.value.pointer == "/rules/0/set"
    assert "azure/gpt-4o@eu, which already exists" in str(caught.value)


def test_custom_attributes_declared_in_the_schema_reach_the_catalog_schema() -> None:
    ov = overlay(
        rules(
            {"match": "openai/*", "set": {"approved": True}},
            schema={"approved": "boolean", "tier": "string"},
        )
    )
    catalog = import_litellm(BASE, ov).catalog
    assert catalog.schema["approved"] == "boolean"
    assert catalog.schema["tier"] == "string"
    assert catalog["openai/gpt-4o@unspecified"].get("approved") is True


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (rules({"match": "*", "set": {"no_log": "yes"}}), "/rules/0/set/no_log"),
        (rules({"match": "*", "set": {"price_in": -1}}), "/rules/0/set/price_in"),
        (
            rules({"match": "*", "set": {"bench_intelligence": float("nan")}}),
            "/rules/0/set/bench_intelligence",
        ),
        (rules({"match": "*", "set": {"note": None}}), "/rules/0/set/note"),
        (rules({"match": "*", "set": {"id": "x/y@z"}}), "/rules/0/set/id"),
        (rules({"match": "*", "set": {"cost_per_run": 1}}), "/rules/0/set/cost_per_run"),
        (rules({"match": "*", "set": {}}), "/rules/0/set"),
        (rules({"match": [], "set": {"no_log": True}}), "/rules/0/match"),
        (rules({"match": "*", "set": {"no_log": True}, "when": 1}), "/rules/0/when"),
        (
            rules({"match": "*", "set": {"approved": 1}}, schema={"approved": "boolean"}),
            "/rules/0/set/approved",
        ),
        ({"rules": {"match": "*"}}, "/rules"),
        ({"rules": [], "schema": {"no_log": "string"}}, "/schema/no_log"),
        ({"rules": [], "schema": {"x": "date"}}, "/schema/x"),
        ({"rules": [], "extends": "base.yaml"}, "/extends"),
        (rules({"match": "*", "set": {"no_log": True}, "source": "a page"}), "/rules/0/source"),
        (rules({"match": "*", "set": {"no_log": True}, "as_of": "7 Dec"}), "/rules/0/as_of"),
        ({"rules": [], "as_of": "2026-13"}, "/as_of"),
    ],
)
def test_bad_overlays_are_rejected_with_a_pointer_into_the_file(
    document: dict[str, Any], where: str
) -> None:
    with pytest.raises(CatalogImportError) as caught:
        overlay(document, "bad.yaml")
    assert caught.value.pointer == where
    assert str(caught.value).startswith(f"bad.yaml: {where}")


def test_a_sourced_value_carries_its_url_and_the_date_it_was_checked() -> None:
    aws = "https://docs.aws.amazon.com/bedrock/latest/userguide/data-retention.html"
    ov = overlay(
        rules(
            {"match": "azure/*", "set": {"no_log": False}, "source": "https://example.com/a"},
            {"match": "openai/*", "set": {"no_log": True}, "source": aws, "as_of": "2026-11-30"},
            {"match": "mistral/*", "set": {"no_log": True}},
            as_of="2026-12-07",
        )
    )
    catalog = import_litellm(BASE, ov).catalog
    azure = catalog["azure/gpt-4o@eu"]
    assert (azure.get("no_log_source"), azure.get("no_log_as_of")) == (
        "https://example.com/a",
        "2026-12-07",  # the overlay's date
    )
    openai = catalog["openai/gpt-4o@unspecified"]
    assert (openai.get("no_log_source"), openai.get("no_log_as_of")) == (aws, "2026-11-30")
    # without a source there is nothing to date
    mistral = catalog["mistral/mistral-large-latest@unspecified"]
    assert mistral.get("no_log") is True
    assert "no_log_source" not in mistral.attributes
    assert "no_log_as_of" not in mistral.attributes


def test_a_value_of_another_type_than_the_catalog_has_is_rejected() -> None:
    ov = overlay(rules({"match": "*", "set": {"upstream_model": 3}}), "bad.yaml")
    with pytest.raises(CatalogImportError) as caught:
        import_litellm(BASE, ov)
    assert caught.value.pointer == "/rules/0/set/upstream_model"


def test_yaml_overlays_load_from_files(tmp_path: Path) -> None:
    path = tmp_path / "bench.yml"
    path.write_text(
        "name: bench\nrules:\n  - match: 'openai/*'\n    set: {bench_intelligence: 0.7}\n"
    )
    ov = load_overlay(path)
    assert ov.source.tag == "overlay:bench"
    assert (
        import_litellm(BASE, ov).catalog["openai/gpt-4o@unspecified"].get("bench_intelligence")
        == 0.7
    )


def test_json_overlays_load_from_files(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text('{"rules": [{"match": "azure/*", "set": {"no_log": true}}]}')
    ov = load_overlay(path)
    assert ov.source.tag == "overlay:flags"
    assert import_litellm(BASE, ov).catalog["azure/gpt-4o@eu"].get("no_log") is True


def test_yaml_duplicate_keys_are_an_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("rules: []\nrules: []\n")
    with pytest.raises(
        CatalogImportError, match=r"dup.yaml: /: invalid YAML at line 2 .*duplicate key"
    ):
        load_overlay(path)


def test_unquoted_yaml_dates_get_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "dates.yaml"
    path.write_text("rules:\n  - match: '*'\n    set: {approved_on: 2026-01-01}\n")
    with pytest.raises(CatalogImportError, match="quote dates in YAML"):
        load_overlay(path)


def test_the_same_inputs_give_the_same_version_wherever_the_files_live(tmp_path: Path) -> None:
    text = EXAMPLE_OVERLAY.read_text(encoding="utf-8")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "overlay.yaml").write_text(text)
    (tmp_path / "b" / "overlay.yaml").write_text(text)
    first = import_litellm(litellm_fixture(), load_overlay(tmp_path / "a" / "overlay.yaml"))
    second = import_litellm(litellm_fixture(), load_overlay(tmp_path / "b" / "overlay.yaml"))
    assert first.catalog.version == second.catalog.version


def test_changing_an_overlay_changes_the_version() -> None:
    one = import_litellm(BASE, overlay(rules({"match": "openai/*", "set": {"no_log": True}})))
    other = import_litellm(BASE, overlay(rules({"match": "openai/*", "set": {"no_log": False}})))
    assert one.catalog.version != other.catalog.version


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("rules:\n  - match: [unclosed\n")
    with pytest.raises(CatalogImportError, match=r"broken.yaml: /: invalid YAML at line \d+"):
        load_overlay(path)
