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

# llama.cpp builds for this CPU (-march=native), which turns on its AMX kernels where the CPU
# reports AMX; in a VM that reports AMX without enabling its registers (this kind of machine)
# they crash the first decode with a general protection fault. Build without them.
if [ "$(uname -m)" = x86_64 ]; then
    LLAMA_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
else
    LLAMA_CFLAGS=""
fi
LLAMA=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
# The wheel is built once per version and flags, outside the checkout: pip's own wheel cache
# would hand a fresh clone a wheel built with other flags.
WHEELS=${SMALLCODER_HOME:-$HOME/.cache/smallcoder}/wheels/$(echo "$LLAMA $LLAMA_CFLAGS" | sha256sum | cut -c1-16)

# Reinstall only when the declared dependencies or the build flags changed: the second run
# takes a second.
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
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

SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
# The agent runs a workspace's tests under bubblewrap when it is installed (agent/isolation.py:
# no network, the scratch copy the only writable folder). Without it they run unconfined.
if [ "$(uname -s)" = Linux ] && ! command -v bwrap > /dev/null && command -v apt-get > /dev/null
then
    echo "==> installing bubblewrap (confines the agent's test runs)"
    $SUDO apt-get install -y -q bubblewrap > /dev/null \
        || echo "==> could not install bubblewrap: run \`sudo apt install bubblewrap\`" >&2
fi

# The agent's runner tests (tests/agent/test_runners.py) run the real tools where they are
# installed and skip the others: Go from Debian; vitest and jest from npm into
# .tools/test-runners (node_modules/ of the repository holds the extension's packages only).
if [ "$(uname -s)" = Linux ] && ! command -v go > /dev/null && command -v apt-get > /dev/null
then
    echo "==> installing Go (the agent's go test runner tests)"
    $SUDO apt-get install -y -q golang-go > /dev/null \
        || echo "==> could not install Go: the go test runner tests will be skipped" >&2
fi
RUNNERS=.tools/test-runners
if command -v npm > /dev/null && { ! [ -f "$RUNNERS/node_modules/vitest/package.json" ] \
        || ! [ -f "$RUNNERS/node_modules/jest/package.json" ]; }; then
    echo "==> installing vitest and jest (the agent's JavaScript runner tests)"
    npm install --prefix "$RUNNERS" --no-audit --no-fund --silent vitest@3 jest@29 > /dev/null \
        || echo "==> could not install vitest and jest: their runner tests will be skipped" >&2
fi

for model in "$@"; do
    "$VENV/bin/smallcoder" model pull "$model"
done
