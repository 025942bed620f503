"""`serve k8s`: the same profiles on Kubernetes through vLLM production-stack's Helm chart (`vllm-stack`)."""
