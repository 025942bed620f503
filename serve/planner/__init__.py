"""GPU memory planning: the GPUs, the checkpoints' architecture facts, and vLLM's memory arithmetic."""
