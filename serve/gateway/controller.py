"""The swap policy: which model is awake, who waits, when to swap.

One worker task makes every swap, so there are never two at once. A request for a model that is awake runs
at once; otherwise it joins that model's FIFO queue and all waiters of a model ride the same swap. Before a
model is put away its in-flight requests drain (bounded wait); a model in use stays awake at least
`min_awake_s` (two clients alternating models do not thrash it); an idle TTL puts unused models away; past
`queue_limit` waiting requests a client gets 503 with Retry-After. Every swap is logged with its phases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from serve.gateway.config import Policy
from serve.gateway.errors import GatewayError, unavailable
from serve.gateway.instances import Instance, InstanceFailed, State
from serve.gateway.metrics import GatewayMetrics
from serve.gateway.swap import Swapper

log = logging.getLogger("serve.gateway")
TICK_S = 0.5  # how often the worker looks for crashed instances and idle models


@dataclass
class SwapRecord:
    """One swap and its phases in seconds; the first token is added by the first request it served."""

    target: str
    victims: list[str] = field(default_factory=list)
    drain_s: float = 0.0
    put_away_s: float = 0.0
    bring_up_s: float = 0.0
    ready_at: float = 0.0
    first_token_s: float | None = None

    def first_token(self, metrics: GatewayMetrics) -> None:
        if self.first_token_s is None:
            self.first_token_s = time.monotonic() - self.ready_at
            metrics.swap_seconds.labels("first_token").observe(self.first_token_s)
            log.info("swap to %s: first token %.2f s after it was ready", self.target, self.first_token_s)


@dataclass
class Lease:
    """A request's right to use its model; `swap` is set when it waited for one."""

    swap: SwapRecord | None = None
    waited_s: float = 0.0


@dataclass
class _Waiter:
    future: asyncio.Future[SwapRecord | None]
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class Slot:
    """A model's place in the policy: its instance, its requests and its awake time."""

    instance: Instance
    in_flight: int = 0
    waiters: deque[_Waiter] = field(default_factory=deque)
    awake_since: float = 0.0
    last_used: float = 0.0
    draining: bool = False

    @property
    def admits(self) -> bool:
        return self.instance.state is State.RUNNING and not self.draining


class SwapController:
    def __init__(
        self, instances: Sequence[Instance], swapper: Swapper, policy: Policy, metrics: GatewayMetrics
    ) -> None:
        self.slots = {instance.id: Slot(instance) for instance in instances}
        self.swapper = swapper
        self.policy = policy
        self.metrics = metrics
        self._kicked = asyncio.Event()
        self.swaps_done = 0

    # ------------------------------------------------------------------------------------- request side

    async def acquire(self, model: str) -> Lease:
        """Wait until `model` may take a request (at once when awake); pair with release()."""
        slot = self.slots[model]
        lease = await self._admit(slot)
        self.metrics.in_flight.labels(model).inc()
        return lease

    def release(self, model: str) -> None:
        slot = self.slots[model]
        slot.in_flight -= 1
        slot.last_used = time.monotonic()
        self.metrics.in_flight.labels(model).dec()
        self._kick()

    def needs_swap(self, model: str) -> bool:
        return not self.slots[model].admits

    def _failed_error(self, slot: Slot) -> GatewayError:
        return unavailable(slot.instance.reason or f"{slot.instance.id} failed", code="model_failed")

    async def _admit(self, slot: Slot) -> Lease:
        if slot.instance.state is State.FAILED:
            raise self._failed_error(slot)
        if slot.admits:
            slot.in_flight += 1
            return Lease()
        waiting = sum(len(s.waiters) for s in self.slots.values())
        if waiting >= self.policy.queue_limit:
            raise unavailable(
                f"{waiting} requests are already waiting for a model switch: retry in "
                f"{self.policy.retry_after_s} s",
                retry_after=self.policy.retry_after_s,
                code="queue_full",
            )
        waiter = _Waiter(asyncio.get_running_loop().create_future())
        slot.waiters.append(waiter)
        self._queue_changed(slot)
        try:
            record = await waiter.future
        except asyncio.CancelledError:  # the client went away while queued
            if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                slot.in_flight -= 1  # it was let in just as it left
            with contextlib.suppress(ValueError):
                slot.waiters.remove(waiter)
            self._queue_changed(slot)
            raise
        return Lease(record, time.monotonic() - waiter.queued_at)

    def _queue_changed(self, slot: Slot) -> None:
        self.metrics.queue_depth.labels(slot.instance.id).set(len(slot.waiters))
        self._kick()

    def _kick(self) -> None:
        self._kicked.set()

    # --------------------------------------------------------------------------------------- worker side

    async def run(self) -> None:
        """The worker: start the instances, then swap as the queues ask, until cancelled."""
        await self._prepare()
        while True:
            await self._wait(TICK_S)
            self._reap_crashed()
            if (target := self._next_target()) is not None:
                await self._swap_in(target)
            elif self.policy.idle_ttl_s is not None:
                await self._put_idle_away()

    async def _wait(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kicked.wait(), max(timeout, 0.0))
        self._kicked.clear()

    def _awake(self) -> list[Slot]:
        return [s for s in self.slots.values() if s.instance.state is State.RUNNING]

    async def _prepare(self) -> None:
        """Bring the first models up. Sleep mode starts every instance (one after the other, putting the
        previous to sleep first when the cap is reached, so its memory is free); restart mode starts only
        as many as may be awake."""
        can_sleep = self.swapper.mode == "sleep"
        for slot in self.slots.values():
            awake = self._awake()
            if len(awake) >= self.policy.max_awake:
                if not can_sleep:
                    continue
                await self._put_away(awake[0], reason="start-up")
            try:
                started = time.monotonic()
                await slot.instance.start()
                log.info(
                    "%s: %s in %.1f s", slot.instance.id, slot.instance.state, time.monotonic() - started
                )
            except InstanceFailed as exc:
                self._failed(slot, str(exc))
                continue
            if slot.instance.state is State.RUNNING:
                slot.awake_since = time.monotonic()
                self._let_in(slot, None)

    def _reap_crashed(self) -> None:
        for slot in self.slots.values():
            if slot.instance.state in (State.RUNNING, State.SLEEPING) and (why := slot.instance.died()):
                self._failed(slot, why)

    def _failed(self, slot: Slot, reason: str) -> None:
        log.error("%s", reason)
        slot.instance.fail(reason)
        self.metrics.awake.labels(slot.instance.id).set(0)
        error = self._failed_error(slot)
        while slot.waiters:
            waiter = slot.waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(error)
        self._queue_changed(slot)

    def _let_in(self, slot: Slot, record: SwapRecord | None) -> None:
        """Admit the model's waiters in arrival order."""
        self.metrics.awake.labels(slot.instance.id).set(1)
        while slot.waiters:
            waiter = slot.waiters.popleft()
            if not waiter.future.done():
                slot.in_flight += 1
                waiter.future.set_result(record)
        self._queue_changed(slot)

    def _next_target(self) -> Slot | None:
        """The model whose oldest waiter has waited longest (FIFO across models)."""
        wanted = [s for s in self.slots.values() if s.waiters]
        for slot in wanted:
            if slot.instance.state is State.FAILED:
                self._failed(slot, slot.instance.reason or "failed")
            elif slot.admits:
                self._let_in(slot, None)
        wanted = [s for s in wanted if s.waiters and not s.admits]
        return min(wanted, key=lambda s: s.waiters[0].queued_at) if wanted else None

    def _victims(self, target: Slot) -> list[Slot]:
        awake = [s for s in self._awake() if s is not target]
        excess = len(awake) + 1 - self.policy.max_awake
        # Idle models go first, then the least recently used.
        awake.sort(key=lambda s: (s.in_flight > 0 or bool(s.waiters), s.last_used))
        return awake[: max(excess, 0)]

    async def _hold_while_in_use(self, victim: Slot, target: Slot) -> bool:
        """Keep a model that is in use awake for min_awake_s after its wake; False if the swap is no longer
        wanted (every waiter left)."""
        while target.waiters:
            used = victim.in_flight > 0 or victim.last_used >= victim.awake_since
            free_at = victim.awake_since + self.policy.min_awake_s if used else 0.0
            if time.monotonic() >= free_at:
                return True
            await self._wait(min(free_at - time.monotonic(), TICK_S))
        return False

    async def _drain(self, victim: Slot) -> float:
        """Wait (bounded) for the victim's requests in flight to finish; new ones queue meanwhile."""
        started = time.monotonic()
        victim.draining = True
        deadline = started + self.policy.drain_timeout_s
        while victim.in_flight and time.monotonic() < deadline:
            await self._wait(deadline - time.monotonic())
        if victim.in_flight:
            log.warning(
                "%s: %d requests still in flight after %.0f s of draining; swapping anyway",
                victim.instance.id,
                victim.in_flight,
                self.policy.drain_timeout_s,
            )
        return time.monotonic() - started

    async def _put_away(self, slot: Slot, *, reason: str) -> float:
        seconds = 0.0
        try:
            seconds = await self.swapper.put_away(slot.instance)
            log.info("%s: %s (%s) in %.2f s", slot.instance.id, self.swapper.put_away_word, reason, seconds)
        except InstanceFailed as exc:
            self._failed(slot, str(exc))
        finally:
            slot.draining = False
            self.metrics.awake.labels(slot.instance.id).set(0)
        return seconds

    async def _swap_in(self, target: Slot) -> None:
        record = SwapRecord(target.instance.id)
        started = time.monotonic()
        for victim in self._victims(target):
            if not await self._hold_while_in_use(victim, target):
                return
            record.victims.append(victim.instance.id)
            record.drain_s += await self._drain(victim)
            record.put_away_s += await self._put_away(victim, reason=f"for {target.instance.id}")
            self._reap_crashed()
        mode = self.swapper.mode
        try:
            record.bring_up_s = await self.swapper.bring_up(target.instance)
        except InstanceFailed as exc:
            self.metrics.swaps.labels(target.instance.id, mode, "failed").inc()
            self._failed(target, str(exc))
            return
        record.ready_at = target.awake_since = time.monotonic()
        self.swaps_done += 1
        total = record.ready_at - started
        for phase, seconds in (
            ("drain", record.drain_s),
            ("put_away", record.put_away_s),
            ("bring_up", record.bring_up_s),
            ("total", total),
        ):
            self.metrics.swap_seconds.labels(phase).observe(seconds)
        self.metrics.swaps.labels(target.instance.id, mode, "ok").inc()
        log.info(
            "swap %s -> %s (%s): drain %.2f s, %s %.2f s, %s %.2f s, total %.2f s, %d waiting",
            "+".join(record.victims) or "nothing",
            target.instance.id,
            mode,
            record.drain_s,
            self.swapper.put_away_word,
            record.put_away_s,
            self.swapper.bring_up_word,
            record.bring_up_s,
            total,
            len(target.waiters),
        )
        self._let_in(target, record)

    async def _put_idle_away(self) -> None:
        ttl = self.policy.idle_ttl_s
        assert ttl is not None
        now = time.monotonic()
        for slot in self._awake():
            if not slot.in_flight and not slot.waiters and now - max(slot.last_used, slot.awake_since) >= ttl:
                await self._put_away(slot, reason=f"idle for {ttl:g} s")

    async def close(self) -> None:
        """Stop what the gateway started (attached instances are left as they are)."""
        for slot in self.slots.values():
            if slot.instance.can_restart:
                with contextlib.suppress(InstanceFailed):
                    await slot.instance.stop()
            await slot.instance.close()
