"""The routing and fallback loop: decide (durably), then call the plan's entries in order.

A retryable failure (connect, timeout, 429, 5xx, protocol) moves on to the next entry of the
plan, up to the policy's `max_attempts` (the plan's length); a non-retryable one stops. Every
attempt is recorded as `AttemptFinished`. For streams, fallback happens only until the first
event is in hand: once a byte went to the caller, a failure ends the stream with an error event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from pydantic import SecretStr

from router.core import Catalog, CatalogEntry, Evaluator, NoEntryPasses, Policy, estimate_features
from router.services.gateway._background import ATTEMPT_BATCH_DELAY_S, BackgroundAttempts
from router.services.gateway._errors import AllAttemptsFailedError, BadRequestError
from router.services.gateway._keys import Principal
from router.services.gateway._metrics import Metrics
from router.services.gateway._ports import Attempt, Decided, DecisionPort
from router.services.upstream import (
    Upstream,
    UpstreamError,
    UpstreamResponse,
    UpstreamStream,
    Usage,
    cost_usd,
)

__all__ = ["Completed", "Gateway", "OpenedStream", "split_request"]

#: Fields of the request body that are the gateway's, not the upstream's.
GATEWAY_FIELDS = ("policy",)
ECHO_PROVIDER = "echo"
#: Parsed policies kept per process (most callers send a handful of policies over and over).
POLICY_MEMO_SIZE = 1024


def split_request(body: object) -> tuple[object, dict[str, Any]]:
    """The policy document and the upstream body (OpenAI shape, without gateway fields).

    `BadRequestError` with a JSON pointer when the body is not a chat request object.
    """
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object", pointer="")
    if "policy" not in body:
        raise BadRequestError(
            "missing policy: send a sigma-pol/v1 policy object (openai SDK: extra_body)",
            pointer="/policy",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        # What the OpenAI API refuses too: no provider answers a request without messages.
        raise BadRequestError(
            "messages must be a non-empty list of chat messages", pointer="/messages"
        )
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise BadRequestError("stream must be a boolean", pointer="/stream")
    upstream = {k: v for k, v in body.items() if k not in GATEWAY_FIELDS}
    return body["policy"], upstream


def _memo_text(document: object) -> bytes | None:
    """Sorted-key JSON of a policy document that tells any two different documents apart, or
    None when it is not JSON data. orjson writes it several times faster than json, but writes
    NaN and infinities as null: any null (or an integer beyond 64 bits, which orjson refuses)
    sends the document to json, and a one-byte tag keeps the two encodings from meeting."""
    try:
        text = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        if b"null" not in text:
            return b"o" + text
    except TypeError:
        pass
    try:
        return b"j" + json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Completed:
    """A successful non-streaming request: the decision, the winning entry, the upstream answer."""

    decided: Decided
    entry: CatalogEntry
    response: UpstreamResponse
    attempts: tuple[Attempt, ...]


class OpenedStream:
    """A stream whose first event is in hand (so the entry is final): iterate to relay it.

    Iteration records the attempt when the stream ends, fails or the caller goes away.
    """

    def __init__(
        self,
        gateway: Gateway,
        decided: Decided,
        entry: CatalogEntry,
        number: int,
        stream: UpstreamStream,
        iterator: AsyncIterator[bytes],
        exits: contextlib.AsyncExitStack,
        first: bytes,
        started: float,
        key_source: str,
        attempts: tuple[Attempt, ...],
    ) -> None:
        self.decided = decided
        self.entry = entry
        self.attempts = attempts
        self._gateway = gateway
        self._number = number
        self._stream = stream
        self._iterator = iterator
        self._exits = exits
        self._first = first
        self._started = started
        self._key_source = key_source

    async def events(self) -> AsyncIterator[bytes]:
        """The SSE events, the first one included; an in-stream failure ends with an error event."""
        error: UpstreamError | None = None
        try:
            yield self._first
            async for event in self._iterator:
                yield event
        except UpstreamError as exc:
            error = exc
            yield _error_event(exc)
        finally:
            # The caller may have gone away (the task is being cancelled): still release the
            # upstream connection and record the attempt.
            with anyio.CancelScope(shield=True):
                await self._exits.aclose()
                await self._gateway.finish_stream(self, error)

    @property
    def upstream(self) -> UpstreamStream:
        """The upstream stream (usage and latency are set once it ended)."""
        return self._stream

    @property
    def number(self) -> int:
        """This attempt's number (1 = the selected entry)."""
        return self._number

    @property
    def started(self) -> float:
        """When the attempt started (the gateway clock)."""
        return self._started

    @property
    def key_source(self) -> str:
        """Whose key the attempt used."""
        return self._key_source


def _error_event(exc: UpstreamError) -> bytes:
    body = {"error": {"message": str(exc), "type": "upstream_error", "code": exc.error_class}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


@dataclass(frozen=True, slots=True)
class _Try:
    """One plan entry prepared for its upstream call (see `Gateway._tries`)."""

    number: int
    entry: CatalogEntry
    provider: str
    model: str
    region: str | None
    body: dict[str, Any]
    tenant_key: SecretStr | None
    key_source: str
    started: float


class Gateway:
    """Decide, record, call upstream with fallback. One per process; safe across tasks.

    `attempt_batch_delay_s`: how long a successful attempt's record may wait to share the
    commit of the next append (`BackgroundAttempts`)."""

    def __init__(
        self,
        decisions: DecisionPort,
        upstream: Upstream,
        metrics: Metrics,
        *,
        echo_all: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        attempt_batch_delay_s: float = ATTEMPT_BATCH_DELAY_S,
    ) -> None:
        self.decisions = decisions
        self.upstream = upstream
        self.metrics = metrics
        self.echo_all = echo_all
        self._clock = clock
        self._evaluator = Evaluator()
        self._policies: OrderedDict[bytes, Policy] = OrderedDict()
        self._background = BackgroundAttempts(decisions, metrics, attempt_batch_delay_s)

    async def rank(
        self,
        principal: Principal,
        policy_document: object,
        request_body: Mapping[str, Any] | None,
        *,
        record: bool,
    ) -> Decided:
        """The decision without an upstream call: recorded as a preview, or not recorded at all
        (then evaluated here with the same core: validate, estimate features, evaluate)."""
        catalog = await self.decisions.catalog()
        if record:
            self._background.flush()
            decided = await self.decisions.decide(
                principal.tenant, policy_document, catalog, request_body or {}, preview=True
            )
            self.metrics.labelled(self.metrics.decisions, "preview").inc()
            return decided
        policy = self.policy(policy_document, catalog)
        features = None if request_body is None else estimate_features(request_body)
        trace = self._evaluator.evaluate(policy, catalog, features)
        self.metrics.labelled(self.metrics.decisions, "unrecorded").inc()
        return Decided(None, trace)

    async def decide(
        self, principal: Principal, policy_document: object, body: Mapping[str, Any]
    ) -> Decided:
        """Evaluate and durably record the decision (before any upstream byte)."""
        catalog = await self.decisions.catalog()
        started = self._clock()
        self._background.flush()
        try:
            decided = await self.decisions.decide(
                principal.tenant, self.policy(policy_document, catalog), catalog, body
            )
        except NoEntryPasses:
            self.metrics.labelled(self.metrics.decisions, "no_entry").inc()
            raise
        self.metrics.decide_latency.observe(self._clock() - started)
        self.metrics.labelled(self.metrics.decisions, "routed").inc()
        return decided

    def policy(self, document: object, catalog: Catalog) -> Policy:
        """`Policy.from_json(document, catalog.schema)`, memoized by the SHA-256 of the document's
        sorted-key JSON (`_memo_text`) and the catalog version (a pure function of both). Invalid
        documents are never memoized: each one raises its `PolicyError` again."""
        if isinstance(document, Policy):
            return document
        text = _memo_text(document)
        if text is None:  # not JSON data: let the parser say where and why
            return Policy.from_json(document, catalog.schema)
        key = hashlib.sha256(catalog.version.encode() + b"\n" + text).digest()
        policy = self._policies.get(key)
        if policy is None:
            policy = Policy.from_json(document, catalog.schema)
            self._policies[key] = policy
            if len(self._policies) > POLICY_MEMO_SIZE:
                self._policies.popitem(last=False)
        else:
            self._policies.move_to_end(key)
        return policy

    def target(self, entry: CatalogEntry) -> tuple[str, str, bool]:
        """(provider actually called, model, whether it is the echo provider) for an entry."""
        provider = str(entry.get("provider") or "")
        model = str(entry.get("model") or entry.id)
        echo = self.echo_all or provider == ECHO_PROVIDER
        return (ECHO_PROVIDER if echo else provider), model, echo

    def _tenant_key(
        self, provider: str, provider_keys: Mapping[str, SecretStr]
    ) -> SecretStr | None:
        return provider_keys.get(provider.lower().replace("-", "_"))

    def _attempt(
        self,
        number: int,
        entry: CatalogEntry,
        started: float,
        *,
        usage: Usage | None = None,
        error: UpstreamError | None = None,
        key_source: str = "none",
        streamed: bool = False,
        http_status: int | None = None,
    ) -> Attempt:
        provider, model, echo = self.target(entry)
        cost = None
        if usage is not None:
            price_in, price_out = entry.get("price_in"), entry.get("price_out")
            if isinstance(price_in, int | float) and isinstance(price_out, int | float):
                cost = 0.0 if echo else cost_usd(usage, float(price_in), float(price_out))
        latency = self._clock() - started
        attempt = Attempt(
            number=number,
            entry_id=entry.id,
            provider=provider,
            model=model,
            status="error" if error is not None else "ok",
            error_class=None if error is None else error.error_class,
            http_status=error.status if error is not None else http_status,
            latency_ms=latency * 1000,
            prompt_tokens=None if usage is None else usage.prompt_tokens,
            completion_tokens=None if usage is None else usage.completion_tokens,
            cost_usd=cost,
            key_source=key_source,
            echo=echo,
            streamed=streamed,
            message=None if error is None else str(error),
        )
        metrics = self.metrics
        metrics.labelled(metrics.attempts, provider, attempt.error_class or "ok").inc()
        metrics.labelled(metrics.attempt_latency, provider).observe(latency)
        return attempt

    def _tries(
        self, decided: Decided, body: Mapping[str, Any], provider_keys: Mapping[str, SecretStr]
    ) -> Iterator[_Try]:
        """The plan's entries in order, each prepared for one upstream call; lazy, so each
        attempt's clock starts just before its call."""
        for number, entry in enumerate(decided.plan, start=1):
            provider, model, _ = self.target(entry)
            tenant_key = self._tenant_key(provider, provider_keys)
            if tenant_key is not None:
                key_source = "tenant"
            else:
                config = self.upstream.registry.get(provider)
                has_key = config is not None and config.api_key is not None
                key_source = "operator" if has_key else "none"
            call_body = {**body, "model": model}
            region = entry.get("region")
            yield _Try(
                number,
                entry,
                provider,
                model,
                region if isinstance(region, str) else None,
                call_body,
                tenant_key,
                key_source,
                self._clock(),
            )

    async def _failed(
        self,
        decided: Decided,
        attempts: list[Attempt],
        tried: _Try,
        error: UpstreamError,
        *,
        streamed: bool = False,
    ) -> bool:
        """Record a failed attempt before anything else is tried; whether the plan may go on."""
        attempt = self._attempt(
            tried.number,
            tried.entry,
            tried.started,
            error=error,
            key_source=tried.key_source,
            streamed=streamed,
        )
        attempts.append(attempt)
        self._background.flush()
        await self.decisions.record_attempt(decided, attempt)
        return error.retryable

    async def complete(
        self,
        decided: Decided,
        body: Mapping[str, Any],
        provider_keys: Mapping[str, SecretStr],
    ) -> Completed:
        """Call the plan's entries in order until one answers; `AllAttemptsFailedError` if none."""
        attempts: list[Attempt] = []
        for tried in self._tries(decided, body, provider_keys):
            try:
                response = await self.upstream.complete(
                    tried.body,
                    tried.provider,
                    tried.model,
                    tenant_key=tried.tenant_key,
                    region=tried.region,
                )
            except UpstreamError as exc:
                if not await self._failed(decided, attempts, tried, exc):
                    break
                continue
            attempt = self._attempt(
                tried.number,
                tried.entry,
                tried.started,
                usage=response.usage,
                key_source=tried.key_source,
                http_status=response.status,
            )
            attempts.append(attempt)
            self._background.later(decided, attempt)
            return Completed(decided, tried.entry, response, tuple(attempts))
        raise AllAttemptsFailedError(decided.decision_id or "-", [a.to_json() for a in attempts])

    async def settle(self, decision_id: str) -> None:
        """Wait until the attempts of `decision_id` recorded in the background are durable (a
        read of the decision then sees every attempt the caller was answered from)."""
        await self._background.settle(decision_id)

    async def drain(self) -> None:
        """Wait for every attempt still being recorded (on shutdown, before the ledger closes)."""
        await self._background.drain()

    async def open_stream(
        self,
        decided: Decided,
        body: Mapping[str, Any],
        provider_keys: Mapping[str, SecretStr],
    ) -> OpenedStream:
        """Open the plan's entries in order until one yields its first event."""
        attempts: list[Attempt] = []
        for tried in self._tries(decided, body, provider_keys):
            exits = contextlib.AsyncExitStack()
            try:
                stream = await exits.enter_async_context(
                    self.upstream.stream(
                        tried.body,
                        tried.provider,
                        tried.model,
                        tenant_key=tried.tenant_key,
                        region=tried.region,
                    )
                )
                iterator = aiter(stream)
                first = await anext(iterator)
            except (UpstreamError, StopAsyncIteration) as exc:
                await exits.aclose()
                error = (
                    exc
                    if isinstance(exc, UpstreamError)
                    else _empty_stream(tried.provider, tried.model)
                )
                if not await self._failed(decided, attempts, tried, error, streamed=True):
                    break
                continue
            except BaseException:
                await exits.aclose()
                raise
            return OpenedStream(
                self,
                decided,
                tried.entry,
                tried.number,
                stream,
                iterator,
                exits,
                first,
                tried.started,
                tried.key_source,
                tuple(attempts),
            )
        raise AllAttemptsFailedError(decided.decision_id or "-", [a.to_json() for a in attempts])

    async def finish_stream(self, opened: OpenedStream, error: UpstreamError | None) -> None:
        """Record the attempt of a relayed stream (ended, failed mid-way, or abandoned)."""
        stream = opened.upstream
        if error is None and stream.latency_s is None:
            error = _abandoned(opened)
        attempt = self._attempt(
            opened.number,
            opened.entry,
            opened.started,
            usage=stream.usage,
            error=error,
            key_source=opened.key_source,
            streamed=True,
            http_status=stream.status,
        )
        await self.decisions.record_attempt(opened.decided, attempt)


def _empty_stream(provider: str, model: str) -> UpstreamError:
    from router.services.upstream import UpstreamProtocolError

    return UpstreamProtocolError(
        "stream ended before its first event", provider=provider, model=model
    )


class CallerGoneError(UpstreamError):
    """The caller closed the connection before the relayed stream ended (error class
    `cancelled`: the upstream did nothing wrong)."""

    error_class = "cancelled"
    default_retryable = False


def _abandoned(opened: OpenedStream) -> UpstreamError:
    provider, model = str(opened.entry.get("provider")), str(opened.entry.get("model"))
    return CallerGoneError(
        "the caller went away before the stream ended", provider=provider, model=model
    )
