"""The routing and fallback loop: parse, decide (durably), then call the plan's entries in order.

A retryable failure (connect, timeout, 429, 5xx, protocol) moves on to the next entry of the
plan, up to the policy's `max_attempts` (the plan's length); a non-retryable one stops. Every
attempt is recorded as `AttemptFinished`. For streams, fallback happens only until the first
event is in hand: once a byte went to the caller, a failure ends the stream with an error event.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from pydantic import SecretStr

from router.core import (
    Catalog,
    CatalogEntry,
    NoEntryPasses,
    Policy,
    RequestFeatures,
    Trace,
    estimate_features,
)
from router.services.catalogs import bundled_catalog
from router.services.decisions import Attempt, Decision, DecisionService
from router.services.gateway._errors import AllAttemptsFailedError, BadRequestError
from router.services.gateway._keys import Principal
from router.services.gateway._metrics import Metrics
from router.services.gateway._openrouter import openrouter_preferences
from router.services.upstream import (
    Upstream,
    UpstreamError,
    UpstreamResponse,
    UpstreamStream,
    Usage,
    cost_usd,
)

__all__ = ["Completed", "Gateway", "OpenedStream", "RoutingRequest", "split_request"]

log = logging.getLogger("router.services.gateway")

#: Fields of the request body that are the gateway's, not the upstream's.
GATEWAY_FIELDS = ("policy",)
ECHO_PROVIDER = "echo"
#: Parsed policies kept per process (most callers send a handful of policies over and over).
POLICY_MEMO_SIZE = 1024
#: How long the latest published catalog version is used before it is looked up again.
CATALOG_TTL_S = 5.0


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
class RoutingRequest:
    """A request as parsed at the edge (`Gateway.parse`): its policy, parsed and validated
    against the catalog version it is decided on, that catalog, and the chat body (without the
    gateway's fields; None for a rank without a request)."""

    policy: Policy
    catalog: Catalog
    body: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Completed:
    """A successful non-streaming request: the decision, the winning entry, the upstream answer
    and the recorded attempts (the last one is the answer's, durable before it goes out)."""

    decision: Decision
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
        decision: Decision,
        tried: _Try,
        stream: UpstreamStream,
        iterator: AsyncIterator[bytes],
        exits: contextlib.AsyncExitStack,
        first: bytes,
        attempts: tuple[Attempt, ...],
    ) -> None:
        self.decision = decision
        self.entry = tried.entry
        self.attempts = attempts
        self._gateway = gateway
        self._tried = tried
        self._stream = stream
        self._iterator = iterator
        self._exits = exits
        self._first = first

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
    def tried(self) -> _Try:
        """The plan entry this stream comes from, as it was prepared for its call."""
        return self._tried


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
    echo: bool
    region: str | None
    body: dict[str, Any]
    tenant_key: SecretStr | None
    key_source: str
    started: float


def _failure_json(
    attempt: Attempt, tried: _Try, error: UpstreamError, *, streamed: bool
) -> dict[str, Any]:
    """A failed attempt as the HTTP error body and the logs show it — never a key, never a
    body: what was recorded, plus the provider called, whose key (`operator`, `tenant` or
    `none`), whether it was the echo provider, and what went wrong."""
    return {
        "attempt": attempt.number,
        "entry": attempt.entry,
        "provider": tried.provider,
        "model": tried.model,
        "status": attempt.status,
        "error_class": attempt.error_class,
        "http_status": attempt.http_status,
        "latency_ms": round(attempt.latency_ms, 3),
        "usage": None
        if attempt.tokens_in is None
        else {"prompt_tokens": attempt.tokens_in, "completion_tokens": attempt.tokens_out},
        "cost_usd": attempt.cost_usd,
        "key_source": tried.key_source,
        "echo": tried.echo,
        "streamed": streamed,
        "message": str(error),
    }


class Gateway:
    """Parse, decide, record, call upstream with fallback. One per process; safe across tasks.

    The catalog for new decisions: the `catalog` given (a `--catalog` file), else the latest
    published version (looked up again every few seconds), else the bundled catalog."""

    def __init__(
        self,
        decisions: DecisionService,
        upstream: Upstream,
        metrics: Metrics,
        *,
        catalog: Catalog | None = None,
        echo_all: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.decisions = decisions
        self.upstream = upstream
        self.metrics = metrics
        self.echo_all = echo_all
        self._fixed = catalog
        if catalog is not None:
            metrics.catalog_in_use(catalog.version)
        self._current: tuple[float, Catalog] | None = None
        self._clock = clock
        self._policies: OrderedDict[bytes, Policy] = OrderedDict()

    async def catalog(self) -> Catalog:
        """The catalog version new decisions use."""
        if self._fixed is not None:
            return self._fixed
        now = time.monotonic()
        if self._current is not None and self._current[0] > now:
            return self._current[1]
        catalog = await self.decisions.latest_catalog() or bundled_catalog()
        self._current = (now + CATALOG_TTL_S, catalog)
        self.metrics.catalog_in_use(catalog.version)
        return catalog

    async def refresh_catalog(self) -> Catalog:
        """Look the latest published catalog up now instead of at the end of its few seconds
        (after this process published a version)."""
        self._current = None
        return await self.catalog()

    async def parse(
        self, policy_document: object, body: Mapping[str, Any] | None
    ) -> RoutingRequest:
        """Parse and validate the policy against the catalog new decisions use (`PolicyError`
        with JSON pointers into the policy): the one place a request's policy is parsed."""
        catalog = await self.catalog()
        return RoutingRequest(self.policy(policy_document, catalog), catalog, body)

    def policy(self, document: object, catalog: Catalog) -> Policy:
        """`Policy.from_json(document, catalog.schema)`, memoized by the SHA-256 of the document's
        sorted-key JSON (`_memo_text`) and the catalog version (a pure function of both). Invalid
        documents are never memoized: each one raises its `PolicyError` again."""
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

    def evaluate(self, request: RoutingRequest) -> Trace:
        """The decision without recording it (`POST /x/rank` without `record`); `NoEntryPasses`
        when no entry passes."""
        trace = self.decisions.evaluate(request.policy, request.catalog, _features(request))
        self.metrics.labelled(self.metrics.decisions, "unrecorded").inc()
        return trace

    async def decide(
        self,
        principal: Principal,
        request: RoutingRequest,
        *,
        preview: bool = False,
        idempotency_key: str | None = None,
    ) -> Decision:
        """Evaluate and durably record the decision (before any upstream byte); a `preview` is
        recorded as such and never goes upstream. `idempotency_key`: the digest of the
        request's Idempotency-Key, recorded in the decision."""
        started = self._clock()
        try:
            decision = await self.decisions.decide(
                principal.tenant,
                request.policy,
                request.catalog,
                request_body=request.body or {},
                preview=preview,
                idempotency_key=idempotency_key,
            )
        except NoEntryPasses:
            if not preview:
                self.metrics.labelled(self.metrics.decisions, "no_entry").inc()
            raise
        if preview:
            self.metrics.labelled(self.metrics.decisions, "preview").inc()
        else:
            self.metrics.decide_latency.observe(self._clock() - started)
            self.metrics.labelled(self.metrics.decisions, "routed").inc()
        return decision

    def target(self, entry: CatalogEntry) -> tuple[str, str, bool]:
        """(provider actually called, model, whether it is the echo provider) for an entry."""
        provider = str(entry.get("provider") or "")
        model = str(entry.get("model") or entry.id)
        echo = self.echo_all or provider == ECHO_PROVIDER
        return (ECHO_PROVIDER if echo else provider), model, echo

    def _attempt(
        self,
        tried: _Try,
        *,
        usage: Usage | None = None,
        error: UpstreamError | None = None,
        http_status: int | None = None,
    ) -> Attempt:
        cost = None
        if usage is not None:
            price_in, price_out = tried.entry.get("price_in"), tried.entry.get("price_out")
            if isinstance(price_in, int | float) and isinstance(price_out, int | float):
                cost = 0.0 if tried.echo else cost_usd(usage, float(price_in), float(price_out))
        latency = self._clock() - tried.started
        attempt = Attempt(
            number=tried.number,
            entry=tried.entry.id,
            status="error" if error is not None else "ok",
            latency_ms=latency * 1000,
            error_class=None if error is None else error.error_class,
            http_status=error.status if error is not None else http_status,
            tokens_in=None if usage is None else usage.prompt_tokens,
            tokens_out=None if usage is None else usage.completion_tokens,
            cost_usd=cost,
        )
        metrics = self.metrics
        metrics.labelled(metrics.attempts, tried.provider, attempt.error_class or "ok").inc()
        metrics.labelled(metrics.attempt_latency, tried.provider).observe(latency)
        return attempt

    def _tries(
        self, decision: Decision, body: Mapping[str, Any], provider_keys: Mapping[str, SecretStr]
    ) -> Iterator[_Try]:
        """The plan's entries in order, each prepared for one upstream call; lazy, so each
        attempt's clock starts just before its call."""
        for number, entry in enumerate(decision.plan_entries, start=1):
            provider, model, echo = self.target(entry)
            tenant_key = provider_keys.get(provider.lower().replace("-", "_"))
            config = self.upstream.registry.get(provider)
            if tenant_key is not None:
                key_source = "tenant"
            else:
                has_key = config is not None and config.api_key is not None
                key_source = "operator" if has_key else "none"
            call_body = {**body, "model": model}
            if config is not None and config.kind == "openrouter":
                call_body["provider"] = openrouter_preferences(
                    decision.trace.policy, entry, body.get("provider")
                )
            region = entry.get("region")
            yield _Try(
                number,
                entry,
                provider,
                model,
                echo,
                region if isinstance(region, str) else None,
                call_body,
                tenant_key,
                key_source,
                self._clock(),
            )

    async def _failed(
        self,
        decision: Decision,
        failures: list[dict[str, Any]],
        attempts: list[Attempt],
        tried: _Try,
        error: UpstreamError,
        *,
        streamed: bool = False,
    ) -> bool:
        """Record a failed attempt before anything else is tried; whether the plan may go on."""
        attempt = self._attempt(tried, error=error)
        attempts.append(await self.decisions.record_attempt(decision, attempt))
        failures.append(_failure_json(attempt, tried, error, streamed=streamed))
        return error.retryable

    async def complete(
        self,
        decision: Decision,
        body: Mapping[str, Any],
        provider_keys: Mapping[str, SecretStr],
    ) -> Completed:
        """Call the plan's entries in order until one answers; `AllAttemptsFailedError` if none.
        Every attempt is durable when this returns or raises."""
        attempts: list[Attempt] = []
        failures: list[dict[str, Any]] = []
        last: UpstreamError | None = None
        for tried in self._tries(decision, body, provider_keys):
            try:
                response = await self.upstream.complete(
                    tried.body,
                    tried.provider,
                    tried.model,
                    tenant_key=tried.tenant_key,
                    region=tried.region,
                )
            except UpstreamError as exc:
                last = exc
                if not await self._failed(decision, failures, attempts, tried, exc):
                    break
                continue
            attempt = self._attempt(tried, usage=response.usage, http_status=response.status)
            attempts.append(await self.decisions.record_attempt(decision, attempt))
            return Completed(decision, tried.entry, response, tuple(attempts))
        raise AllAttemptsFailedError(str(decision.decision_id), failures, last)

    async def open_stream(
        self,
        decision: Decision,
        body: Mapping[str, Any],
        provider_keys: Mapping[str, SecretStr],
    ) -> OpenedStream:
        """Open the plan's entries in order until one yields its first event."""
        attempts: list[Attempt] = []
        failures: list[dict[str, Any]] = []
        last: UpstreamError | None = None
        for tried in self._tries(decision, body, provider_keys):
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
                last = error
                if not await self._failed(
                    decision, failures, attempts, tried, error, streamed=True
                ):
                    break
                continue
            except BaseException:
                await exits.aclose()
                raise
            return OpenedStream(
                self, decision, tried, stream, iterator, exits, first, tuple(attempts)
            )
        raise AllAttemptsFailedError(str(decision.decision_id), failures, last)

    async def finish_stream(self, opened: OpenedStream, error: UpstreamError | None) -> None:
        """Record the attempt of a relayed stream (ended, failed mid-way, or abandoned). Its
        bytes already went out: a record that fails is counted and logged."""
        stream = opened.upstream
        if error is None and stream.latency_s is None:
            error = _abandoned(opened)
        attempt = self._attempt(
            opened.tried, usage=stream.usage, error=error, http_status=stream.status
        )
        try:
            await self.decisions.record_attempt(opened.decision, attempt)
        except Exception:
            self.metrics.attempt_record_failures.inc()
            log.exception(
                "recording attempt %d of decision %s failed",
                attempt.number,
                opened.decision.decision_id,
            )


def _features(request: RoutingRequest) -> RequestFeatures | None:
    return None if request.body is None else estimate_features(request.body)


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
