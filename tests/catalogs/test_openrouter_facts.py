"""Facts OpenRouter enforces at request time: `no_log` from its zero-data-retention endpoint list
(`GET /api/v1/endpoints/zdr`) and region `eu` entries from its EU listing
(`GET /api/v1/models?region=eu`), each value naming its source."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from router.core import Catalog
from router.services.catalogs import CatalogImportError, Source, import_openrouter_document
from router.services.catalogs._openrouter_facts import EU_MODELS_URL, ZDR_URL
from tests.catalogs.support import DATA, OPENROUTER
from unhardcoded.cli import main

ZDR = DATA / "openrouter-zdr.json"
EU = DATA / "openrouter-eu.json"
AS_OF = dt.date(2026, 12, 7)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def facts_import(zdr: object | None = None, eu: object | None = None) -> Catalog:
    return import_openrouter_document(
        load(OPENROUTER),
        Source("openrouter", "models.json", "ab" * 32),
        as_of=AS_OF,
        zdr=None if zdr is None else (zdr, Source("openrouter_zdr", "zdr.json", "cd" * 32)),
        eu=None if eu is None else (eu, Source("openrouter_eu", "eu.json", "ef" * 32)),
    ).catalog


def by_id(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return {e.id: dict(e.attributes) for e in catalog}


def test_a_model_with_a_zdr_endpoint_is_no_log_and_names_the_endpoints() -> None:
    entries = by_id(facts_import(zdr=load(ZDR)))
    sonnet = entries["openrouter/anthropic/claude-sonnet-4.5@unspecified"]
    # joined on the permaslug (canonical_slug), not the listing id
    assert sonnet["no_log"] is True
    assert sonnet["zdr_providers"] == ("amazon-bedrock", "google-vertex")
    assert sonnet["no_log_source"] == ZDR_URL
    assert entries["openrouter/openai/gpt-4o@unspecified"]["zdr_providers"] == ("azure",)
    # listed, but without any ZDR endpoint: the list states it has none
    r1 = entries["openrouter/deepseek/deepseek-r1-0528@unspecified"]
    assert r1["no_log"] is False
    assert "zdr_providers" not in r1


def test_a_variant_gets_no_data_policy_from_its_base_models_endpoints() -> None:
    # `…:free` shares its permaslug with the standard model, but other endpoints serve it
    free = by_id(facts_import(zdr=load(ZDR)))[
        "openrouter/meta-llama/llama-3.3-70b-instruct:free@unspecified"
    ]
    assert "no_log" not in free
    assert "zdr_providers" not in free


def test_without_the_zdr_list_no_entry_has_a_data_policy() -> None:
    assert all("no_log" not in e.attributes for e in facts_import())


def test_the_zdr_file_is_the_provenance_of_the_values_it_sets() -> None:
    catalog = facts_import(zdr=load(ZDR))
    sources = catalog.metadata["sources"]
    assert sources["openrouter_zdr:cdcdcdcdcdcd"]["file"] == "zdr.json"
    overrides = catalog.metadata["provenance"]["overrides"]
    assert overrides["openrouter/openai/gpt-4o@unspecified"] == {
        "no_log": "openrouter_zdr:cdcdcdcdcdcd",
        "no_log_source": "openrouter_zdr:cdcdcdcdcdcd",
        "zdr_providers": "openrouter_zdr:cdcdcdcdcdcd",
    }
    # a different ZDR list is a different catalog version
    fewer = copy.deepcopy(load(ZDR))
    fewer["data"] = fewer["data"][1:]
    assert facts_import(zdr=fewer).version != catalog.version


def test_the_eu_listing_adds_an_entry_in_region_eu_priced_as_it_states() -> None:
    eu = load(EU)
    for model in eu["data"]:
        if model["id"] == "openai/gpt-4o":
            model["pricing"]["prompt"] = "0.00000275"  # an EU endpoint may cost more
    entries = by_id(facts_import(eu=eu))
    gpt = entries["openrouter/openai/gpt-4o@eu"]
    assert (gpt["region"], gpt["region_source"], gpt["price_in"]) == ("eu", EU_MODELS_URL, 2.75)
    assert gpt["upstream_model"] == "openai/gpt-4o"
    assert entries["openrouter/openai/gpt-4o@unspecified"]["price_in"] == 2.5
    assert sorted(i for i in entries if i.endswith("@eu")) == [
        "openrouter/anthropic/claude-sonnet-4.5@eu",
        "openrouter/google/gemini-2.5-pro@eu",
        "openrouter/mistralai/mistral-large-2512@eu",
        "openrouter/openai/gpt-4o@eu",
    ]
    # an EU entry's no_log is not known: the ZDR list says nothing of the EU endpoints
    with_both = by_id(facts_import(zdr=load(ZDR), eu=load(EU)))
    assert "no_log" not in with_both["openrouter/openai/gpt-4o@eu"]


def test_every_attribute_of_an_eu_entry_comes_from_the_eu_file() -> None:
    catalog = facts_import(eu=load(EU))
    record = catalog.metadata["provenance"]["overrides"]["openrouter/openai/gpt-4o@eu"]
    entry = by_id(catalog)["openrouter/openai/gpt-4o@eu"]
    assert set(record) == set(entry)
    assert set(record.values()) == {"openrouter_eu:efefefefefef"}


@pytest.mark.parametrize(
    ("document", "pointer"),
    [
        ({"endpoints": []}, "/data"),
        ({"data": [{"model_id": "openai/gpt-4o"}]}, "/data/0/tag"),
        ({"data": [{"model_id": 7, "tag": "azure"}]}, "/data/0/model_id"),
        ({"data": ["azure"]}, "/data/0"),
    ],
)
def test_a_bad_zdr_list_names_where(document: object, pointer: str) -> None:
    with pytest.raises(CatalogImportError) as raised:
        facts_import(zdr=document)
    assert raised.value.source == "zdr.json"
    assert [i.pointer for i in raised.value.issues] == [pointer]


def test_a_bad_eu_listing_names_its_own_file() -> None:
    with pytest.raises(CatalogImportError) as raised:
        facts_import(eu={"data": [{"id": "x/y", "pricing": {"prompt": "-3", "completion": "1"}}]})
    assert raised.value.source == "eu.json"
    assert raised.value.issues[0].pointer == "/data/0/pricing/prompt"


def test_the_cli_imports_the_facts_and_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    args = ["catalog", "import", "openrouter", str(OPENROUTER), "--as-of", "2026-12-07"]
    ok = CliRunner().invoke(main, [*args, "--zdr", str(ZDR), "--eu", str(EU), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    written = json.loads(out.read_text())
    kinds = {s["kind"] for s in written["metadata"]["sources"].values()}
    assert kinds == {"openrouter", "openrouter_zdr", "openrouter_eu"}
    bad = tmp_path / "zdr.json"
    bad.write_text('{"data": [{"model_id": "openai/gpt-4o", "tag": ""}]}')
    failed = CliRunner().invoke(main, [*args, "--zdr", str(bad), "--out", str(out)])
    assert failed.exit_code == 2
    assert "zdr.json: /data/0/tag: expected the endpoint's provider tag" in failed.output
    assert "Traceback" not in failed.output
