"""Test harness: a tiny random Qwen3-VL checkpoint served by a real vLLM on CPU, offline."""
