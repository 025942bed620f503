"""GPU planning: the GPUs (detect, gpus), the checkpoints' architecture facts, vLLM's memory arithmetic (plan),
the one placement of a stack's instances on the GPUs (placement, alternatives, resolve), and how it is shown
(report)."""
