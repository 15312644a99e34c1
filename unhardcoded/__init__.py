"""Composition root: settings, the FastAPI app and the `unhardcoded` command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unhardcoded")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
