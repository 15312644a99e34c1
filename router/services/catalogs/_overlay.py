"""Overlay files: what no public source has (bench scores, `no_log`, approvals, custom attributes,
region pins), set on imported entries by rules matched on the entry id.

::

    name: example                 # optional (default: the file's stem); provenance: overlay:<name>
    schema:                       # optional: types of custom attributes
      approved: boolean
    rules:
      - match: "openai/gpt-4o@*"  # an fnmatch glob or exact id, or a list of them
        set: {bench_intelligence: 0.74, no_log: false}
      - match: "mistral/*@unspecified"
        set: {region: eu}         # a region pin: the id is rebuilt (mistral/<model>@eu)

Rules apply in file order, overlays in command-line order; a later rule wins. Each rule matches
the ids as they are when it applies (after earlier pins). A rule matching nothing is a warning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

import yaml

from router.core import ATTRIBUTE_TYPES, COST_PER_RUN, KNOWN_ATTRIBUTE_TYPES, Issue
from router.services.catalogs._imports import (
    CatalogImportError,
    Draft,
    ImportSummary,
    Issues,
    Source,
    entry_id,
    pointer,
)

ID_PARTS = ("provider", "model", "region", "location")
"""Attributes the id is built from; setting one rebuilds the id."""

_OVERLAY_KEYS = ("name", "as_of", "schema", "rules")
_RULE_KEYS = ("match", "set", "source", "as_of")

SOURCE_SUFFIX = "_source"
"""A rule with a `source` URL also sets `<attr>_source` to that URL for each value it sets, so
every sourced value carries its provenance in the entry itself."""
AS_OF_SUFFIX = "_as_of"
"""...and `<attr>_as_of` to the date the value was checked against that source (the rule's
`as_of`, else the overlay's), when one is stated."""
_URL = re.compile(r"https?://\S+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class OverlayRule:
    """One rule: the globs it matches ids with, and the attributes it sets."""

    pointer: str
    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    values: Mapping[str, Any]
    source: str | None = None
    as_of: str | None = None

    def settings(self) -> dict[str, Any]:
        """What the rule sets: its values and, when it has a source, `<attr>_source` (and
        `<attr>_as_of` when a date is stated) for each."""
        if self.source is None:
            return dict(self.values)
        sources = {f"{attr}{SOURCE_SUFFIX}": self.source for attr in self.values}
        dates = {f"{attr}{AS_OF_SUFFIX}": self.as_of for attr in self.values} if self.as_of else {}
        return {**self.values, **sources, **dates}


@dataclass(frozen=True)
class Overlay:
    """A parsed, validated overlay file."""

    source: Source
    file: str
    schema: Mapping[str, str]
    rules: tuple[OverlayRule, ...]


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, but a duplicate mapping key is an error (PyYAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, file: str) -> Any:
    """Parse YAML strictly (safe types only, no duplicate keys); errors name the line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        issue = Issue("", "text", "YAML", f"invalid YAML{where}: {problem}")
        raise CatalogImportError(file, [issue]) from None
    except RecursionError:
        # PyYAML's composer and constructor recurse once per nesting level.
        issue = Issue("", "text", "YAML", "invalid YAML: nested too deeply")
        raise CatalogImportError(file, [issue]) from None


def value_type(value: object) -> str | None:
    """The catalog attribute type of an overlay value, or None when it is not one."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "string_list"
    return None


def parse_overlay(document: object, file: str, sha256: str, default_name: str) -> Overlay:
    """Validate an overlay document; raise `CatalogImportError` with pointers into the file."""
    issues = Issues(file)
    if not isinstance(document, dict):
        issues.add("", document, "an overlay object with a rules list")
        raise CatalogImportError(file, issues.items)
    for key in document:
        if key not in _OVERLAY_KEYS:
            issues.add(
                pointer(str(key)),
                key,
                "one of: " + ", ".join(_OVERLAY_KEYS),
                f"unknown key {key!r}",
            )
    name = document.get("name", default_name)
    if not isinstance(name, str) or not name:
        issues.add("/name", name, "a non-empty string")
        name = default_name
    as_of = _date(document.get("as_of"), "/as_of", issues)
    schema = _parse_schema(document.get("schema"), issues)
    raw_rules = document.get("rules")
    rules: list[OverlayRule] = []
    if not isinstance(raw_rules, list):
        issues.add("/rules", raw_rules, "a list of rules")
    else:
        for i, raw in enumerate(raw_rules):
            rule = _parse_rule(raw, pointer("rules", i), schema, issues, as_of)
            if rule is not None:
                rules.append(rule)
    issues.raise_if_any()
    source = Source("overlay", file, sha256, name, as_of or "")
    return Overlay(source, file, schema, tuple(rules))


def _date(raw: object, where: str, issues: Issues) -> str | None:
    """A checked-on date `YYYY-MM-DD` (a quoted YAML string), or None with an issue."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not _DATE.fullmatch(raw):
        hint = " (quote dates in YAML)" if type(raw).__name__ == "date" else ""
        issues.add(where, raw, "the date the values were checked, YYYY-MM-DD" + hint)
        return None
    return raw


def _parse_schema(raw: object, issues: Issues) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        issues.add("/schema", raw, "an object mapping attribute names to types")
        return {}
    schema: dict[str, str] = {}
    for attr, kind in raw.items():
        where = pointer("schema", str(attr))
        if kind not in ATTRIBUTE_TYPES:
            issues.add(where, kind, "one of: " + ", ".join(ATTRIBUTE_TYPES))
        elif attr in KNOWN_ATTRIBUTE_TYPES and KNOWN_ATTRIBUTE_TYPES[attr] != kind:
            issues.add(
                where,
                kind,
                KNOWN_ATTRIBUTE_TYPES[attr],
                f"{attr} is always {KNOWN_ATTRIBUTE_TYPES[attr]}",
            )
        else:
            schema[str(attr)] = str(kind)
    return schema


def _parse_rule(
    raw: object, base: str, schema: Mapping[str, str], issues: Issues, as_of: str | None
) -> OverlayRule | None:
    if not isinstance(raw, dict):
        issues.add(base, raw, "a rule object with match and set")
        return None
    before = len(issues.items)
    for key in raw:
        if key not in _RULE_KEYS:
            issues.add(
                f"{base}{pointer(str(key))}",
                key,
                "match, set, source or as_of",
                f"unknown key {key!r}",
            )
    source = raw.get("source")
    if source is not None and (not isinstance(source, str) or not _URL.fullmatch(source)):
        issues.add(f"{base}/source", source, "the URL the values come from")
    checked = _date(raw.get("as_of"), f"{base}/as_of", issues) or as_of
    match = raw.get("match")
    patterns = [match] if isinstance(match, str) else match
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        issues.add(f"{base}/match", match, "an entry id or glob, or a non-empty list of them")
        patterns = []
    values = raw.get("set")
    if not isinstance(values, dict) or not values:
        issues.add(f"{base}/set", values, "a non-empty object of attribute values")
        values = {}
    for attr, value in values.items():
        where = f"{base}/set{pointer(str(attr))}"
        kind = value_type(value)
        expected = KNOWN_ATTRIBUTE_TYPES.get(attr) or schema.get(attr)
        if attr in ("id", COST_PER_RUN):
            issues.add(
                where,
                attr,
                "an attribute an overlay may set",
                f"{attr} cannot be set: "
                + (
                    "it is built from provider, model and region"
                    if attr == "id"
                    else "it is computed per decision"
                ),
            )
        elif kind is None:
            hint = " (quote dates in YAML)" if type(value).__name__ in ("date", "datetime") else ""
            issues.add(
                where,
                value,
                "a string, finite number, boolean or list of strings",
                f"expected a string, finite number, boolean or list of strings{hint}, "
                f"found {type(value).__name__}",
            )
        elif expected is not None and expected != kind:
            issues.add(where, value, expected, f"{attr} is {expected}, found {kind}")
        elif attr in ("price_in", "price_out") and value < 0:
            issues.add(where, value, "a non-negative price in USD per million tokens")
    if len(issues.items) != before:
        return None
    regex = re.compile("|".join(f"(?:{translate(p)})" for p in patterns))
    return OverlayRule(base, tuple(patterns), regex, dict(values), source, checked)


def _types_of(drafts: Sequence[Draft]) -> dict[str, str]:
    seen: dict[str, str] = dict(KNOWN_ATTRIBUTE_TYPES)
    for draft in drafts:
        for attr, value in draft.attributes.items():
            if attr not in seen and (kind := value_type(value)) is not None:
                seen[attr] = kind
    return seen


def apply_overlays(
    drafts: list[Draft],
    overlays: Sequence[Overlay],
    summary: ImportSummary,
    overrides: dict[str, dict[str, str]] | None = None,
) -> tuple[list[Draft], dict[str, dict[str, str]], dict[str, str]]:
    """Apply the overlays' rules in order. Returns the edited drafts, the provenance overrides
    (id → attribute → `overlay:<name>#<rule pointer>`, added to `overrides` when given: the
    provenance of values set before the overlays) and the declared schema of all overlays."""
    types = _types_of(drafts)
    schema: dict[str, str] = {}
    overrides = {} if overrides is None else overrides
    by_id = {d.id: d for d in drafts}
    for overlay in overlays:
        issues = Issues(overlay.file)
        for attr, kind in overlay.schema.items():
            if types.get(attr, kind) != kind:
                issues.add(
                    pointer("schema", attr),
                    kind,
                    types[attr],
                    f"{attr} is {types[attr]} in the catalog, declared {kind}",
                )
            types[attr] = kind
            schema[attr] = kind
        for rule in overlay.rules:
            settings = rule.settings()
            for attr, value in settings.items():
                value_kind = value_type(value)
                if attr in types and types[attr] != value_kind:
                    issues.add(
                        f"{rule.pointer}/set{pointer(attr)}",
                        value,
                        types[attr],
                        f"{attr} is {types[attr]} in the catalog, found {value_kind}",
                    )
                elif value_kind is not None:
                    types[attr] = value_kind
            issues.raise_if_any()
            matched = [d for ident, d in by_id.items() if rule.regex.fullmatch(ident)]
            if not matched:
                summary.warnings.append(
                    f"{overlay.file} {rule.pointer}: match {list(rule.patterns)} matched no entry"
                )
            tag = f"{overlay.source.tag}#{rule.pointer}"
            for draft in matched:
                old_id = draft.id
                draft.attributes.update(settings)
                record = overrides.pop(old_id, {})
                record.update(dict.fromkeys(settings, tag))
                if any(part in rule.values for part in ID_PARTS):
                    attrs = draft.attributes
                    new_id = entry_id(
                        attrs["provider"], attrs["model"], attrs.get("location") or attrs["region"]
                    )
                    if new_id != old_id:
                        if new_id in by_id:
                            issues.add(
                                f"{rule.pointer}/set",
                                rule.values,
                                "a pin to an id not yet taken",
                                f"entry {old_id} would become {new_id}, which already exists",
                            )
                            issues.raise_if_any()
                        del by_id[old_id]
                        attrs["id"] = new_id
                        by_id[new_id] = draft
                        record["id"] = tag
                overrides[draft.id] = record
    return sorted(by_id.values(), key=lambda d: d.id), overrides, schema
