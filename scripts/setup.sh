#!/usr/bin/env bash
# Sets up everything SmallCoder needs on this machine, idempotently:
# the Python venv with llama-cpp-python compiled, and the model files named as arguments.
#   scripts/setup.sh [--extras LIST] MODEL ...
# LIST names pyproject.toml's optional dependencies to install (default "dev,train": the tests
# and personal-adapter training); `make demo` asks for "dev" only (pytest, which the demo's
# agent runs), so it installs no PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS=dev,train
if [ "${1:-}" = --extras ]; then
    EXTRAS=${2:?--extras needs a comma-separated list, e.g. dev,train}
    shift 2
fi

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.smallcoder-deps

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating the Python environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi

source scripts/llama_flags.sh
# The wheel is built once per version and flags, outside the checkout: pip's own wheel cache
# would hand a fresh clone a wheel built with other flags.
WHEELS=${SMALLCODER_HOME:-$HOME/.cache/smallcoder}/wheels/$(echo "$LLAMA $LLAMA_CFLAGS" | sha256sum | cut -c1-16)

# Reinstall only when the declared dependencies or the build flags changed, or an extra is asked
# for that is not installed yet: the second run takes a second. The stamp holds the hash, then
# the extras installed.
want=$(cat pyproject.toml scripts/setup.sh scripts/llama_flags.sh | sha256sum | cut -c1-16)
read -r have_hash have_extras 2>/dev/null < "$STAMP" || true
installed=yes
[ "${have_hash:-}" = "$want" ] || installed=no
for extra in ${EXTRAS//,/ }; do
    [[ ",${have_extras:-}," == *",$extra,"* ]] || installed=no
done
if [ "$installed" = no ]; then
    # A venv that has more extras keeps them (the test set-up after the demo's adds train).
    [ "${have_hash:-}" = "$want" ] && [ -n "${have_extras:-}" ] && EXTRAS="$have_extras,$EXTRAS"
    EXTRAS=$(echo "$EXTRAS" | tr , '\n' | sed '/^$/d' | sort -u | paste -sd,)
    echo "==> installing Python packages (llama-cpp-python compiles once, about 5 minutes)"
    "$VENV/bin/pip" install --quiet --upgrade pip
    if ! ls "$WHEELS"/llama_cpp_python-*.whl > /dev/null 2>&1; then
        CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" "$VENV/bin/pip" wheel --quiet --no-deps \
            --no-cache-dir --wheel-dir "$WHEELS.partial" "$LLAMA"
        mv "$WHEELS.partial" "$WHEELS"
    fi
    "$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-*.whl
    "$VENV/bin/pip" install --quiet --find-links "$WHEELS" -e ".[$EXTRAS]"
    echo "$want $EXTRAS" > "$STAMP"
fi

SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
# The agent runs a workspace's tests under bubblewrap when it is installed (agent/isolation.py:
# no network, the scratch copy the only writable folder). Without it they run unconfined.
if [ "$(uname -s)" = Linux ] && ! command -v bwrap > /dev/null && command -v apt-get > /dev/null
then
    echo "==> installing bubblewrap (confines the agent's test runs)"
    $SUDO apt-get install -y -q bubblewrap > /dev/null \
        || echo "==> could not install bubblewrap: run \`sudo apt install bubblewrap\`" >&2
fi

for model in "$@"; do
    "$VENV/bin/smallcoder" model pull "$model"
done
