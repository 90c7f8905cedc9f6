#!/usr/bin/env bash
# Sets up everything SmallCoder needs on this machine, idempotently:
# the Python venv with llama-cpp-python compiled, and the model files named as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

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

# Reinstall only when the declared dependencies or the build flags changed: the second run
# takes a second.
want=$(cat pyproject.toml scripts/setup.sh scripts/llama_flags.sh | sha256sum | cut -c1-16)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "==> installing Python packages (llama-cpp-python compiles once, about 5 minutes)"
    "$VENV/bin/pip" install --quiet --upgrade pip
    if ! ls "$WHEELS"/llama_cpp_python-*.whl > /dev/null 2>&1; then
        CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" "$VENV/bin/pip" wheel --quiet --no-deps \
            --no-cache-dir --wheel-dir "$WHEELS.partial" "$LLAMA"
        mv "$WHEELS.partial" "$WHEELS"
    fi
    "$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-*.whl
    "$VENV/bin/pip" install --quiet --find-links "$WHEELS" -e ".[dev,train]"
    echo "$want" > "$STAMP"
fi

# llama.cpp's own server, for a team server and the remote engine's tests (issue #33): built
# from the same llama.cpp as the wheel, with the same flags, once (then a file test).
PIP="$VENV/bin/pip" scripts/build_llama_server.sh

# The agent runs a workspace's tests under bubblewrap when it is installed (agent/isolation.py:
# no network, the scratch copy the only writable folder). Without it they run unconfined.
if [ "$(uname -s)" = Linux ] && ! command -v bwrap > /dev/null && command -v apt-get > /dev/null
then
    echo "==> installing bubblewrap (confines the agent's test runs)"
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
    $SUDO apt-get install -y -q bubblewrap > /dev/null \
        || echo "==> could not install bubblewrap: run \`sudo apt install bubblewrap\`" >&2
fi

for model in "$@"; do
    "$VENV/bin/smallcoder" model pull "$model"
done
