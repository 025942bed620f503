"""What saving a chat costs while an answer streams: the store's per-turn writes against rewriting the whole
conversation (what the page did before turns had rows of their own), side by side on one database file.

Run from the repository root:  .venv/bin/python -m benchmarks.store_writes
Writes benchmarks/results/store_writes.json (+ store_writes.png).

The chat is what the page keeps on long use: `--turns` exchanges, one image (at the default 1280-token budget)
per user turn, answers of ~1,500 characters. Each round alternates the two ways of saving the streaming answer
(the page saves it every 2 s), so machine noise hits both alike; medians and the ratio are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from benchmarks.common import RESULTS_DIR, command_line, machine
from benchmarks.image_prep import photo_like_jpeg
from frontend.conversation import Answer, AnswerStatus, Conversation, Message
from frontend.images import prepare_image
from frontend.store import ConversationStore

ANSWER = "The red rectangle is on the left and the blue circle on the right. " * 22


def long_chat(turns: int) -> Conversation:
    image = prepare_image(photo_like_jpeg(seed=1, size=(1600, 1200)), "photo.jpg")
    conversation = Conversation(title="Long chat")
    for turn in range(turns):
        conversation.messages.append(Message(role="user", text=f"Question {turn}", images=[image]))
        done = Answer(endpoint="Qwen3-VL-8B", content=ANSWER, status=AnswerStatus.DONE)
        conversation.messages.append(Message(role="assistant", answers=[done]))
    return conversation


def measure(turns: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        store = ConversationStore(Path(folder) / "chats.sqlite3")
        conversation = long_chat(turns)
        store.save(conversation)
        streaming = conversation.messages[-1]
        whole, per_turn = [], []
        for round_ in range(rounds):
            streaming.answers[0].content = ANSWER[: 20 * (round_ + 1)]
            started = time.perf_counter()
            store.save(conversation)  # the whole conversation, every turn and image rewritten
            whole.append(time.perf_counter() - started)
            started = time.perf_counter()
            store.update_turn(conversation.id, streaming, updated_at=time.time())
            per_turn.append(time.perf_counter() - started)
        size = len(conversation.model_dump_json())
    return {
        "turns": turns,
        "conversation_json_bytes": size,
        "whole_conversation_ms_median": round(statistics.median(whole) * 1000, 3),
        "one_turn_ms_median": round(statistics.median(per_turn) * 1000, 3),
        "ratio_whole_over_turn": round(statistics.median(whole) / statistics.median(per_turn), 1),
    }


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4))
    turns = [row["turns"] for row in rows]
    axis.plot(turns, [row["whole_conversation_ms_median"] for row in rows], "o-", label="whole conversation")
    axis.plot(turns, [row["one_turn_ms_median"] for row in rows], "o-", label="one turn (the page now)")
    axis.set_xlabel("exchanges in the chat (one image each)")
    axis.set_ylabel("median ms per save")
    axis.set_title("Saving a streaming answer")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[2, 8, 32], help="chat lengths to measure")
    parser.add_argument("--rounds", type=int, default=30, help="saves of each kind per chat length")
    args = parser.parse_args()
    rows = [measure(turns, args.rounds) for turns in args.turns]
    result = {
        "command": command_line("benchmarks.store_writes"),
        "machine": machine(),
        "rounds": args.rounds,
        "results": rows,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "store_writes.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(rows, RESULTS_DIR / "store_writes.png")
    for row in rows:
        print(
            f"{row['turns']:>3} exchanges ({row['conversation_json_bytes'] / 1e6:.1f} MB): whole "
            f"{row['whole_conversation_ms_median']:.2f} ms, one turn {row['one_turn_ms_median']:.2f} ms "
            f"({row['ratio_whole_over_turn']}x)"
        )


if __name__ == "__main__":
    main()
