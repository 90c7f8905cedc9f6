#!/usr/bin/env bash
# Sets up, idempotently, the programs the test suite drives for real beside SmallCoder: llama.cpp's
# llama-server and the test runners of other languages (`make test` and `make setup` run it; the
# demo needs none of them).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")

# llama.cpp's own server, for the remote engine's tests and a team server (issue #33): built
# from the same llama.cpp as the wheel, with the same flags, once (then a file test).
PIP=.venv/bin/pip scripts/build_llama_server.sh
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

