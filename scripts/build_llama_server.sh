#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (the team server of issue #33) from the llama.cpp that the
# pinned llama-cpp-python sdist vendors, once per version and flags, into $SMALLCODER_HOME/bin.
# Called by scripts/setup_test_tools.sh (make test, make setup); the second run is a file test. The remote engine's tests call it
# too, so a machine set up before it existed builds it before they run.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/llama_flags.sh
PIP=${PIP:-.venv/bin/pip}
HOME_DIR=${SMALLCODER_HOME:-$HOME/.cache/smallcoder}
# Keyed like the wheel: another version or other flags build again, beside the old one.
BUILT=$HOME_DIR/bin/llama-server-$(echo "$LLAMA $LLAMA_CFLAGS" | sha256sum | cut -c1-16)
LINK=$HOME_DIR/bin/llama-server

if [ ! -x "$BUILT/llama-server" ]; then
    echo "==> building llama-server from the $LLAMA sdist (once, about 15 minutes on 2 cores)"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    # pip's cache serves the sdist when pip has fetched it before; --no-binary keeps the
    # source, not the wheel.
    "$PIP" download --quiet --no-deps --no-binary :all: --dest "$WORK" "$LLAMA"
    tar -xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
    SOURCE=$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)
    # Static, so the binary needs no libllama beside it; no curl, OpenSSL or web UI: it
    # serves loopback or a team LAN and never downloads models (the UI would be fetched).
    CFLAGS="$LLAMA_CFLAGS" CXXFLAGS="$LLAMA_CFLAGS" cmake -S "$SOURCE" -B "$WORK/build" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF > "$WORK/configure.log"
    # Two jobs under nice: the machine stays usable while it builds.
    nice -n 10 cmake --build "$WORK/build" --target llama-server -j2 > "$WORK/build.log" \
        || { tail -30 "$WORK/build.log" >&2; exit 1; }
    mkdir -p "$BUILT.partial"
    cp "$WORK/build/bin/llama-server" "$BUILT.partial/"
    rm -rf "$BUILT"
    mv "$BUILT.partial" "$BUILT"
fi
ln -sfn "$BUILT/llama-server" "$LINK"
echo "==> llama-server: $LINK"
