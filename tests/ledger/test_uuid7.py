"""`ledger.uuid7`: the event ids the ledger gives, and services give the events they name."""

from __future__ import annotations

from ledger import uuid7


def test_uuid7_is_time_ordered_and_version_7() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(u.version == 7 and u.variant == "specified in RFC 4122" for u in ids)
    assert [u.int >> 80 for u in ids] == sorted(u.int >> 80 for u in ids)
    assert len(set(ids)) == len(ids)
