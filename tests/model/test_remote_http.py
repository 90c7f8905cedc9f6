"""The remote engine's HTTP layer against a small local HTTP server that answers what a broken
or hostile server might: each bad answer is an error for that request only, with the right
kind, and idempotent calls are retried a bounded number of times."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from model.remote_dialects import LlamaServerDialect
from model.remote_http import (
    Endpoint,
    EventStream,
    RemoteError,
    RemoteProblem,
    check_url,
    request_json,
    unencrypted_warning,
)


class ScriptedServer(BaseHTTPRequestHandler):
    """Answers each path with the status and body the test put in `answers`."""

    answers: ClassVar[dict[str, list[tuple[int, bytes]]]] = {}
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.seen.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        queue = self.answers[self.path]
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        self.send_response(status)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def scripted():
    ScriptedServer.answers, ScriptedServer.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, Endpoint(f"http://127.0.0.1:{server.server_address[1]}", "key")
    server.shutdown()
    server.server_close()


def _events(endpoint: Endpoint) -> list:
    with EventStream(endpoint, "/completion", {"prompt": [1]}) as stream:
        return list(stream.events())


def test_events_are_read_up_to_done(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/completion"] = [
        (200, b'data: {"tokens": [1]}\n\n: ping\n\ndata: {"tokens": [2]}\n\ndata: [DONE]\n\n')]
    assert _events(endpoint) == [{"tokens": [1]}, {"tokens": [2]}]


def test_an_event_that_is_not_json_is_a_bad_response(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/completion"] = [(200, b'data: {"tokens": [1\n\n')]
    with pytest.raises(RemoteError) as bad:
        _events(endpoint)
    assert bad.value.problem == RemoteProblem.BAD_RESPONSE


def test_an_error_event_mid_stream_is_a_server_error(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/completion"] = [
        (200, b'data: {"tokens": [1]}\n\ndata: {"error": {"message": "slot died"}}\n\n')]
    with pytest.raises(RemoteError, match="slot died") as bad:
        _events(endpoint)
    assert bad.value.problem == RemoteProblem.SERVER_ERROR


def test_tokens_that_are_not_ids_are_a_bad_response(scripted):
    _, endpoint = scripted
    with pytest.raises(RemoteError) as bad:
        LlamaServerDialect(endpoint)._piece({"tokens": ["x"], "stop": False})
    assert bad.value.problem == RemoteProblem.BAD_RESPONSE


def test_a_refused_key_is_unauthorized_and_not_retried(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/props"] = [(401, b'{"error": {"message": "no"}}')]
    with pytest.raises(RemoteError) as refused:
        request_json(endpoint, "GET", "/props")
    assert refused.value.problem == RemoteProblem.UNAUTHORIZED
    assert server.RequestHandlerClass.seen == ["/props"]


def test_a_failing_idempotent_call_is_retried_then_succeeds(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/health"] = [(503, b"{}"), (503, b"{}"),
                                                     (200, b'{"status": "ok"}')]
    assert request_json(endpoint, "GET", "/health") == {"status": "ok"}
    assert server.RequestHandlerClass.seen == ["/health"] * 3


def test_retries_are_bounded(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/health"] = [(500, b'{"error": "down"}')]
    with pytest.raises(RemoteError) as failed:
        request_json(endpoint, "GET", "/health", attempts=2)
    assert failed.value.problem == RemoteProblem.SERVER_ERROR
    assert len(server.RequestHandlerClass.seen) == 2


def test_an_answer_that_is_not_json_is_a_bad_response(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/props"] = [(200, b"<html>proxy login</html>")]
    with pytest.raises(RemoteError) as bad:
        request_json(endpoint, "GET", "/props")
    assert bad.value.problem == RemoteProblem.BAD_RESPONSE


def test_a_closed_stream_sends_nothing(scripted):
    server, endpoint = scripted
    server.RequestHandlerClass.answers["/completion"] = [(200, b'data: {"tokens": [1]}\n\n')]
    stream = EventStream(endpoint, "/completion", {"prompt": [1]})
    stream.close()
    assert list(stream.events()) == []
    assert server.RequestHandlerClass.seen == []


def test_http_to_another_host_warns_but_loopback_and_https_do_not():
    assert "unencrypted" in unencrypted_warning("http://gpu-box.lan:8080")
    assert unencrypted_warning("http://127.0.0.1:8080") is None
    assert unencrypted_warning("https://gpu-box.lan") is None


def test_a_url_that_names_no_server_is_refused():
    assert check_url("gpu-box:8080") is not None
    assert check_url("http://gpu-box:port") is not None
    assert check_url("https://gpu-box.lan/llama") is None


def test_the_api_key_never_shows_in_a_repr():
    from model.remote import RemoteConfig

    assert "s3cret" not in repr(RemoteConfig("openai", "http://x", api_key="s3cret"))
    assert "s3cret" not in repr(Endpoint("http://x", api_key="s3cret"))
