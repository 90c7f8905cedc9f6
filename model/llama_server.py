"""The `llama-server` that scripts/setup.sh builds from the pinned llama.cpp, started on
loopback: the remote engine's tests and bench/team.py run it (a team runs the README's command).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from model.errors import ModelError
from model.home import smallcoder_home

START_TIMEOUT_S = 120.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def llama_server_binary() -> Path | None:
    """The built binary ($SMALLCODER_HOME/bin/llama-server), if it is there."""
    path = smallcoder_home() / "bin" / "llama-server"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class ServerOptions:
    model_path: Path
    api_key: str = ""
    parallel: int = 1
    context_tokens: int = 4096  # in all; each of the `parallel` slots gets its share
    threads: int = 1
    cache_reuse_tokens: int = 256
    port: int = 0  # 0: a free one

    def command(self, binary: Path, port: int) -> list[str]:
        command = [str(binary), "--model", str(self.model_path), "--host", "127.0.0.1",
                   "--port", str(port), "--parallel", str(self.parallel),
                   "--ctx-size", str(self.context_tokens), "--threads", str(self.threads),
                   "--threads-batch", str(self.threads), "--batch-size", "512",
                   "--cache-reuse", str(self.cache_reuse_tokens), "--no-webui"]
        return command + (["--api-key", self.api_key] if self.api_key else [])


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, SIGKILL it when the process that started it dies,
    however that dies (a bench killed from the shell left its server holding the CPU). Linux
    ties this to the starting thread: start servers from a thread that outlives them."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class LlamaServerProcess:
    """One llama-server child: started, waited for until healthy, stopped or killed."""

    def __init__(self, options: ServerOptions, log_path: Path) -> None:
        binary = llama_server_binary()
        if binary is None:
            raise ModelError("llama-server is not built: run scripts/setup.sh")
        self.options = options
        self.port = options.port or free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._binary = binary
        self.process: subprocess.Popen | None = None

    def start(self) -> LlamaServerProcess:
        with self.log_path.open("ab") as log:
            # The key is on the command line here (a test's throwaway key); the README tells a
            # team to use LLAMA_API_KEY instead, which `ps` does not show.
            self.process = subprocess.Popen(self.options.command(self._binary, self.port),
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ModelError(f"llama-server exited with {self.process.returncode} at "
                                 f"start; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass  # not listening yet, or loading the model (503)
            time.sleep(0.2)
        self.stop()
        raise ModelError(f"llama-server did not become healthy in {START_TIMEOUT_S:g} s; see "
                         f"{self.log_path}")

    def kill(self) -> None:
        """SIGKILL, as a crash or a pulled plug would: no goodbye to open streams."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LlamaServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
