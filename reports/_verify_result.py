"""What the offline verifiers answer (`verify_bundle`, `verify_export`), and the verifier key
they are given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger import LedgerError, VerifierKey, parse_verifier_key
from reports._errors import ReportsError
from reports._witnesses import key_argument

__all__ = ["BundleVerification", "ExportVerification", "Verification", "given_key"]


@dataclass(kw_only=True)
class Verification:
    """The outcome of an offline verification: `ok` when `problems` is empty."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    decisions: int = 0
    events: int = 0
    tree_size: int | None = None
    key: str | None = None
    key_source: str = ""
    completeness: dict[str, Any] | None = None
    """What the completeness proof proves (docs/bundles.md), None when nothing is proven."""

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems

    def _json(self, subject: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        return {
            **subject,
            "ok": self.ok,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "decisions": self.decisions,
            "events": self.events,
            "tree_size": self.tree_size,
            "verifier_key": self.key,
            "key_source": self.key_source,
            **extra,
            "completeness": self.completeness,
        }


@dataclass
class BundleVerification(Verification):
    """The outcome of `verify_bundle`."""

    bundle: str
    key_source: str = field(default="bundle", kw_only=True)
    witnesses: list[dict[str, Any]] = field(default_factory=list)
    quorum: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return self._json(
            {"bundle": self.bundle}, {"witnesses": list(self.witnesses), "quorum": self.quorum}
        )


@dataclass
class ExportVerification(Verification):
    """The outcome of `verify_export`."""

    folder: str
    key_source: str = field(default="folder", kw_only=True)

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return self._json({"folder": self.folder}, {})


def given_key(text: str, option: str = "--key") -> VerifierKey:
    """A verifier key given as the key string itself or as a file holding it."""
    try:
        return parse_verifier_key(key_argument(text, option, "a verifier key"))
    except LedgerError as exc:
        raise ReportsError(f"{option}: {exc}") from None
