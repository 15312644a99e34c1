"""The decision service (`router.services.decisions`) seen through the gateway's `DecisionPort`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ledger import Ledger, NotSequencedError
from router.core import Catalog
from router.services.catalogs import bundled_catalog
from router.services.decisions import DecisionNotFoundError, DecisionService
from router.services.gateway._errors import NotFoundError
from router.services.gateway._ports import Attempt, Decided

__all__ = ["LedgerDecisions"]

_CATALOG_TTL_S = 5.0


class LedgerDecisions:
    """Records through `DecisionService` on `ledger`.

    The catalog for new decisions: the `fixed` one (a `--catalog` file) if given, else the latest
    published version (looked up again every few seconds), else the bundled catalog.
    """

    def __init__(
        self,
        ledger: Ledger,
        fixed: Catalog | None = None,
        *,
        service: DecisionService | None = None,
    ) -> None:
        self.ledger = ledger
        self.service = service or DecisionService(ledger)
        self._fixed = fixed
        self._current: tuple[float, Catalog] | None = None

    async def catalog(self) -> Catalog:
        """The catalog version new decisions use."""
        if self._fixed is not None:
            return self._fixed
        now = time.monotonic()
        if self._current is not None and self._current[0] > now:
            return self._current[1]
        catalog = await self.service.latest_catalog() or bundled_catalog()
        self._current = (now + _CATALOG_TTL_S, catalog)
        return catalog

    async def decide(
        self,
        tenant: str,
        policy_document: object,
        catalog: Catalog,
        request_body: Mapping[str, Any],
        *,
        preview: bool = False,
    ) -> Decided:
        """`DecisionService.decide`; the returned `DecisionMade` is durable."""
        recorded = await self.service.decide(
            tenant,
            policy_document,  # type: ignore[arg-type]  # validated by the service
            catalog,
            request_body=request_body,
            preview=preview,
        )
        return Decided(str(recorded.decision_id), recorded.trace, preview, recorded)

    async def record_attempt(self, decided: Decided, attempt: Attempt) -> None:
        """`AttemptFinished` for the attempt (no key, no body: those never reach here)."""
        await self.service.record_attempt(
            decided.record,
            attempt=attempt.number,
            entry=attempt.entry_id,
            status="ok" if attempt.status == "ok" else "error",
            latency_ms=attempt.latency_ms,
            error_class=attempt.error_class,
            http_status=attempt.http_status,
            tokens_in=attempt.prompt_tokens,
            tokens_out=attempt.completion_tokens,
            cost_usd=attempt.cost_usd,
        )

    async def decision(self, decision_id: str) -> Mapping[str, Any]:
        """The full trace with attempts (`NotFoundError` when unknown or not a decision id)."""
        try:
            return (await self.service.decision(_uuid_text(decision_id))).to_json()
        except DecisionNotFoundError:
            raise NotFoundError(f"no decision {decision_id}") from None

    async def decisions(
        self, *, tenant: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        """A page of decision summaries in ledger order, and the next page's cursor."""
        page = await self.service.decisions(tenant=tenant, cursor=cursor, limit=limit)
        return [d.to_json() for d in page.decisions], page.next_cursor

    async def proof(self, decision_id: str) -> Mapping[str, Any]:
        """Inclusion proof of the decision's event, signing a checkpoint first if needed."""
        ref = _uuid_text(decision_id)
        try:
            bundle = await self.ledger.inclusion_proof(ref)
        except NotSequencedError:
            await self.ledger.sequence()
            bundle = await self.ledger.inclusion_proof(ref)
        return bundle.to_json()


def _uuid_text(decision_id: str) -> str:
    """Only UUIDs name decisions here (a bare position would reach any event)."""
    import uuid

    try:
        return str(uuid.UUID(decision_id))
    except ValueError:
        raise NotFoundError(f"no decision {decision_id!r} (decision ids are UUIDs)") from None
