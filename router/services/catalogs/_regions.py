"""Region vocabulary: coarse geographies (`region`) and the cloud locations (`location`) in them.

`region` is what residency rules test (`["eq", "region", "eu"]`); `location` is the exact cloud
region when a source names one (`eu-west-1`, `us-central1`). The geography of a location follows
the cloud's own naming (AWS `eu-west-2`, London, is `eu`), with the country-level geographies that
Bedrock's cross-region inference profiles also use (`au`, `jp`, `in`) taking precedence over the
broader `apac`. A rule that needs more precision tests `location`.
"""

from __future__ import annotations

import re

GLOBAL = "global"

GEOGRAPHIES = frozenset(
    {"us", "us-gov", "eu", "apac", "au", "jp", "in", "ca", "sa", "me", "af", "mx", GLOBAL}
)
"""Every region value a location or a prefix maps to."""

BEDROCK_PROFILES = frozenset({"us", "us-gov", "eu", "apac", "au", "jp", "in", "ca", GLOBAL})
"""Prefixes of Bedrock cross-region inference profile ids (`eu.anthropic.claude-…`)."""

AZURE_DATA_ZONES: dict[str, str] = {
    "eu": "eu",
    "us": "us",
    "apac": "apac",
    "us-gov": "us-gov",
    "global": GLOBAL,
    "global-standard": GLOBAL,
}
"""Path segments of LiteLLM's Azure keys (`azure/eu/gpt-4o`) → region."""

_AWS = re.compile(
    r"^(us-gov|us|eu|ap|ca|sa|me|af|il|mx)-(north|south|east|west|central|northeast|southeast|northwest|southwest)-\d+$"
)
_GCP = re.compile(
    r"^(us|europe|asia|australia|northamerica|southamerica|me|africa)-(north|south|east|west|central|northeast|southeast|northwest|southwest)\d+$"
)

_AWS_PREFIX = {
    "us-gov": "us-gov",
    "us": "us",
    "eu": "eu",
    "ap": "apac",
    "ca": "ca",
    "sa": "sa",
    "me": "me",
    "il": "me",
    "af": "af",
    "mx": "mx",
}
_GCP_PREFIX = {
    "us": "us",
    "europe": "eu",
    "asia": "apac",
    "australia": "au",
    "northamerica": "ca",
    "southamerica": "sa",
    "me": "me",
    "africa": "af",
}
_EXACT = {
    # AWS Asia Pacific locations inside a country-level geography
    "ap-northeast-1": "jp",
    "ap-northeast-3": "jp",
    "ap-southeast-2": "au",
    "ap-southeast-4": "au",
    "ap-south-1": "in",
    "ap-south-2": "in",
    # Google Cloud
    "asia-northeast1": "jp",
    "asia-northeast2": "jp",
    "asia-south1": "in",
    "asia-south2": "in",
    "northamerica-south1": "mx",
}


def location_region(location: str) -> str | None:
    """The region of a cloud location (`eu-west-1` → `eu`, `us-central1` → `us`, `global` →
    `global`), or None when the string is not a location this table knows."""
    if location == GLOBAL:
        return GLOBAL
    if location in _EXACT:
        return _EXACT[location]
    aws = _AWS.match(location)
    if aws:
        return _AWS_PREFIX[aws.group(1)]
    gcp = _GCP.match(location)
    if gcp:
        return _GCP_PREFIX[gcp.group(1)]
    return None
