#!/bin/sh
# Entrypoint of the gateway compose service (mounted read-only into vllm/vllm-openai and run with /bin/sh, so it
# needs no exec bit). It hands over to serve.compose.gateway_entrypoint, mounted read-only from ./serve: that
# fronts the model services that run (SERVE_GATEWAY_UPSTREAMS) and execs `python -m serve gateway` attached to
# them on the compose network. Arguments given to the script (compose `command:`) go to `serve gateway`.
#
#   SERVE_ROOT     where ./serve is mounted (default /opt/qwen3-vl; tests point it at the repository)
#   SERVE_PYTHON   the interpreter (default python3, the image's)
#   SERVE_ENV_VLLM_API_KEY   the shell's / .env's VLLM_API_KEY: when set, it wins over secrets.env's
set -eu

trim() {
    value=$1
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    printf '%s' "$value"
}
value=$(trim "${SERVE_ENV_VLLM_API_KEY:-}")
if [ -n "$value" ]; then
    export VLLM_API_KEY="$value"
fi
unset SERVE_ENV_VLLM_API_KEY value

serve_root=${SERVE_ROOT:-/opt/qwen3-vl}
if [ ! -f "$serve_root/serve/compose/gateway_entrypoint.py" ]; then
    printf 'gateway-entrypoint: %s\n' "$serve_root/serve is missing: docker-compose.yml mounts ./serve there read-only; start the stack with docker compose from the repository root" >&2
    exit 64
fi
export SERVE_PROFILES_DIR="${SERVE_PROFILES_DIR:-/profiles}"

exec "${SERVE_PYTHON:-python3}" -c 'import sys; root = sys.argv.pop(1); sys.path.insert(0, root); from serve.compose.gateway_entrypoint import main; sys.exit(main(sys.argv[1:], root))' "$serve_root" "$@"
