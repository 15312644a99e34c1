"""The one error root of the reports package."""

from __future__ import annotations


class ReportsError(Exception):
    """Root of every error raised by `reports`."""
