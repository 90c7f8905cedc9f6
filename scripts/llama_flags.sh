# Sourced by scripts/setup.sh and scripts/build_llama_server.sh: the pinned llama-cpp-python
# requirement ($LLAMA) and the compiler flags both of its builds use ($LLAMA_CFLAGS).
#
# llama.cpp builds for this CPU (-march=native), which turns on its AMX kernels where the CPU
# reports AMX; in a VM that reports AMX without enabling its registers (this kind of machine)
# they crash the first decode with a general protection fault. Build without them.
if [ "$(uname -m)" = x86_64 ]; then
    LLAMA_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
else
    LLAMA_CFLAGS=""
fi
LLAMA=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
