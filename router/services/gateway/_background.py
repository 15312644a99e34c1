"""Recording a decision's successful attempt after its answer went out (floor: services).

DESIGN only needs the `DecisionMade` durable before the upstream call, and a successful attempt
is the decision's last event, so no other append waits on it: the gateway answers first and
records the attempt in the background. `settle` and `drain` wait for those records.
"""

from __future__ import annotations

import asyncio
import logging

from router.services.gateway._metrics import Metrics
from router.services.gateway._ports import Attempt, Decided, DecisionPort

__all__ = ["ATTEMPT_BATCH_DELAY_S", "BackgroundAttempts"]

ATTEMPT_BATCH_DELAY_S = 0.002
"""How long a successful attempt's record may wait for the next append to share its commit."""

log = logging.getLogger("router.services.gateway")


class BackgroundAttempts:
    """Successful attempts recorded after their answer, by decision id.

    A record starts with the next append of the gateway (`flush`, called before each decision
    or failed attempt is recorded), so that both share one group commit, or after `delay_s` if
    none comes: one caller sending requests one after the other would otherwise pay two fsyncs
    per request, its next decision waiting behind this attempt's commit. A record that fails is
    counted (`attempt_record_failures`) and logged: its caller already has the answer."""

    def __init__(self, decisions: DecisionPort, metrics: Metrics, delay_s: float) -> None:
        self._decisions = decisions
        self._metrics = metrics
        self._delay_s = delay_s
        self._recording: dict[str, set[asyncio.Task[None]]] = {}
        self._deferred: list[tuple[Decided, Attempt]] = []
        self._timer: asyncio.TimerHandle | None = None

    def later(self, decided: Decided, attempt: Attempt) -> None:
        """Record `attempt` with the next append, or after the delay."""
        self._deferred.append((decided, attempt))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self.flush)

    def flush(self) -> None:
        """Start recording the deferred attempts now (their appends join the next commit)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deferred, self._deferred = self._deferred, []
        for decided, attempt in deferred:
            self._start(decided, attempt)

    def _start(self, decided: Decided, attempt: Attempt) -> None:
        key = decided.decision_id or "-"
        task = asyncio.create_task(self._record(decided, attempt))
        pending = self._recording.setdefault(key, set())
        pending.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            pending.discard(finished)
            if not pending and self._recording.get(key) is pending:
                del self._recording[key]

        task.add_done_callback(done)

    async def _record(self, decided: Decided, attempt: Attempt) -> None:
        try:
            await self._decisions.record_attempt(decided, attempt)
        except Exception:
            self._metrics.attempt_record_failures.inc()
            log.exception(
                "recording attempt %d of decision %s failed", attempt.number, decided.decision_id
            )

    async def settle(self, decision_id: str) -> None:
        """Wait until the background records of `decision_id` are durable."""
        self.flush()
        pending = self._recording.get(decision_id)
        if pending:
            await asyncio.gather(*pending)

    async def drain(self) -> None:
        """Wait for every record still pending."""
        self.flush()
        while self._recording:
            await asyncio.gather(*(t for tasks in list(self._recording.values()) for t in tasks))
