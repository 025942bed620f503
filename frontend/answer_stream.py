"""Stream one answer from an endpoint into an `Answer`, in a worker thread, with a stop that works at once.

The page starts one job per answer (two in compare mode), then redraws from the `Answer` objects while
the jobs fill them in, so both answers stream in parallel and the page code never blocks on a socket.

Behind the gateway, a request for a model that is not awake waits there while the gateway switches models,
and its response (headers included) starts only once the model is up. So a job whose model was not running
when it was sent says "switching to …" with the seconds waited until the response starts, and keeps the
time the switch took (the gateway's X-Serve-Swap-Ms, else the wait measured here) in the answer's stats.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from pydantic import SecretStr

from frontend.api_errors import describe_api_error
from frontend.chat_request import ChatRequest
from frontend.conversation import Answer, AnswerStatus, GenerationSettings
from frontend.reasoning import split_reasoning
from frontend.settings import Endpoint

CONNECT_TIMEOUT_S = 5.0
STATE_CHECK_TIMEOUT_S = 2.0
# A request that waits for a switch gets no byte until the model is up: a stop/start on bare metal takes
# minutes, so its wait is bounded by this rather than by the page's timeout between tokens.
SWITCH_TIMEOUT_S = 900.0
SWAP_MS_HEADER = "x-serve-swap-ms"


@dataclass(frozen=True)
class Target:
    """Where an answer comes from: an endpoint, its key and the model it serves."""

    endpoint: Endpoint
    api_key: SecretStr | None
    model: str
    max_model_len: int | None = None
    awake: bool | None = None  # behind the gateway: was the model running when probed; None = a plain vLLM

    def client(self, timeout_s: float) -> openai.OpenAI:
        key = self.api_key.get_secret_value() if self.api_key else "none"
        return _client(self.endpoint.base_url, key, timeout_s)


@functools.lru_cache(maxsize=64)
def _client(base_url: str, api_key: str, timeout_s: float) -> openai.OpenAI:
    """One client per endpoint, shared by every answer and session (it is thread-safe): building one costs
    ~20 ms, and a kept-alive connection saves a TCP handshake on each request. No SDK retries: they would
    repeat a timed-out request too (doubling the wait the user configured); AnswerJob retries only what
    is safe to retry."""
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
        max_retries=0,
    )


def _shut_down(response: httpx.Response) -> None:
    """Shut the socket down under a response another thread reads: closing it alone does not wake a
    blocked recv()."""
    network_stream = response.extensions.get("network_stream")
    sock = network_stream.get_extra_info("socket") if network_stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def delta_reasoning(delta: Any) -> str:
    """vLLM puts reasoning in `reasoning` (0.11+) or `reasoning_content` (older); the SDK keeps extras."""
    extra = delta.model_extra or {}
    return extra.get("reasoning") or extra.get("reasoning_content") or ""


@dataclass
class AnswerJob:
    """One streaming request. `answer` is updated in place; `stop()` ends it and keeps what arrived."""

    target: Target
    request: ChatRequest
    settings: GenerationSettings
    answer: Answer
    timeout_s: float = 120.0
    session_id: str | None = None  # the chat's id, sent in the endpoint's session header (if it has one)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    # The open stream while it is being read, else None. Guarded by _lock: its connection goes back to the
    # client's pool (shared by every session) when the stream closes, so stop() may only cut it before that.
    _stream: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # perf_counter() when the request went to a gateway whose model was not awake, until its response began.
    _switching_since: float | None = None

    def start(self) -> AnswerJob:
        thread = threading.Thread(target=self.run, name=f"answer-{self.target.endpoint.name}", daemon=True)
        thread.start()
        self._thread = thread  # only once started: wait() from another thread may join it at once
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def notice(self) -> str | None:
        """'switching to Qwen3-VL-4B… (3 s)' while the gateway wakes this job's model; else None."""
        since = self._switching_since
        if since is None or self._stopped.is_set():
            return None
        return f"Switching to {self.target.endpoint.name}… ({time.perf_counter() - since:.0f} s)"

    def _model_awake(self) -> bool:
        """Is the model running at the gateway right now? Asked just before sending (the page's probe may be
        seconds old, and in compare mode the previous answer has just woken the other model)."""
        try:
            listing = (
                self.target.client(self.timeout_s).with_options(timeout=STATE_CHECK_TIMEOUT_S).models.list()
            )
        except openai.OpenAIError:
            return bool(self.target.awake)
        states = {model.id: (model.model_extra or {}).get("state") for model in listing.data}
        state = states.get(self.target.model)
        return state == "running" if state is not None else bool(self.target.awake)

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        """Mark stopped and cut the connection: vLLM aborts a request whose client went away, and the
        worker, possibly blocked reading a stalled stream, wakes up at once. Safe at any time, from any
        thread: once the stream is closed its connection may serve another session's answer, and is left
        alone."""
        self._stopped.set()
        with self._lock:
            if self._stream is not None:
                _shut_down(self._stream.response)

    def _open_stream(self) -> Any:
        """The streaming request. A connection refused or reset before any answer (e.g. a kept-alive
        connection the server had closed) is tried once more; a timeout is not: the server got the request."""
        client = self.target.client(self.timeout_s)
        if self._switching_since is not None:
            client = client.with_options(timeout=httpx.Timeout(SWITCH_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))

        def create() -> Any:
            return client.chat.completions.create(
                model=self.target.model,
                messages=self.request.messages,
                temperature=self.settings.temperature,
                top_p=self.settings.top_p,
                max_tokens=self.settings.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=self.target.endpoint.session_headers(self.session_id),
            )

        try:
            return create()
        except openai.APITimeoutError:
            raise
        except openai.APIConnectionError:
            if self._stopped.is_set():
                raise
        return create()

    def run(self) -> None:
        """The stream, start to end; never raises (failures end up in `answer.status` / `answer.error`)."""
        answer, stats = self.answer, self.answer.stats
        raw_content = reasoning = ""
        started = time.perf_counter()
        first_token_at: float | None = None
        try:
            if self._stopped.is_set():  # stopped before it began: nothing is sent
                answer.status = AnswerStatus.STOPPED
                return
            if self.target.awake is not None and not self._model_awake():
                self._switching_since = time.perf_counter()
            stream = self._open_stream()
            if self._switching_since is not None:
                stats.switch_time_s = _swap_seconds(stream.response.headers, self._switching_since)
                self._switching_since = None
            with stream:
                with self._lock:
                    # A stop that came while the request was being sent ends it here, unread.
                    self._stream = None if self._stopped.is_set() else stream
                try:
                    for chunk in stream:
                        if self._stopped.is_set():
                            break
                        stats.model = chunk.model or stats.model
                        if chunk.usage:
                            stats.prompt_tokens = chunk.usage.prompt_tokens
                            stats.completion_tokens = chunk.usage.completion_tokens
                        for choice in chunk.choices:
                            reasoning += delta_reasoning(choice.delta)
                            raw_content += choice.delta.content or ""
                        if first_token_at is None and (raw_content or reasoning):
                            first_token_at = time.perf_counter()
                            stats.time_to_first_token_s = first_token_at - started
                        tagged = split_reasoning(raw_content)
                        answer.reasoning = "\n\n".join(part for part in (reasoning, tagged.reasoning) if part)
                        answer.content = tagged.content
                finally:
                    with self._lock:  # before `with stream` hands the connection back to the shared pool
                        self._stream = None
            answer.status = AnswerStatus.STOPPED if self._stopped.is_set() else AnswerStatus.DONE
        except Exception as error:  # the page must survive anything the network or server does
            if self._stopped.is_set():
                answer.status = AnswerStatus.STOPPED
            else:
                answer.status = AnswerStatus.INTERRUPTED if answer.content else AnswerStatus.FAILED
                answer.error = describe_api_error(
                    error,
                    self.target.endpoint.name,
                    timeout_s=self.timeout_s,
                    mid_answer=first_token_at is not None,
                )
        finally:
            self._switching_since = None
            ended = time.perf_counter()
            stats.total_time_s = ended - started
            stats.tokens_per_second = _tokens_per_second(
                stats.completion_tokens, started, first_token_at, ended
            )


MEASURABLE_DECODE_S = 0.05


def _swap_seconds(headers: httpx.Headers, waited_since: float) -> float | None:
    """The gateway's own count of the swap when it sends one (0: no swap was needed after all), else how
    long the response took to begin."""
    try:
        milliseconds = int(headers[SWAP_MS_HEADER])
    except (KeyError, ValueError):
        return time.perf_counter() - waited_since
    return milliseconds / 1000 if milliseconds > 0 else None


def _tokens_per_second(tokens: int | None, started: float, first: float | None, ended: float) -> float | None:
    """Decode speed: tokens after the first over the time they took. An answer that arrived in one burst
    (a few tokens, or a client that read late) has no measurable decode time: then the whole request."""
    if not tokens or first is None:
        return None
    if tokens > 1 and ended - first >= MEASURABLE_DECODE_S:
        return (tokens - 1) / (ended - first)
    return tokens / (ended - started) if ended > started else None
