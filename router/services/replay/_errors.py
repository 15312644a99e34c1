"""Errors of the replay engine (all derive from `router.core.RouterError`)."""

from __future__ import annotations

from router.core import RouterError

__all__ = ["ReplayError"]


class ReplayError(RouterError):
    """Bad replay input (filters, ids, catalog or policy references) or an unreadable record."""
