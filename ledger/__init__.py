"""The ledger: an append-only, tamper-evident event store (DESIGN §5).

It knows nothing of routing.
"""

from ledger._errors import LedgerError

__all__ = ["LedgerError"]
