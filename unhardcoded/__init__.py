"""Composition root: settings, the FastAPI app and the `unhardcoded` command line."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # The version is looked up on first use: importlib.metadata costs every CLI call tens of
    # milliseconds, and only `--version` and the app's OpenAPI document need it.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unhardcoded")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+source"
