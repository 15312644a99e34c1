"""Errors of the decision record (all derive from `router.core.RouterError`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.core import NoEntryPasses, RouterError

if TYPE_CHECKING:
    from router.services.decisions._records import Decision

__all__ = [
    "DecisionError",
    "DecisionNotFoundError",
    "NoEntryPassesRecorded",
    "RecordMismatchError",
    "UnknownCatalogError",
]


class DecisionError(RouterError):
    """Root of the decision record's own errors."""


class DecisionNotFoundError(DecisionError):
    """No `DecisionMade` event has the given id."""


class UnknownCatalogError(DecisionError):
    """No published catalog version matches the given reference (digest, prefix or `latest`)."""


class RecordMismatchError(DecisionError):
    """Recorded data does not decode to a consistent decision: the rebuilt rank order does not
    match its recorded digest, an outcome's digest does not match its content, or an event names
    another policy or catalog than the one it is combined with. Reported with the decision id."""


class NoEntryPassesRecorded(NoEntryPasses):
    """No entry passed, and the decision saying so is durably recorded: `decision` is it (its
    `decision_id` goes into error responses; `trace` says why each entry was removed)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.trace)
