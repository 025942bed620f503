"""The capacity table: replicas for N concurrent chats, from the planner's KV capacity of one replica."""

from __future__ import annotations

import math

from harness.serve_up import REPO_ROOT
from serve.config.profile import load_profile, resolve_profile_path
from serve.k8s.capacity import DEFAULT_TOKENS_PER_CHAT, capacity_row, readme_table
from serve.k8s.sizing import size_pod
from serve.planner.gpus import GPUS


def test_replicas_are_the_chats_over_what_one_replica_holds() -> None:
    profile = load_profile(resolve_profile_path("8b", REPO_ROOT / "profiles"), {})
    row = capacity_row(profile, "l40s", [1, 18, 19, 256], DEFAULT_TOKENS_PER_CHAT)
    kv_tokens = size_pod(profile, GPUS["l40s"]).kv_tokens
    assert row.kv_tokens == kv_tokens
    assert row.chats_per_replica == kv_tokens // DEFAULT_TOKENS_PER_CHAT == 18
    assert row.replicas == {1: 1, 18: 1, 19: 2, 256: math.ceil(256 / 18)}


def test_a_shortened_context_holds_one_chat_per_replica() -> None:
    profile = load_profile(resolve_profile_path("8b", REPO_ROOT / "profiles"), {})
    row = capacity_row(profile, "l4", [16], DEFAULT_TOKENS_PER_CHAT)
    assert (row.max_model_len, row.shortened, row.chats_per_replica, row.replicas) == (
        8112,  # what the placement gives 8B on an L4
        True,
        1,
        {16: 16},
    )


def test_the_readme_shows_the_table_the_code_computes() -> None:
    assert readme_table() in (REPO_ROOT / "README.md").read_text()
