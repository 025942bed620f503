"""Swap modes: how a model is put away and brought back. A small enum and a factory; the policy that decides
when to swap is controller.py."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from serve.gateway.instances import Instance, State

# A sleeping level-1 instance keeps its weights in host RAM; leave this much for everything else.
HOST_RAM_MARGIN_GIB = 4.0


class SwapMode(StrEnum):
    AUTO = "auto"
    SLEEP = "sleep"  # vLLM sleep mode level 1: weights to CPU RAM, seconds on a GPU
    RESTART = "restart"  # stop the process, start the other: a full vLLM start-up


@dataclass(frozen=True)
class ModeChoice:
    mode: SwapMode
    why: str


def choose_mode(
    requested: SwapMode,
    *,
    supervised: bool,
    sleep_supported: bool,
    sleeping_weights_gib: float,
    host_available_gib: float,
) -> ModeChoice:
    """auto: sleep where the instances support sleep mode and host RAM holds the sleeping weights, restart
    otherwise. Attached instances (compose) cannot be restarted by the gateway, so they always sleep."""
    if not supervised:
        if requested is SwapMode.RESTART:
            raise ValueError(
                "--swap restart needs instances the gateway starts itself; with --upstream it can only put "
                "them to sleep (--swap sleep or auto)"
            )
        return ModeChoice(SwapMode.SLEEP, "attached instances (--upstream) swap by sleep/wake")
    if requested is not SwapMode.AUTO:
        return ModeChoice(requested, f"--swap {requested}")
    if not sleep_supported:
        return ModeChoice(SwapMode.RESTART, "no GPU: vLLM's CPU build refuses --enable-sleep-mode")
    needed = sleeping_weights_gib + HOST_RAM_MARGIN_GIB
    if host_available_gib < needed:
        return ModeChoice(
            SwapMode.RESTART,
            f"host RAM: {host_available_gib:.1f} GiB available, sleeping weights need {needed:.1f} GiB",
        )
    return ModeChoice(
        SwapMode.SLEEP, f"sleep mode fits: {sleeping_weights_gib:.1f} GiB of weights to host RAM"
    )


class Swapper:
    """Puts an instance away and brings it back; each call returns the seconds it took."""

    mode: SwapMode
    put_away_word: str
    bring_up_word: str

    def __init__(self, ready_timeout: float) -> None:
        self.ready_timeout = ready_timeout

    async def put_away(self, instance: Instance) -> float:
        started = time.monotonic()
        await self._put_away(instance)
        return time.monotonic() - started

    async def bring_up(self, instance: Instance) -> float:
        started = time.monotonic()
        await self._bring_up(instance)
        return time.monotonic() - started

    async def _put_away(self, instance: Instance) -> None:
        raise NotImplementedError

    async def _bring_up(self, instance: Instance) -> None:
        raise NotImplementedError


class StopStart(Swapper):
    mode = SwapMode.RESTART
    put_away_word = "stop"
    bring_up_word = "start"

    async def _put_away(self, instance: Instance) -> None:
        await instance.stop()

    async def _bring_up(self, instance: Instance) -> None:
        await instance.start()


class SleepWake(Swapper):
    mode = SwapMode.SLEEP
    put_away_word = "sleep"
    bring_up_word = "wake"

    async def _put_away(self, instance: Instance) -> None:
        await instance.sleep(self.ready_timeout)

    async def _bring_up(self, instance: Instance) -> None:
        if instance.state is State.STOPPED:  # never started yet
            await instance.start()
            if instance.state is State.RUNNING:
                return
        await instance.wake(self.ready_timeout)


def swapper_for(mode: SwapMode, ready_timeout: float) -> Swapper:
    if mode is SwapMode.AUTO:
        raise ValueError("choose_mode() first: auto is not a swap mode of its own")
    return {SwapMode.SLEEP: SleepWake, SwapMode.RESTART: StopStart}[mode](ready_timeout)
