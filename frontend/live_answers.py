"""Answers that stream independently of any page run, so a click, a reload or a closed tab never cuts them.

Streamlit reruns the page script on every widget interaction and abandons the run in progress. So an
answer's stream belongs to the process, not to a page run: a `LiveTurn` streams its jobs in worker threads,
saves the turn every SAVE_INTERVAL_S and once more when every answer has ended, and only an explicit
`stop()` ends it early. Page runs come and go and just draw it (`LiveAnswers.get`). No Streamlit here.

In compare mode the answers stream side by side, except where the gateway can keep only one model awake
(`one_after_another`): then each answer starts once the one before it has ended, the awake model's first, so
a turn costs one switch and two models never fight over one GPU.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from frontend.answer_stream import AnswerJob, Target
from frontend.chat_turns import finish
from frontend.conversation import Message

logger = logging.getLogger(__name__)
SAVE_INTERVAL_S = 2.0  # the partial answer survives a crash of the page's process too
POLL_INTERVAL_S = 0.05
STOP_WAIT_S = 5.0

# Saves the turn; False when its conversation (or the turn) was deleted meanwhile, which stops the streams.
SaveTurn = Callable[[Message], bool]


def one_after_another(targets: Sequence[Target]) -> bool:
    """Compare mode behind a gateway that has one of the models asleep: the models are not all awake at once
    (swap mode), so asking them together would only make them swap back and forth."""
    return len(targets) > 1 and any(target.awake is False for target in targets)


class LiveTurn:
    """One assistant turn whose answers are streaming. `message` is updated in place by the jobs."""

    def __init__(
        self,
        conversation_id: str,
        message: Message,
        jobs: Sequence[AnswerJob],
        save: SaveTurn,
        *,
        sequential: bool = False,
    ) -> None:
        self.conversation_id = conversation_id
        self.message = message
        self.jobs = list(jobs)
        self.sequential = sequential
        # One after another: the models awake now answer first (no switch), then the others.
        self._order = sorted(self.jobs, key=lambda job: job.target.awake is not True) if sequential else []
        self._save = save
        self._done = threading.Event()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"live-turn-{message.id[:8]}", daemon=True
        )

    def start(self, on_end: Callable[[LiveTurn], None]) -> LiveTurn:
        self._on_end = on_end
        first = self._order[:1] if self.sequential else self.jobs
        for job in first:  # started here, so a stop right after this returns finds them running
            job.start()
        self._supervisor.start()
        return self

    def notices(self) -> list[str | None]:
        """Per answer, what it waits for before its first token: the switch of models, or (one after another)
        the answer before it."""
        notices: list[str | None] = []
        for job in self.jobs:
            position = self._order.index(job) if self.sequential else 0
            if position == 0 or job.started or job.stopped:
                notices.append(job.notice())
            else:
                before = self._order[position - 1].target.endpoint.name
                notices.append(f"Waiting for {before} to answer first: the gateway keeps one model awake.")
        return notices

    @property
    def active(self) -> bool:
        """Still streaming, or its final save is not written yet."""
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every answer ended and the turn is saved."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """End every answer now, keeping what arrived, and wait (briefly) until that is saved."""
        finish(self.jobs)
        self.wait(STOP_WAIT_S)

    def _supervise(self) -> None:
        saved_at = time.monotonic()
        waves = [[job] for job in self._order] if self.sequential else [self.jobs]
        try:
            for wave in waves:
                for job in wave:
                    if not job.started and not job.stopped:  # stopped before its turn: never sent
                        job.start()
                while any(job.running for job in wave):
                    time.sleep(POLL_INTERVAL_S)
                    if time.monotonic() - saved_at >= SAVE_INTERVAL_S:
                        saved_at = time.monotonic()
                        if not self._saved():  # deleted meanwhile: nobody will read the rest
                            finish(self.jobs)
            finish(self.jobs, grace_s=0)  # marks an answer whose thread hung (or never started) as stopped
            self._saved()
        finally:
            self._on_end(self)
            self._done.set()

    def _saved(self) -> bool:
        """Save the turn; a failed save (database locked, disk full) is logged and the answer streams on."""
        try:
            return self._save(self.message)
        except Exception:
            logger.exception("Could not save the answer of conversation %s", self.conversation_id)
            return True


class LiveAnswers:
    """The process's streaming turns, one at most per conversation; thread-safe."""

    def __init__(self) -> None:
        self._turns: dict[str, LiveTurn] = {}
        self._lock = threading.Lock()

    def start(
        self,
        conversation_id: str,
        message: Message,
        jobs: Sequence[AnswerJob],
        save: SaveTurn,
        *,
        sequential: bool = False,
    ) -> LiveTurn:
        """Stream `jobs` into `message` (already stored) and keep saving it with `save`; `sequential`: one
        answer after the other (see `one_after_another`)."""
        turn = LiveTurn(conversation_id, message, jobs, save, sequential=sequential)
        with self._lock:
            if (current := self._turns.get(conversation_id)) is not None and current.active:
                raise RuntimeError(f"conversation {conversation_id} already has an answer streaming")
            self._turns[conversation_id] = turn
        return turn.start(on_end=self._forget)

    def get(self, conversation_id: str) -> LiveTurn | None:
        """The conversation's streaming turn, if any."""
        with self._lock:
            return self._turns.get(conversation_id)

    def _forget(self, turn: LiveTurn) -> None:
        with self._lock:
            if self._turns.get(turn.conversation_id) is turn:
                del self._turns[turn.conversation_id]
