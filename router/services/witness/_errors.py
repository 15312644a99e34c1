"""Errors of the witness (all derive from `router.core.RouterError`). Each refusal of
`add-checkpoint` carries the HTTP status c2sp.org/tlog-witness prescribes for it."""

from __future__ import annotations

from router.core import RouterError

__all__ = [
    "WitnessBadRequestError",
    "WitnessConflictError",
    "WitnessError",
    "WitnessForbiddenError",
    "WitnessInconsistentError",
    "WitnessUnknownLogError",
]


class WitnessError(RouterError):
    """A witness could not be set up or used (state folder, key, configuration)."""

    status = 500


class WitnessBadRequestError(WitnessError):
    """The add-checkpoint request is malformed (400)."""

    status = 400


class WitnessForbiddenError(WitnessError):
    """No signature on the checkpoint verifies with the log's key (403)."""

    status = 403


class WitnessUnknownLogError(WitnessError):
    """The checkpoint's origin is not a log this witness is configured for (404)."""

    status = 404


class WitnessConflictError(WitnessError):
    """The old size is not the size the witness last cosigned, or the same size comes with
    another root hash (409). `size` is the witness's latest cosigned size for the log."""

    status = 409

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class WitnessInconsistentError(WitnessError):
    """The consistency proof does not lead from the cosigned tree to the submitted one (422)."""

    status = 422
