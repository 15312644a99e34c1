"""`GET /x/decisions` pages of one tenant prove they are complete (docs/http.md, "Completeness
of a page"): walked page by page over real HTTP, each page and the `GET /x/sequences` answer its
`proofs` path names verify with `reports.verify_page`; a decision dropped from a page does not."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from reports import verify_page
from tests.gateway._harness import EU_POLICY, Gateway

CHAT = {"model": "x", "messages": [{"role": "user", "content": "hello"}]}


def _get(gateway: Gateway, path: str, key: str) -> httpx.Response:
    return httpx.get(f"{gateway.root}{path}", headers=gateway.auth(key))


def _record(gateway: Gateway, key: str) -> None:
    response = httpx.post(
        f"{gateway.root}/x/rank",
        headers=gateway.auth(key),
        json={"policy": EU_POLICY, "request": CHAT, "record": True},
    )
    assert response.status_code == 200, response.text


Page = tuple[dict[str, Any], dict[str, Any], int | None]


def _walk(gateway: Gateway, key: str, query: str) -> list[Page]:
    """Every page (its body, its sequence answer, the cursor it was asked with)."""
    pages: list[Page] = []
    cursor: int | None = None
    while True:
        after = "" if cursor is None else f"&cursor={cursor}"
        page = _get(gateway, f"/x/decisions?limit=2{query}{after}", key)
        assert page.status_code == 200, page.text
        body = page.json()
        proofs = _get(gateway, body["completeness"]["proofs"], key)
        assert proofs.status_code == 200, proofs.text
        pages.append((body, proofs.json(), cursor))
        if body["next_cursor"] is None:
            return pages
        cursor = int(body["next_cursor"])


def test_pages_of_a_tenant_prove_they_are_complete(gateway: Gateway) -> None:
    for _ in range(3):
        _record(gateway, "acme")
        _record(gateway, "globex")
    _record(gateway, "acme")
    key = _get(gateway, "/x/checkpoints/latest", "acme").json()["verifier_key"]
    # A tenant-scoped key's pages are its tenant's; a read:all key asks with tenant=.
    for who, query in (("acme", ""), ("auditor", "&tenant=acme")):
        pages = _walk(gateway, who, query)
        assert [[d["sequence"] for d in page[0]["data"]] for page in pages] == [[1, 2], [3, 4]]
        for body, answer, cursor in pages:
            assert verify_page(body, answer, key, cursor=cursor).problems == []
    body, answer, _ = pages[0]
    assert body["completeness"]["proofs"] == "/x/sequences/acme?from_version=1&to_version=3"
    dropped = copy.deepcopy(body)
    del dropped["data"][0]
    problems = verify_page(dropped, answer, key, cursor=None).problems
    assert problems
    assert all(p.startswith("completeness: ") for p in problems)
    # Every tenant's page (read:all without tenant=) carries no completeness proof.
    assert "completeness" not in _get(gateway, "/x/decisions", "auditor").json()


def test_the_sequence_route_is_scoped_and_validated(gateway: Gateway) -> None:
    _record(gateway, "acme")
    path = "/x/sequences/acme?from_version=1&to_version=1"
    assert _get(gateway, path, "acme").status_code == 200
    assert _get(gateway, path, "auditor").status_code == 200
    assert _get(gateway, path, "globex").status_code == 404
    assert _get(gateway, "/x/sequences/acme?from_version=0&to_version=1", "acme").status_code == 400
    too_many = "/x/sequences/acme?from_version=1&to_version=5000"
    response = _get(gateway, too_many, "acme")
    assert response.status_code == 400
    assert "at most 1000 versions" in response.json()["error"]["message"]
    answer = _get(gateway, "/x/sequences/acme?from_version=1&to_version=9", "acme").json()
    assert [e["stream_version"] for e in answer["events"]] == [1]
    assert answer["stream"] == "decisions/acme"
