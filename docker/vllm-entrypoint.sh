#!/bin/sh
# Entrypoint of the vllm-8b / vllm-4b compose services (mounted read-only into vllm/vllm-openai and run
# with /bin/sh, so it needs no exec bit). Runs `vllm serve --config /profiles/$SERVE_PROFILE.yaml` plus one
# flag per non-empty override; CLI flags win over the config file in vLLM, so the profile stays the single
# source of truth and .env only adjusts it. serve/config/overrides.py applies the same variables on bare metal,
# in the same order (tests/test_vllm_entrypoint.py keeps the two in step).
#
#   SERVE_PROFILE                  profile name, e.g. 8b-fp8 (required; compose sets it from SERVE_8B_PROFILE)
#   SERVE_GPU_MEMORY_UTILIZATION   -> --gpu-memory-utilization
#   SERVE_MAX_MODEL_LEN            -> --max-model-len
#   SERVE_QUANTIZATION             -> --quantization
#   SERVE_PROFILES_DIR             where the profiles are mounted (default /profiles; tests point it elsewhere)
#   SERVE_ENV_VLLM_API_KEY, SERVE_ENV_HF_TOKEN
#                                  the shell's / .env's VLLM_API_KEY and HF_TOKEN: when set, they win over
#                                  the ones from secrets.env (compose's env_file), as in `serve up`
# Arguments given to the script (compose `command:`) are passed on after these flags.
set -eu

die() {
    printf 'vllm-entrypoint: %s\n' "$*" >&2
    exit 64
}

# Strip surrounding whitespace, as the Python launcher does; a blank value counts as unset.
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

profiles_dir=${SERVE_PROFILES_DIR:-/profiles}
profile=$(trim "${SERVE_PROFILE:-}")

# Only plain names: no slash, so the value can never leave the profiles directory.
case $profile in
    '')
        die "SERVE_PROFILE is empty. Set SERVE_8B_PROFILE / SERVE_4B_PROFILE in .env to a file name in profiles/ without .yaml (e.g. 8b, 8b-fp8)." ;;
    *[!A-Za-z0-9._-]*)
        die "SERVE_PROFILE='$profile' is not a profile name: use only letters, digits, '.', '_' and '-' (e.g. 8b-fp8)." ;;
esac

config=$profiles_dir/$profile.yaml
if [ ! -f "$config" ]; then
    available=''
    for file in "$profiles_dir"/*.yaml; do
        if [ -f "$file" ]; then
            name=${file##*/}
            available="$available ${name%.yaml}"
        fi
    done
    die "no profile '$profile': $config does not exist. Available:${available:- none (is $profiles_dir mounted?)}"
fi

# Prepend in reverse so the flags come out as: gpu-memory-utilization, max-model-len, quantization, "$@".
quantization=$(trim "${SERVE_QUANTIZATION:-}")
if [ -n "$quantization" ]; then
    set -- --quantization "$quantization" "$@"
fi
max_model_len=$(trim "${SERVE_MAX_MODEL_LEN:-}")
if [ -n "$max_model_len" ]; then
    set -- --max-model-len "$max_model_len" "$@"
fi
gpu_memory_utilization=$(trim "${SERVE_GPU_MEMORY_UTILIZATION:-}")
if [ -n "$gpu_memory_utilization" ]; then
    set -- --gpu-memory-utilization "$gpu_memory_utilization" "$@"
fi

# Log the profile only: the remaining arguments may hold secrets (e.g. --api-key given as a command).
printf 'vllm-entrypoint: profile %s\n' "$config" >&2
exec vllm serve --config "$config" "$@"
