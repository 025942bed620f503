#!/bin/sh
# Entrypoint of the vllm-8b / vllm-4b compose services (mounted read-only into vllm/vllm-openai and run with
# /bin/sh, so it needs no exec bit). It hands over to serve.launcher.container, mounted read-only from ./serve:
# that resolves the same placement as `python -m serve up` on the GPUs this container sees (which GPU, the
# share, the context), prints it in one line, and execs `vllm serve --config /profiles/$SERVE_PROFILE.yaml`
# with the overrides and the resolved values as flags (CLI flags win over the config file in vLLM, so the
# profile stays a plain vLLM config file). It needs only what the vLLM image has: Python and vLLM's own
# dependencies. Arguments given to the script (compose `command:`) are passed on after those flags.
#
#   SERVE_ROOT     where ./serve is mounted (default /opt/qwen3-vl; tests point it at the repository)
#   SERVE_PYTHON   the interpreter (default python3, the image's)
#   SERVE_ENV_VLLM_API_KEY, SERVE_ENV_HF_TOKEN
#                  the shell's / .env's VLLM_API_KEY and HF_TOKEN: when set, they win over the ones from
#                  secrets.env (compose's env_file), as in `serve up`
# Every other variable is read by serve.launcher.container (its docstring lists them).
set -eu

# Strip surrounding whitespace, as the Python side does; a blank value counts as unset.
trim() {
    value=$1
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    printf '%s' "$value"
}

# $1 = the shell's / .env's value of secret $2 (from SERVE_ENV_$2): set, it replaces secrets.env's.
prefer_env_value() {
    value=$(trim "$1")
    if [ -n "$value" ]; then
        export "$2=$value"
    fi
}
prefer_env_value "${SERVE_ENV_VLLM_API_KEY:-}" VLLM_API_KEY
prefer_env_value "${SERVE_ENV_HF_TOKEN:-}" HF_TOKEN
unset SERVE_ENV_VLLM_API_KEY SERVE_ENV_HF_TOKEN value

serve_root=${SERVE_ROOT:-/opt/qwen3-vl}
if [ ! -f "$serve_root/serve/launcher/container.py" ]; then
    printf 'vllm-entrypoint: %s\n' "$serve_root/serve is missing: docker-compose.yml mounts ./serve there read-only; start the stack with docker compose from the repository root" >&2
    exit 64
fi

# sys.path gets the mount point for this one process only: vLLM, exec'd from it, sees the environment unchanged.
exec "${SERVE_PYTHON:-python3}" -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); from serve.launcher.container import main; sys.exit(main(sys.argv[1:]))' "$serve_root" "$@"
