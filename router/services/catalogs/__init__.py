"""Catalog and policy documents: files, stdin, the bundled illustrative catalog, and the importers
that turn public catalogs (LiteLLM's price map, OpenRouter's model list) plus overlay files into
validated catalogs with one vocabulary, their health report, the sync of a live source (once or on a
schedule), and the diff between two catalogs."""

from router.services.catalogs._diff import CatalogDiff, FieldChange, diff_catalogs
from router.services.catalogs._files import (
    BUNDLED_POLICIES,
    DocumentReadError,
    bundled_catalog,
    bundled_policy_document,
    load_catalog,
    load_policy,
    parse_json_text,
    read_json,
)
from router.services.catalogs._health import CatalogHealth, catalog_health
from router.services.catalogs._imports import (
    PRICE_SIGNIFICANT_DIGITS,
    UNSPECIFIED_REGION,
    CatalogImportError,
    ImportResult,
    ImportSummary,
    Source,
)
from router.services.catalogs._litellm import CAPABILITY_NAMES, normalize_provider, parse_key
from router.services.catalogs._overlay import Overlay, OverlayRule, parse_overlay
from router.services.catalogs._pipeline import (
    import_litellm_document,
    import_litellm_file,
    import_openrouter_document,
    import_openrouter_file,
    load_overlay,
)
from router.services.catalogs._regions import GEOGRAPHIES, location_region
from router.services.catalogs._schedule import (
    SYNC_SETTING,
    CatalogSyncer,
    SyncSchedule,
    SyncSettingError,
    parse_sync_setting,
)
from router.services.catalogs._sync import (
    SOURCE_URLS,
    CatalogFetchError,
    Published,
    SyncOutcome,
    SyncSourceError,
    SyncSources,
    derived_fact_urls,
    fetch_source,
    import_fetched,
    sync_catalog,
    sync_sources,
)
from router.services.catalogs._vocabulary import (
    CAPABILITIES,
    VENDOR_SPELLINGS,
    canonical_vendor,
    vendor_of_model,
)

__all__ = [
    "BUNDLED_POLICIES",
    "CAPABILITIES",
    "CAPABILITY_NAMES",
    "GEOGRAPHIES",
    "PRICE_SIGNIFICANT_DIGITS",
    "SOURCE_URLS",
    "SYNC_SETTING",
    "UNSPECIFIED_REGION",
    "VENDOR_SPELLINGS",
    "CatalogDiff",
    "CatalogFetchError",
    "CatalogHealth",
    "CatalogImportError",
    "CatalogSyncer",
    "DocumentReadError",
    "FieldChange",
    "ImportResult",
    "ImportSummary",
    "Overlay",
    "OverlayRule",
    "Published",
    "Source",
    "SyncOutcome",
    "SyncSchedule",
    "SyncSettingError",
    "SyncSourceError",
    "SyncSources",
    "bundled_catalog",
    "bundled_policy_document",
    "canonical_vendor",
    "catalog_health",
    "derived_fact_urls",
    "diff_catalogs",
    "fetch_source",
    "import_fetched",
    "import_litellm_document",
    "import_litellm_file",
    "import_openrouter_document",
    "import_openrouter_file",
    "load_catalog",
    "load_overlay",
    "load_policy",
    "location_region",
    "normalize_provider",
    "parse_json_text",
    "parse_key",
    "parse_overlay",
    "parse_sync_setting",
    "read_json",
    "sync_catalog",
    "sync_sources",
    "vendor_of_model",
]
