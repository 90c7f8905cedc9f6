"""The fake-engine language server driven byte by byte, as a hostile or broken client would.

pytest-lsp speaks only well-formed LSP; these tests need to send malformed framing and
envelopes, so this client writes raw bytes and reads the server's frames on a thread of its own.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.conftest import REPO_ROOT

SERVER = [sys.executable, str(REPO_ROOT / "tests" / "lsp_fake_server.py")]
ROOT_URI = "file:///work/project"


def frame(message: Any) -> bytes:
    """A message as the editor sends it: JSON with a Content-Length header."""
    body = json.dumps(message).encode() if not isinstance(message, bytes) else message
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class WireServer:
    """A server process, its frames collected by id; requests it makes are answered null."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, env={**os.environ, **env})
        self.responses: dict[Any, dict] = {}
        self.notifications: list[dict] = []
        self._arrived = threading.Condition()
        self._outgoing: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read_frames, daemon=True).start()
        threading.Thread(target=self._write_frames, daemon=True).start()

    # ------------------------------------------------------------ sending

    def send_raw(self, data: bytes) -> None:
        """Queued: a writer thread sends, so a server that stops reading cannot block a test."""
        self._outgoing.put(data)

    def send(self, message: Any) -> None:
        self.send_raw(frame(message))

    def request(self, method: str, params: Any, request_id: Any,
                timeout_s: float = 10) -> dict:
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        return self.response(request_id, timeout_s)

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, model_path: str, request_id: Any = "init",
                   timeout_s: float = 10) -> dict:
        answer = self.request("initialize", {
            "processId": None, "capabilities": {}, "rootUri": ROOT_URI,
            "initializationOptions": {"model": model_path, "logLevel": "debug"},
            "workspaceFolders": [{"uri": ROOT_URI, "name": "project"}]}, request_id, timeout_s)
        self.notify("initialized", {})
        return answer

    def wait_ready(self, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        number = 0
        while time.monotonic() < deadline:
            number += 1
            status = self.request("smallcoder/status", {}, f"ready?{number}")
            if status.get("result", {}).get("state") == "ready":
                return
            time.sleep(0.05)
        raise AssertionError(f"server never became ready: {status}")

    # ------------------------------------------------------------ receiving

    def response(self, request_id: Any, timeout_s: float = 10) -> dict:
        """The server's answer to `request_id`; an AssertionError when none comes in time."""
        key = json.dumps(request_id)
        with self._arrived:
            if not self._arrived.wait_for(lambda: key in self.responses, timeout_s):
                raise AssertionError(f"no answer to request {request_id!r} in {timeout_s} s; "
                                     f"server alive: {self.alive()}")
            return self.responses[key]

    def shown_messages(self) -> list[str]:
        """What the server asked the editor to pop up (window/showMessage)."""
        with self._arrived:
            return [note["params"]["message"] for note in self.notifications
                    if note.get("method") == "window/showMessage"]

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    def close(self, timeout_s: float = 5) -> int | None:
        """Ask for an orderly exit; kill after `timeout_s` for the answer to shutdown and as
        long again for the exit. The exit code, None if it was killed."""
        if self.alive():
            try:
                self.request("shutdown", None, "shutdown", timeout_s=timeout_s)
                self.notify("exit", None)
                return self.process.wait(timeout_s)
            except (AssertionError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
                return None
            finally:
                self._outgoing.put(None)
                self._log.close()
        self._outgoing.put(None)
        self._log.close()
        return self.process.returncode

    def _write_frames(self) -> None:
        while (data := self._outgoing.get()) is not None:
            try:
                self.process.stdin.write(data)
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError):
                return

    def _read_frames(self) -> None:
        stdout = self.process.stdout
        while True:
            length = None
            while (line := stdout.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                return
            message = json.loads(stdout.read(length))
            if "method" in message and "id" in message:
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            with self._arrived:
                if "method" in message:
                    self.notifications.append(message)
                else:
                    self.responses[json.dumps(message.get("id"))] = message
                self._arrived.notify_all()
