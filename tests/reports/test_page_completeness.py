"""Completeness of a tenant's page of decisions (docs/http.md, "Completeness of a page"): the
page names its neighbours and seals in the tenant's sequence; `verify_page` checks them and the
page's decisions against the leaves and inclusion proofs of the versions it covers. A decision
left out of a page — and the page rebuilt as a server could (rows renumbered, neighbours moved)
— fails naming completeness. Run on both backends through the service (the HTTP routes are
tested in tests/gateway/test_page_completeness_http.py)."""

from __future__ import annotations

import copy
from typing import Any

from reports import event_line, export_parquet, verify_page
from router.services.decisions import DecisionService
from tests.reports.support import populate
from tests.support.service_backends import Backend


async def _page(service: DecisionService, tenant: str, limit: int, cursor: str | None) -> Any:
    """The page and its sequence answer, shaped as `GET /x/decisions` and `GET /x/sequences`."""
    page = await service.decisions(tenant=tenant, limit=limit, cursor=cursor)
    proof = await service.page_completeness(tenant, page, cursor)
    body = {
        "data": [d.to_json() for d in page.decisions],
        "next_cursor": page.next_cursor,
        "completeness": proof.to_json(),
    }
    events, proofs, head = await service.sequence_events(
        tenant, proof.first_version, proof.to_version
    )
    answer = {
        "stream": proof.stream,
        "checkpoint": head.note,
        "verifier_key": head.verifier_key,
        "tree_size": head.tree_size,
        "events": [event_line(e, p.document()) for e, p in zip(events, proofs, strict=True)],
    }
    return body, answer


async def test_every_page_proves_it_is_complete(backend: Backend, tmp_path: Any) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)  # acme: versions 1..4
        # A seal in the middle of the sequence (version 5), as a tenant's export appends it.
        await export_parquet(service.ledger, tmp_path / "acme", tenant="acme", prove=True)
        await populate(service, rounds=1)  # acme: versions 6..9
        key = service.ledger.public_key()
        pages = []
        cursors: list[int | None] = []
        cursor = None
        while True:
            body, answer = await _page(service, "acme", 3, cursor)
            pages.append((body, answer))
            cursors.append(None if cursor is None else int(cursor))
            cursor = body["next_cursor"]
            if cursor is None:
                break
    assert [[d["sequence"] for d in b["data"]] for b, _ in pages] == [[1, 2, 3], [4, 6, 7], [8, 9]]
    first, middle, last = (b["completeness"] for b, _ in pages)
    assert first["lower"] is None
    assert first["upper"]["version"] == 4
    assert middle["lower"]["version"] == 3
    assert [s["version"] for s in middle["seals"]] == [5]
    assert middle["seals"][0]["type"] == "DecisionsSealed"
    assert middle["upper"]["version"] == 8
    assert last["upper"] is None
    for (body, answer), after in zip(pages, cursors, strict=True):
        result = verify_page(body, answer, key, cursor=after)
        assert result.problems == []
    last_notes = verify_page(*pages[-1], key, cursor=cursors[-1]).notes
    assert any(n.startswith("nothing proves") for n in last_notes)
    # A page whose proof is for another cursor than the one it was asked with.
    assert any("was asked after" in p for p in verify_page(*pages[1], key, cursor=None).problems)

    # Every decision left out, page by page; then also renumbered, or the neighbours moved.
    for (body, answer), after in zip(pages, cursors, strict=True):
        for index, row in enumerate(body["data"]):
            dropped = copy.deepcopy(body)
            del dropped["data"][index]
            renumbered = copy.deepcopy(dropped)
            for later in renumbered["data"][index:]:
                later["sequence"] -= 1
            for name, forged in (("dropped", dropped), ("renumbered", renumbered)):
                found = verify_page(forged, answer, key, cursor=after)
                what = f"{name}: version {row['sequence']}"
                assert found.problems, what
                assert all(p.startswith("completeness: ") for p in found.problems), (
                    what,
                    found.problems,
                )
    body, answer = pages[1]
    middle_cursor = cursors[1]
    # The last decision left out, the page ending before it: its own version is the upper
    # neighbour the proof names, so the page must name it (and the next page starts with it).
    shortened = copy.deepcopy(body)
    shortened["data"].pop()
    assert verify_page(shortened, answer, key, cursor=middle_cursor).problems
    # The seal left out of the page's list.
    unsealed = copy.deepcopy(body)
    unsealed["completeness"]["seals"] = []
    found = verify_page(unsealed, answer, key, cursor=middle_cursor)
    assert any("is not listed" in p for p in found.problems)
    # A version left out of the sequence answer.
    thin = copy.deepcopy(answer)
    del thin["events"][2]
    found = verify_page(body, thin, key, cursor=middle_cursor)
    assert any("not among the proven events" in p for p in found.problems)
    # A page claiming to be the last while the sequence goes on with a decision.
    early = copy.deepcopy(pages[0][0])
    early["next_cursor"] = None
    found = verify_page(early, pages[0][1], key, cursor=None)
    assert any("says it is the last" in p for p in found.problems)
    # The sequence answer's leaves are proven: a forged one is refused.
    forged_answer = copy.deepcopy(answer)
    forged_answer["events"][1]["stream_version"] += 100
    found = verify_page(body, forged_answer, key, cursor=middle_cursor)
    assert any("/leaf_hash" in p for p in found.problems)


async def test_an_empty_page_and_a_tenant_without_a_sequence(backend: Backend) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        body, answer = await _page(service, "acme", 10, None)  # signs a checkpoint
        key = service.ledger.public_key()
        assert body["next_cursor"] is None
        cursor = str(body["data"][-1]["position"])
        after, after_answer = await _page(service, "acme", 10, cursor)
        nobody = await service.decisions(tenant="nobody", limit=10)
        none = await service.page_completeness("nobody", nobody, None)
    assert verify_page(body, answer, key, cursor=None).ok
    # After the last decision: an empty page whose lower neighbour is the last decision.
    assert after["data"] == []
    assert after["completeness"]["lower"]["version"] == 4
    assert after["completeness"]["upper"] is None
    assert verify_page(after, after_answer, key, cursor=int(cursor)).ok
    assert (none.lower, none.upper, none.to_version) == (None, None, 0)


async def test_a_cursor_past_every_event(backend: Backend) -> None:
    """The largest cursor there can be: an empty page whose lower neighbour is the tenant's last
    event (the count of its events has no position bound to overflow)."""
    async with backend.service() as service:
        await populate(service, rounds=1)
        body, answer = await _page(service, "acme", 10, str(2**63 - 1))
        key = service.ledger.public_key()
    assert body["data"] == []
    assert body["completeness"]["lower"]["version"] == 4
    assert verify_page(body, answer, key, cursor=2**63 - 1).ok
