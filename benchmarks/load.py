"""64 concurrent multimodal conversations through the chat page's own client code, against one tiny vLLM.

Run from the repository root:  .venv/bin/python -m benchmarks.load [--conversations 64] [--output-tokens 64]
Writes benchmarks/results/load-64.json (and load-64.png when matplotlib is installed).

Every conversation is what the page builds for a user's first message: a generated image prepared by
`frontend.images.prepare_image` (the upload path), the message added by
`frontend.chat_turns.add_user_message`, the request built by `frontend.chat_request.build_request`, and
the answer streamed by `frontend.answer_stream.AnswerJob` in its own thread, as the page does
(`chat_turns.start_answers` minus the thread start: all 64 requests are built first, then released at
once, so they really are concurrent).

The tiny model's answers are random text, so an answer cannot echo a marker. Each conversation is made
identifiable by what the server reports about it instead: a distinct image size and prompt length per
conversation give each request its own `usage.prompt_tokens`. Each one is first measured alone (one request
at a time), then all of them run at once, and every stream must report exactly the count measured for its
own request (a stream that carried another request's answer would report another count). Every conversation
is then saved to a `ConversationStore` (from its own thread, as the page's sessions do) and read back.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from pydantic import SecretStr

from frontend.answer_stream import AnswerJob, Target
from frontend.chat_request import build_request
from frontend.chat_turns import add_user_message
from frontend.conversation import Answer, AnswerStatus, Conversation, GenerationSettings, Message
from frontend.images import prepare_image
from frontend.settings import Endpoint
from frontend.store import ConversationStore

CONVERSATIONS = 64
OUTPUT_TOKENS = 64
IMAGE_TOKEN_BUDGET = 256
REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Workload:
    """What makes conversation `index` identifiable: its image size and its prompt length."""

    index: int
    image_width: int
    image_height: int
    words: int

    @property
    def text(self) -> str:
        return f"Conversation {self.index}: describe the picture. " + " ".join(["word"] * self.words)

    def image(self) -> bytes:
        """A PNG of this conversation's own size and colours (distinct pixels: no cache can help)."""
        image = Image.linear_gradient("L").resize((self.image_width, self.image_height)).convert("RGB")
        draw = ImageDraw.Draw(image)
        hue = (self.index * 37) % 256
        draw.rectangle(
            (self.image_width // 4, self.image_height // 4, self.image_width // 2, self.image_height // 2),
            fill=(hue, 255 - hue, (hue * 3) % 256),
        )
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


def workloads(count: int) -> list[Workload]:
    """`count` workloads; sizes and prompt lengths both grow with the index, so no two are alike."""
    return [
        Workload(index=i, image_width=320 + 8 * i, image_height=240 + 4 * i, words=8 + 4 * i)
        for i in range(count)
    ]


def target_for(base_url: str, api_key: str | None, model: str, image_limit: int = 4) -> Target:
    endpoint = Endpoint(name="Tiny", base_url=base_url, image_limit=image_limit)
    return Target(endpoint=endpoint, api_key=SecretStr(api_key) if api_key else None, model=model)


def conversation_for(workload: Workload, *, output_tokens: int, target: Target) -> Conversation:
    """The conversation a user starts with this workload's image and text (nothing sent yet)."""
    settings = GenerationSettings(max_tokens=output_tokens, image_token_budget=IMAGE_TOKEN_BUDGET)
    conversation = Conversation(settings=settings)
    image = prepare_image(
        workload.image(), f"picture-{workload.index:02d}.png", token_budget=IMAGE_TOKEN_BUDGET
    )
    add_user_message(conversation, workload.text, [image], [target])
    return conversation


def answer_of(conversation: Conversation) -> Answer:
    return conversation.messages[-1].answers[0]


def answer_job(conversation: Conversation, target: Target) -> AnswerJob:
    """The page's next answer for `conversation`, not started yet: what `chat_turns.start_answers` does for
    one target (the request from `build_request`, an assistant turn appended to the conversation)."""
    request = build_request(
        conversation.messages,
        conversation.settings,
        endpoint=target.endpoint.name,
        image_limit=target.endpoint.image_limit,
    )
    answer = Answer(endpoint=target.endpoint.name)
    conversation.messages.append(Message(role="assistant", answers=[answer]))
    return AnswerJob(
        target=target,
        request=request,
        settings=conversation.settings.model_copy(),
        answer=answer,
        timeout_s=REQUEST_TIMEOUT_S,
    )


def measure_alone(
    items: Sequence[Workload], *, target: Target, output_tokens: int
) -> dict[int, Conversation]:
    """Each workload's conversation answered on its own, one after the other."""
    done = {}
    for workload in items:
        conversation = conversation_for(workload, output_tokens=output_tokens, target=target)
        answer_job(conversation, target).run()
        done[workload.index] = conversation
    return done


@dataclass
class ConcurrentRun:
    conversations: dict[int, Conversation]
    started_at: dict[int, float]  # perf_counter when each answer's stream began (AnswerJob.run)
    save_s: dict[int, float]  # how long each conversation's save took
    wall_s: float
    store: ConversationStore

    def ended_at(self, index: int) -> float:
        return self.started_at[index] + (answer_of(self.conversations[index]).stats.total_time_s or 0.0)

    def max_in_flight(self) -> int:
        """Most requests between their start and their end at any moment: how many really ran together."""
        events = sorted(
            [(self.started_at[i], 1) for i in self.conversations]
            + [(self.ended_at(i), -1) for i in self.conversations]
        )
        most = current = 0
        for _, change in events:
            current += change
            most = max(most, current)
        return most


def run_concurrently(
    items: Sequence[Workload], *, target: Target, output_tokens: int, store: ConversationStore
) -> ConcurrentRun:
    """Every conversation prepared and its request built first; then all answers are released at once, each
    streamed by an AnswerJob in its own thread (as the page runs them), and each conversation is saved from
    that thread when its answer ends (the page saves at turn boundaries, per browser session)."""
    conversations = {
        workload.index: conversation_for(workload, output_tokens=output_tokens, target=target)
        for workload in items
    }
    jobs = {index: answer_job(conversation, target) for index, conversation in conversations.items()}
    started_at: dict[int, float] = {}
    save_s: dict[int, float] = {}
    go = threading.Event()

    def converse(index: int) -> None:
        go.wait()
        started_at[index] = time.perf_counter()
        jobs[index].run()
        before = time.perf_counter()
        store.save(conversations[index])
        save_s[index] = time.perf_counter() - before

    threads = [threading.Thread(target=converse, args=(index,), daemon=True) for index in jobs]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT_S)
    wall = time.perf_counter() - started
    return ConcurrentRun(conversations, started_at, save_s, wall, store)


def problems(
    items: Sequence[Workload], alone: dict[int, Conversation], run: ConcurrentRun, *, output_tokens: int
) -> list[str]:
    """Everything that went wrong, one sentence each; [] when every conversation is whole and its own."""
    found = []
    alone_counts = {index: answer_of(c).stats.prompt_tokens for index, c in alone.items()}
    if len(set(alone_counts.values())) != len(alone_counts):
        found.append(f"the workload is not identifiable: prompt_tokens measured alone repeat: {alone_counts}")
    for workload in items:
        index = workload.index
        solo, answer = answer_of(alone[index]), answer_of(run.conversations[index])
        label = f"conversation {index}"
        for name, one in (("alone", solo), ("concurrent", answer)):
            if one.status is not AnswerStatus.DONE:
                found.append(f"{label} ({name}) ended {one.status}: {one.error}")
            if one.stats.prompt_tokens is None or one.stats.completion_tokens is None:
                found.append(f"{label} ({name}) has no usage")
        if answer.stats.prompt_tokens != solo.stats.prompt_tokens:
            found.append(
                f"{label}: its stream reported {answer.stats.prompt_tokens} prompt tokens, "
                f"its request alone {solo.stats.prompt_tokens} (cross-talk?)"
            )
        if not 1 <= (answer.stats.completion_tokens or 0) <= output_tokens:
            found.append(f"{label}: {answer.stats.completion_tokens} completion tokens, max {output_tokens}")
        if answer.stats.completion_tokens and answer.stats.completion_tokens > 1 and not answer.content:
            found.append(f"{label}: {answer.stats.completion_tokens} completion tokens but no content")
        stored = run.store.load(run.conversations[index].id)
        if stored is None:
            found.append(f"{label} was not stored")
            continue
        if stored != run.conversations[index]:
            found.append(f"{label}: the stored conversation differs from the one answered")
        if stored.messages[0].text != workload.text:
            found.append(f"{label}: the stored question is another conversation's")
        if answer_of(stored).stats.prompt_tokens != solo.stats.prompt_tokens:
            found.append(f"{label}: the stored history holds another request's prompt_tokens")
    return found


def distribution(values: Sequence[float]) -> dict[str, float]:
    """p50/p95 (linear interpolation, as numpy) and max, in seconds."""
    ordered = sorted(values)
    if len(ordered) == 1:
        p50 = p95 = ordered[0]
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p95 = cuts[49], cuts[94]
    return {"p50": round(p50, 3), "p95": round(p95, 3), "max": round(ordered[-1], 3)}


def summary(
    items: Sequence[Workload], alone: dict[int, Conversation], run: ConcurrentRun, *, output_tokens: int
) -> dict[str, Any]:
    def stats(conversations: dict[int, Conversation]) -> tuple[list[float], list[float]]:
        answers = [answer_of(c) for c in conversations.values()]
        ttft = [a.stats.time_to_first_token_s for a in answers if a.stats.time_to_first_token_s is not None]
        return ttft, [a.stats.total_time_s for a in answers if a.stats.total_time_s is not None]

    alone_ttft, alone_total = stats(alone)
    ttft, total = stats(run.conversations)
    completion = sum(answer_of(c).stats.completion_tokens or 0 for c in run.conversations.values())
    found = problems(items, alone, run, output_tokens=output_tokens)
    return {
        "conversations": len(items),
        "output_tokens_max": output_tokens,
        "image_token_budget": IMAGE_TOKEN_BUDGET,
        "completed_with_usage": sum(
            answer_of(c).status is AnswerStatus.DONE and answer_of(c).stats.prompt_tokens is not None
            for c in run.conversations.values()
        ),
        "own_prompt_tokens": sum(
            answer_of(run.conversations[w.index]).stats.prompt_tokens
            == answer_of(alone[w.index]).stats.prompt_tokens
            for w in items
        ),
        "problems": found,
        "concurrent": {
            "wall_s": round(run.wall_s, 3),
            "ttft_s": distribution(ttft),
            "total_s": distribution(total),
            "answers_with_a_first_token": len(ttft),
            "completion_tokens": completion,
            "output_tokens_per_s": round(completion / run.wall_s, 1),
            "max_in_flight": run.max_in_flight(),
            "store_save_s": distribution(list(run.save_s.values())),
        },
        "alone": {
            "ttft_s": distribution(alone_ttft),
            "total_s": distribution(alone_total),
            "completion_tokens": sum(answer_of(c).stats.completion_tokens or 0 for c in alone.values()),
        },
        "requests": [
            {
                "index": w.index,
                "image": f"{w.image_width}x{w.image_height}",
                "words": w.words,
                "prompt_tokens_alone": answer_of(alone[w.index]).stats.prompt_tokens,
                "prompt_tokens_concurrent": answer_of(run.conversations[w.index]).stats.prompt_tokens,
                "completion_tokens": answer_of(run.conversations[w.index]).stats.completion_tokens,
                "completion_tokens_alone": answer_of(alone[w.index]).stats.completion_tokens,
                "ttft_s": _rounded(answer_of(run.conversations[w.index]).stats.time_to_first_token_s),
                "total_s": _rounded(answer_of(run.conversations[w.index]).stats.total_time_s),
            }
            for w in items
        ],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_load(
    *,
    base_url: str,
    api_key: str | None,
    model: str,
    conversations: int,
    output_tokens: int,
    store_path: Path,
) -> dict[str, Any]:
    """The whole measurement against a running server; returns the summary (see `summary`)."""
    target = target_for(base_url, api_key, model)
    items = workloads(conversations)
    alone = measure_alone(items, target=target, output_tokens=output_tokens)
    run = run_concurrently(
        items, target=target, output_tokens=output_tokens, store=ConversationStore(store_path)
    )
    return summary(items, alone, run, output_tokens=output_tokens)


def chart(result: dict[str, Any], path: Path) -> bool:
    """TTFT and total time of every request, alone vs all at once; False when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = result["requests"]
    fig, ax = plt.subplots(figsize=(10, 5), layout="constrained")
    index = [row["index"] for row in rows]
    ax.plot(index, [row["total_s"] for row in rows], "o", color="#4C72B0", label="total time")
    ax.plot(index, [row["ttft_s"] for row in rows], "s", color="#C44E52", label="time to first token")
    concurrent = result["concurrent"]
    for key, colour in (("ttft_s", "#C44E52"), ("total_s", "#4C72B0")):
        for q, style in (("p50", "--"), ("p95", ":")):
            ax.axhline(concurrent[key][q], color=colour, linestyle=style, linewidth=1)
    ax.set_xlabel("conversation (image size and prompt length grow with it)")
    ax.set_ylabel("seconds (lower is better)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(title="dashed: p50, dotted: p95")
    info = result["machine"]
    ax.set_title(
        f"{result['conversations']} concurrent conversations through the page's client code, "
        f"{result['output_tokens_max']} output tokens max\n"
        f"tiny Qwen3-VL, vLLM {info['vllm']} on {info['cpus']} CPUs (shared machine), {info['date'][:10]}"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> None:
    from benchmarks.common import RESULTS_DIR, command_line, load_average, machine, tiny_server
    from harness.tiny_checkpoint import SERVED_NAME

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    parser.add_argument("--output-tokens", type=int, default=OUTPUT_TOKENS, help="max_tokens per answer")
    args = parser.parse_args()
    api_key = secrets.token_urlsafe(16)
    info = machine()
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
        tiny_server(Path(tmp), api_key) as base_url,
    ):
        measured = run_load(
            base_url=base_url,
            api_key=api_key,
            model=SERVED_NAME,
            conversations=args.conversations,
            output_tokens=args.output_tokens,
            store_path=Path(tmp) / "chats.sqlite3",
        )
    info["load_average_after"] = load_average()
    result = {"command": command_line("benchmarks.load"), "machine": info, **measured}
    name = f"load-{args.conversations}"
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    drawn = chart(result, RESULTS_DIR / f"{name}.png")
    print(json.dumps({k: v for k, v in result.items() if k != "requests"}, indent=2))
    print(
        f"wrote {RESULTS_DIR / f'{name}.json'}"
        + (f" and {name}.png" if drawn else " (no chart: no matplotlib)")
    )
    if measured["problems"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
