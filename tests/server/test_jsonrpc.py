"""The server's JSON-RPC layer in process: what it keeps after messages are handled."""

from __future__ import annotations

import asyncio
import json

from server.serve import create_server
from tests.fakes import ScriptedEngine


class CollectingWriter:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


def body(message: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", **message}).encode()


async def test_handled_notifications_leave_no_futures_behind(tmp_path):
    """An editor sends a didChange per keystroke: a day of typing must not pile them up."""
    server = create_server(lambda _path, _vram_mb: ScriptedEngine([""]))
    protocol = server.protocol
    protocol.set_writer(CollectingWriter())
    protocol.receive(body({"id": 1, "method": "initialize", "params": {
        "processId": None, "capabilities": {}}}))
    uri = (tmp_path / "a.py").as_uri()
    protocol.receive(body({"method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}}))
    for version in range(2, 102):
        protocol.receive(body({"method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"text": f"x = {version}\n"}]}}))
        protocol.receive(body({"method": "textDocument/didSave", "params": {
            "textDocument": {"uri": uri}}}))
    for _ in range(100):
        if not protocol._request_futures:
            break
        await asyncio.sleep(0.02)
    assert len(protocol._request_futures) == 0
    assert server.workspace.get_text_document(uri).source == "x = 101\n"
