"""Replicas needed for N concurrent chats, from the planner's KV capacity of one replica.

A chat in flight holds its whole context in the KV cache (the history is re-sent each turn, and prefix
caching keeps it there between turns), so one replica serves about `KV tokens / tokens per chat` chats at
once before requests start to queue. Run `python -m serve.k8s.capacity` for the README's table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field

from serve.config.profile import Profile, load_profile, resolve_profile_path
from serve.k8s.sizing import PodSizing, SizingError, size_pod
from serve.planner.gpus import GPUS

# A chat with the page's 4 images at 1,280 tokens each and ~3K tokens of text and answers.
DEFAULT_TOKENS_PER_CHAT = 8192
README_PROFILES = ("8b", "8b-fp8", "4b", "4b-fp8")
README_GPUS = ("h100", "a100-80gb", "a100-40gb", "l40s", "l4", "rtx4090")
README_USERS = (16, 64, 256)


class CapacityRow(BaseModel):
    profile: str = Field(description="Profile name.")
    gpu: str = Field(description="GPU type.")
    kv_tokens: int = Field(description="Tokens one replica's KV cache holds (0: does not run on it).")
    max_model_len: int = Field(description="Context one replica runs with (shortened where it does not fit).")
    shortened: bool = Field(description="The profile's context did not fit and was shortened.")
    chats_per_replica: int = Field(description="Chats of tokens_per_chat one replica holds at once.")
    replicas: dict[int, int | None] = Field(description="Concurrent chats -> replicas (None: does not run).")


def chats_per_replica(sizing: PodSizing, tokens_per_chat: int) -> int:
    """A chat cannot be longer than the context, so a replica holds at least one."""
    return max(1, sizing.kv_tokens // min(tokens_per_chat, sizing.max_model_len))


def capacity_row(profile: Profile, gpu_key: str, users: Sequence[int], tokens_per_chat: int) -> CapacityRow:
    gpu = GPUS[gpu_key]
    try:
        sizing = size_pod(profile, gpu)
    except SizingError:
        return CapacityRow(
            profile=profile.name,
            gpu=gpu.label,
            kv_tokens=0,
            chats_per_replica=0,
            replicas=dict.fromkeys(users),
        )
    per_replica = chats_per_replica(sizing, tokens_per_chat)
    return CapacityRow(
        profile=profile.name,
        gpu=gpu.label,
        kv_tokens=sizing.kv_tokens,
        max_model_len=sizing.max_model_len,
        shortened=sizing.max_model_len < sizing.profile_max_model_len,
        chats_per_replica=per_replica,
        replicas={n: math.ceil(n / per_replica) for n in users},
    )


def markdown_table(rows: Sequence[CapacityRow], users: Sequence[int]) -> str:
    """GPU rows, profile columns; each cell: chats per replica, then replicas for each N."""
    profiles = list(dict.fromkeys(row.profile for row in rows))
    gpus = list(dict.fromkeys(row.gpu for row in rows))
    by_key = {(row.gpu, row.profile): row for row in rows}
    lines = [
        "| GPU | " + " | ".join(f"`{name}`" for name in profiles) + " |",
        "|---|" + "---|" * len(profiles),
    ]
    for gpu in gpus:
        cells = []
        for name in profiles:
            row = by_key[(gpu, name)]
            if not row.chats_per_replica:
                cells.append("does not fit")
                continue
            counts = " / ".join(str(row.replicas[n]) for n in users)
            context = f" ({row.max_model_len:,}-token context)" if row.shortened else ""
            cells.append(f"{row.chats_per_replica} per replica{context}: **{counts}**")
        lines.append(f"| {gpu} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_table() -> str:
    """The README's table: the four main profiles on the README's GPUs, profile defaults otherwise."""
    profiles = [load_profile(resolve_profile_path(name, None), {}) for name in README_PROFILES]
    rows = [
        capacity_row(profile, gpu, README_USERS, DEFAULT_TOKENS_PER_CHAT)
        for gpu in README_GPUS
        for profile in profiles
    ]
    return markdown_table(rows, README_USERS)


if __name__ == "__main__":
    print(readme_table())
