"""The one error root of the router package. Every error the router raises derives from it, so the
HTTP layer and the CLI translate errors in exactly one place each."""

from __future__ import annotations


class RouterError(Exception):
    """Root of every error raised by `router`."""
