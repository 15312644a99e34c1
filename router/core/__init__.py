"""The pure policy core: policy IR, fingerprint, catalog model, evaluator (no I/O, no clock)."""

from router.core._errors import RouterError

__all__ = ["RouterError"]
