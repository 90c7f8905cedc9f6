"""A broken or hostile client: every request still gets an answer and the server keeps serving.

Each test sends what an editor never would (issue #31's attacks) byte by byte, then checks the
answer and that an ordinary request right after it is answered too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.lsp_wire import WireServer, frame

INVALID_REQUEST, INVALID_PARAMS, PARSE_ERROR = -32600, -32602, -32700
SERVER_NOT_INITIALIZED = -32002
SOURCE = "def mean(values):\n    total = sum(values)\n    \n"


@pytest.fixture
def server(tmp_path):
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF")
    wire = WireServer(tmp_path / "server.log")
    wire.initialize(str(model))
    wire.wait_ready()
    yield wire
    assert wire.close() == 0, (tmp_path / "server.log").read_text()[-3000:]


def open_document(server: WireServer, uri: str, text: str = SOURCE) -> None:
    server.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}})


def still_serving(server: WireServer, request_id: str = "after") -> None:
    assert server.request("smallcoder/status", {}, request_id)["result"]["state"] == "ready"


def error_code(answer: dict) -> int | None:
    return answer.get("error", {}).get("code")


# ---------------------------------------------------------------- envelopes


@pytest.mark.parametrize("message", [
    {"jsonrpc": "2.0", "id": 1, "method": "textDocument/didClose",
     "params": {"textDocument": {"uri": "file:///work/project/a.py"}}},
    {"id": 1, "method": "smallcoder/status", "params": {}},
    {"jsonrpc": "1.0", "id": 1, "method": "smallcoder/status", "params": {}},
    {"jsonrpc": "2.0", "id": 1, "params": {}},
    {"jsonrpc": "2.0", "id": 1, "method": None, "params": {}},
    {"jsonrpc": "2.0", "id": 1, "method": 7, "params": {}},
    {"jsonrpc": "2.0", "id": 1, "method": "smallcoder/status", "params": "text"},
], ids=["notification-with-id", "no-jsonrpc", "jsonrpc-1.0", "no-method", "null-method",
        "numeric-method", "string-params"])
def test_a_malformed_request_is_answered_invalid_request(server, message):
    server.send(message)
    assert error_code(server.response(1)) == INVALID_REQUEST
    still_serving(server)


def test_a_json_rpc_message_inside_params_is_only_data(server):
    shutdown = {"jsonrpc": "2.0", "id": "inner", "method": "shutdown", "params": None}
    answer = server.request("smallcoder/status", {"note": shutdown}, "outer")
    assert answer["result"]["state"] == "ready"
    still_serving(server)


def test_a_thousand_levels_of_nesting_are_answered_for_their_id(server):
    deep = b"[" * 1000 + b"]" * 1000
    server.send_raw(frame(b'{"jsonrpc": "2.0", "id": "deep", "method": "smallcoder/status", '
                          b'"params": {"list": ' + deep + b"}}"))
    assert error_code(server.response("deep")) == INVALID_REQUEST
    still_serving(server)


@pytest.mark.parametrize("method", ["smallcoder/explain", "smallcoder/refactor",
                                    "smallcoder/prefill"])
def test_a_position_past_lsp_uinteger_is_invalid_params(server, method):
    uri = "file:///work/project/stats.py"
    open_document(server, uri)
    for number, position in enumerate([{"line": 2**31, "character": 0},
                                       {"line": 0, "character": 2**63}]):
        answer = server.request(method, {"textDocument": {"uri": uri}, "position": position},
                                number)
        assert error_code(answer) == INVALID_PARAMS, answer
    still_serving(server)


def test_a_second_initialize_is_refused_and_keeps_the_open_documents(server):
    uri = "file:///work/project/stats.py"
    open_document(server, uri)
    again = server.request("initialize", {"processId": None, "capabilities": {}}, "again")
    assert error_code(again) == INVALID_REQUEST
    completion = server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 2, "character": 4},
        "context": {"triggerKind": 2}}, "completion")
    assert completion["result"]["items"][0]["insertText"].startswith("return total")


def test_a_request_before_initialize_is_answered_server_not_initialized(tmp_path):
    wire = WireServer(tmp_path / "server.log")
    try:
        assert error_code(wire.request("smallcoder/status", {}, "early")) == (
            SERVER_NOT_INITIALIZED)
    finally:
        wire.close()


def test_a_lone_surrogate_does_not_break_later_requests(server):
    surrogate_uri = "file:///work/project/broken.py"
    server.send_raw(frame(json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                                      "params": {"textDocument": {
                                          "uri": surrogate_uri, "languageId": "python",
                                          "version": 1, "text": "x = '\ud800'\n" + SOURCE}}},
                                     ensure_ascii=True).encode()))
    uri = "file:///work/project/stats.py"
    open_document(server, uri)
    for number, (where, line) in enumerate([(surrogate_uri, 2), (uri, 1)]):
        answer = server.request("smallcoder/explain", {
            "textDocument": {"uri": where}, "position": {"line": line, "character": 4}}, number)
        assert "### `mean`" in answer["result"]["markdown"], answer


# ---------------------------------------------------------------- notifications


def test_a_failed_notification_is_logged_and_not_shown(server):
    server.notify("textDocument/didChange", {
        "textDocument": {"uri": "file:///work/project/never-opened.py", "version": 2},
        "contentChanges": [{"text": "x = 1\n"}]})
    server.notify("textDocument/didOpen", {"textDocument": "not a document"})
    still_serving(server)
    assert server.shown_messages() == []
    logged = [note["params"]["message"] for note in server.notifications
              if note.get("method") == "window/logMessage" and note["params"]["type"] == 1]
    assert any("never-opened.py" in line for line in logged), logged


# ---------------------------------------------------------------- framing


def test_header_names_in_any_case_and_no_blank_after_the_colon_are_read(server):
    for number, header in enumerate([b"content-length: %d", b"Content-Length:%d",
                                     b"CONTENT-LENGTH:   %d  "]):
        body = json.dumps({"jsonrpc": "2.0", "id": number, "method": "smallcoder/status",
                           "params": {}}).encode()
        server.send_raw(header % len(body) + b"\r\n\r\n" + body)
        assert server.response(number)["result"]["state"] == "ready"


@pytest.mark.parametrize("broken", [
    b"Garbage without a colon\r\n\r\n{}",
    b"Content-Length: twelve\r\n\r\n{}",
    b"Content-Length: 1000000000000\r\n\r\n{}",
    b"\x00\xff" * 5000,
    b"Content-Length: 4\r\n\r\n{\"jsonrpc\": \"2.0\", \"id\": 0}",
    b"Content-Length: 900\r\n\r\n{}",
], ids=["no-colon", "not-a-number", "terabyte", "binary-noise", "too-short", "too-long"])
def test_a_broken_frame_costs_only_itself(server, broken):
    server.send_raw(broken)
    still_serving(server)
    assert server.alive()


# ---------------------------------------------------------------- files and URIs


def test_did_save_of_a_fifo_does_not_block_the_server(server, tmp_path):
    fifo = tmp_path / "project" / "pipe.py"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    server.notify("textDocument/didSave", {"textDocument": {"uri": fifo.as_uri()}})
    still_serving(server)


@pytest.mark.parametrize("path", ["/work/my project/stats.py", "/work/project/café.py",
                                  "/work/project/100% sure.py"])
def test_a_document_with_an_encoded_uri_is_open(server, path):
    uri = Path(path).as_uri()
    open_document(server, uri)
    answer = server.request("textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 2, "character": 4},
        "context": {"triggerKind": 2}}, "completion")
    assert answer["result"]["items"][0]["insertText"].startswith("return total"), answer
