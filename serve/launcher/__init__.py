"""`serve up`: vLLM as a supervised child process on bare metal, its start-up phases, readiness and failures."""
