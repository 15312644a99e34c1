"""The manifest of an export folder (`manifest.json`): what each export into it covered, so
`export parquet --append` adds exactly what is new (docs/reports.md, "Incremental export").

Each export (the first and every append) covers a ledger position range [`from_position`,
`to_position`) and names the latest signed checkpoint of the ledger when it ran; an append
starts where the last one stopped, keeps the first export's tenant and period, and writes only
the shared rows (outcomes, groups, catalogs, policies) the folder does not hold yet."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ledger import SignedCheckpoint
from reports._errors import ReportsError

__all__ = ["EXPORT_FORMAT", "MANIFEST", "FolderManifest", "written_keys"]

EXPORT_FORMAT = "unhardcoded-export/1"
MANIFEST = "manifest.json"
_PROOF = ("completeness", "completeness_proof")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FolderManifest:
    """An export folder's manifest: the selection (tenant, period) and one record per export."""

    tenant: str | None
    since: str | None
    until: str | None
    exports: list[dict[str, Any]]
    proof: dict[str, Any] | None = None
    """A tenant's folder: its `completeness` and `completeness_proof` members, which cover the
    whole folder (`reports._folderproof`)."""

    @classmethod
    def new(
        cls, tenant: str | None, since: datetime | None, until: datetime | None
    ) -> FolderManifest:
        """The manifest of a folder before its first export."""
        return cls(tenant, _iso(since), _iso(until), [])

    @classmethod
    def read(cls, base: Path) -> FolderManifest:
        """The manifest of `base` (ReportsError when it is not an export folder)."""
        path = base / MANIFEST
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReportsError(
                f"{base}: no {MANIFEST} (--append adds to a folder written by export parquet)"
            ) from None
        except (OSError, ValueError) as exc:
            raise ReportsError(f"{path}: not readable as an export manifest ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
            raise ReportsError(f"{path}/format: expected {EXPORT_FORMAT!r}")
        exports = document.get("exports")
        if not isinstance(exports, list) or not exports:
            raise ReportsError(f"{path}/exports: expected a non-empty list of exports")
        proof = {k: document[k] for k in _PROOF if k in document} or None
        return cls(
            document.get("tenant"), document.get("since"), document.get("until"), exports, proof
        )

    def check_selection(
        self, tenant: str | None, since: datetime | None, until: datetime | None
    ) -> None:
        """Refuse an append whose selection is not the folder's (its rows would not add up)."""
        given = {"tenant": tenant, "since": _iso(since), "until": _iso(until)}
        held = {"tenant": self.tenant, "since": self.since, "until": self.until}
        for name, value in given.items():
            if value is not None and value != held[name]:
                raise ReportsError(
                    f"--{name}: {value!r} is not the folder's {held[name]!r} ({MANIFEST}): an "
                    "append keeps the selection of the first export"
                )

    @property
    def next_position(self) -> int:
        """The first ledger position the folder does not cover."""
        return int(self.exports[-1]["to_position"])

    def add(
        self,
        low: int,
        high: int,
        checkpoint: SignedCheckpoint | None,
        rows: dict[str, int],
    ) -> dict[str, Any]:
        """Record an export of positions [`low`, `high`)."""
        signed = None
        if checkpoint is not None:
            signed = {
                "tree_size": checkpoint.tree_size,
                "root_sha256": checkpoint.root_hash.hex(),
                "verifier_key": checkpoint.verifier_key,
                "covers_range": checkpoint.tree_size >= high,
                "note": checkpoint.note,
            }
        record = {
            "from_position": low,
            "to_position": high,
            "exported_at": _iso(datetime.now(UTC)),
            "checkpoint": signed,
            "rows": dict(rows),
        }
        self.exports.append(record)
        return record

    def write(self, base: Path) -> None:
        """Write the manifest (atomically: a reader never sees half of it)."""
        document = {
            "format": EXPORT_FORMAT,
            "tenant": self.tenant,
            "since": self.since,
            "until": self.until,
            "exports": self.exports,
            **(self.proof or {}),
        }
        scratch = base / f".{MANIFEST}.partial"
        scratch.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(scratch, base / MANIFEST)


_WRITTEN = {
    "catalogs": "SELECT DISTINCT 'c', catalog_version FROM {}",
    "policies": "SELECT DISTINCT 'p', digest FROM {}",
    "eliminations": "SELECT DISTINCT 'e', outcome_digest, policy_digest FROM {}",
    "rankings": (
        "SELECT DISTINCT 'g', outcome_digest, order_digest, policy_digest, tokens_in, tokens_out "
        "FROM {}"
    ),
}


def written_keys(base: Path) -> set[tuple[Any, ...]]:
    """The shared rows an export folder holds already, as `RowBuilder.written` keys."""
    keys: set[tuple[Any, ...]] = set()
    con = duckdb.connect(config={"threads": 2})
    try:
        for name, query in _WRITTEN.items():
            files = sorted(str(p) for p in (base / name).rglob("*.parquet"))
            if files:
                source = f"read_parquet({files!r})"
                keys.update(tuple(row) for row in con.execute(query.format(source)).fetchall())
    finally:
        con.close()
    return keys
