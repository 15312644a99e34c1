"""The decision record runs on both real backends (see tests/support/service_backends.py)."""

from tests.support.service_backends import Backend, backend

__all__ = ["Backend", "backend"]
