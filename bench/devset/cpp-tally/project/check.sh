#!/bin/sh
# Build, then run the tests; arguments go to ctest.
set -e
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug > /dev/null
cmake --build build
ctest --test-dir build --output-on-failure "$@"
