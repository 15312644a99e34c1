"""What the gateway needs from the decision service, as a narrow protocol at the gateway's side.

`router.services.decisions.DecisionService` satisfies it; the gateway never records ledger events
itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.core import Catalog, CatalogEntry, Trace

__all__ = ["Attempt", "Decided", "DecisionPort"]


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision, durably recorded (or not, for an unrecorded rank): its id and trace."""

    decision_id: str | None
    trace: Trace
    preview: bool = False
    record: Any = field(default=None, compare=False, repr=False)
    """The decision service's own record of it (what `record_attempt` is given back)."""

    @property
    def fingerprint(self) -> str:
        """The policy fingerprint."""
        return self.trace.policy.fingerprint

    @property
    def catalog_version(self) -> str:
        """The content address of the catalog version the decision saw."""
        return self.trace.catalog.version

    @property
    def plan(self) -> tuple[CatalogEntry, ...]:
        """The fallback plan: the selected entry first."""
        return tuple(self.trace.catalog.entries[i] for i in self.trace.plan)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream attempt as the gateway saw it — never a key, never a body.

    `status` is `ok` or `error`; `error_class` one of `router.services.upstream.ERROR_CLASSES`;
    `key_source` says whose key was used (`operator`, `tenant` or `none`); `echo` marks the local
    echo provider (not a real model).
    """

    number: int
    entry_id: str
    provider: str
    model: str
    status: str
    error_class: str | None
    http_status: int | None
    latency_ms: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    key_source: str = "none"
    echo: bool = False
    streamed: bool = False
    message: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The attempt as the HTTP error body and the logs show it."""
        return {
            "attempt": self.number,
            "entry": self.entry_id,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "error_class": self.error_class,
            "http_status": self.http_status,
            "latency_ms": round(self.latency_ms, 3),
            "usage": None
            if self.prompt_tokens is None
            else {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
            "cost_usd": self.cost_usd,
            "key_source": self.key_source,
            "echo": self.echo,
            "streamed": self.streamed,
            "message": self.message,
        }


class DecisionPort(Protocol):
    """Decide and record (DecisionMade durable on return), record attempts, read decisions."""

    async def catalog(self) -> Catalog:
        """The catalog version new decisions use."""
        ...

    async def decide(
        self,
        tenant: str,
        policy_document: object,
        catalog: Catalog,
        request_body: Mapping[str, Any],
        *,
        preview: bool = False,
    ) -> Decided:
        """Validate, evaluate, durably record `DecisionMade` and return it.

        Raises `PolicyError` / `RequestError` (with JSON pointers) and `NoEntryPasses`.
        """
        ...

    async def record_attempt(self, decided: Decided, attempt: Attempt) -> None:
        """Record one `AttemptFinished` for the decision."""
        ...

    async def decision(self, decision_id: str) -> Mapping[str, Any]:
        """The full trace with attempts; it holds the `tenant`. `NotFoundError` when unknown."""
        ...

    async def decisions(
        self, *, tenant: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        """A page of decision summaries, newest first, and the cursor of the next page."""
        ...

    async def proof(self, decision_id: str) -> Mapping[str, Any]:
        """The inclusion proof bundle of the decision's event."""
        ...
