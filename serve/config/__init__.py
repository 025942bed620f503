"""Profiles and their overrides: what each vLLM instance is started with (profiles/*.yaml, .env, environment)."""
