"""The real-vLLM harness shared by tests/ and benchmarks/: a tiny random Qwen3-VL checkpoint built offline,
and `python -m serve up` run as a child process the way a user runs it."""
