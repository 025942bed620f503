"""The gateway: one OpenAI URL in front of the vLLM instances, routing by `model` and swapping models in and out
when they cannot all be awake at once.

Routes (routes.py) are kept apart from the logic: the instances and their supervision (instances.py,
supervised.py, remote.py), the swap modes (swap.py), the policy that queues, drains and swaps (controller.py),
the upstream proxy (proxy.py), metrics (metrics.py) and OpenAI-shaped errors (errors.py).
"""
