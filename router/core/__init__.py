"""The pure policy core: policy IR, fingerprint, catalog model, evaluator (no I/O, no clock)."""

from router.core._catalog import (
    ATTRIBUTE_TYPES,
    COST_PER_RUN,
    KNOWN_ATTRIBUTE_TYPES,
    REQUIRED_ATTRIBUTES,
    AttrType,
    AttrValue,
    Catalog,
    CatalogEntry,
)
from router.core._errors import (
    CatalogError,
    EntryNotFoundError,
    InputError,
    Issue,
    MissingTokensError,
    NoEntryPasses,
    PolicyError,
    RequestError,
    RouterError,
)

__all__ = [
    "ATTRIBUTE_TYPES",
    "COST_PER_RUN",
    "KNOWN_ATTRIBUTE_TYPES",
    "REQUIRED_ATTRIBUTES",
    "AttrType",
    "AttrValue",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "EntryNotFoundError",
    "InputError",
    "Issue",
    "MissingTokensError",
    "NoEntryPasses",
    "PolicyError",
    "RequestError",
    "RouterError",
]
