"""Catalog and policy documents: files, stdin, the bundled illustrative catalog (and, beside these
modules, the importers)."""

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

__all__ = [
    "BUNDLED_POLICIES",
    "DocumentReadError",
    "bundled_catalog",
    "bundled_policy_document",
    "load_catalog",
    "load_policy",
    "parse_json_text",
    "read_json",
]
