"""`serve bench`: a multimodal benchmark of OpenAI-compatible endpoints (workload, runner, metrics, report)."""
