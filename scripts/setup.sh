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

# Reinstall only when the declared dependencies changed: the second run takes a second.
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "==> installing Python packages (llama-cpp-python compiles once, about 3 minutes)"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet -e ".[dev,train]"
    echo "$want" > "$STAMP"
fi

for model in "$@"; do
    "$VENV/bin/smallcoder" model pull "$model"
done
