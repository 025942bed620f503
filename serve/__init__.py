"""Serving stack for Qwen3-VL on vLLM: profiles -> checks, memory plan, launcher."""
