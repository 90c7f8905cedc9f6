"""HTTP for the remote engine: JSON calls with bounded retries, and server-sent event streams
that a cancel closes from any thread, over the standard library only.

Every failure becomes a `RemoteError` whose kind the status shows; request bodies (they hold
the user's code) never appear in an error message.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from model.errors import ModelError

# Idempotent calls (health, tokenize, model list) are tried this many times in all, waiting
# RETRY_BACKOFF_S, then twice that, between tries: a server restarting answers within seconds.
RETRY_ATTEMPTS = 3
RETRY_BACKOFF_S = 0.25
# What of a server's error body goes into a message: enough for its reason, not a page.
ERROR_BODY_CHARS = 300
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class RemoteProblem(StrEnum):
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    VOCABULARY = "wrong-vocabulary"
    FIM_MISSING = "fim-tokens-missing"
    BAD_RESPONSE = "bad-response"
    SERVER_ERROR = "server-error"
    TIMEOUT = "timeout"


class RemoteError(ModelError):
    """A remote engine call failed; `problem` says how, the message what to do."""

    def __init__(self, problem: RemoteProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class Endpoint:
    url: str  # the server's base URL, e.g. http://127.0.0.1:8080
    api_key: str = field(default="", repr=False)
    connect_timeout_s: float = 3.0
    # Longest silence while a response is awaited: a long prompt on a busy shared server.
    read_timeout_s: float = 120.0

    @property
    def parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.url)

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


def check_url(url: str) -> str | None:
    """Why `url` cannot name a server (None if it can)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL"
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"{url!r} has no valid port"
    return None


def unencrypted_warning(url: str) -> str | None:
    """A warning when code would cross the network in clear text: http:// to another host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return (f"smallcoder.serverUrl {url} is http:// to another machine: your code leaves "
                f"this machine unencrypted; use https:// (or a tunnel) unless the network is "
                f"trusted")
    return None


def _connect(endpoint: Endpoint) -> http.client.HTTPConnection:
    parts = endpoint.parts
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=endpoint.connect_timeout_s)
    try:
        connection.connect()
    except TimeoutError as error:
        raise RemoteError(RemoteProblem.UNREACHABLE,
                          f"{endpoint.url} did not accept a connection within "
                          f"{endpoint.connect_timeout_s:g} s: is the server running?") from error
    except OSError as error:
        raise RemoteError(RemoteProblem.UNREACHABLE,
                          f"cannot connect to {endpoint.url}: {error.strerror or error}; start "
                          f"the team server or check smallcoder.serverUrl") from error
    assert connection.sock is not None
    connection.sock.settimeout(endpoint.read_timeout_s)
    return connection


def _path(endpoint: Endpoint, path: str) -> str:
    return endpoint.parts.path.rstrip("/") + path


def _send(endpoint: Endpoint, method: str, path: str, body: dict | None,
          connection: http.client.HTTPConnection | None = None
          ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = connection or _connect(endpoint)
    payload = None if body is None else json.dumps(body).encode("utf-8")
    try:
        connection.request(method, _path(endpoint, path), body=payload,
                           headers=endpoint.headers())
        response = connection.getresponse()
    except TimeoutError as error:
        connection.close()
        raise RemoteError(RemoteProblem.TIMEOUT, f"{endpoint.url} did not answer {path} within "
                                                 f"{endpoint.read_timeout_s:g} s") from error
    except OSError as error:  # reset, or http.client's own errors (they are OSErrors too)
        connection.close()
        raise RemoteError(RemoteProblem.UNREACHABLE,
                          f"{endpoint.url} dropped the connection on {path}: {error}") from error
    if response.status >= 400:
        try:
            text = response.read(ERROR_BODY_CHARS * 4).decode("utf-8", errors="replace")
        except OSError:
            text = ""
        connection.close()
        raise _status_error(endpoint, path, response.status, text)
    return connection, response


def _status_error(endpoint: Endpoint, path: str, status: int, body: str) -> RemoteError:
    reason = _error_reason(body)
    if status in (401, 403):
        given = "the API key was refused" if endpoint.api_key else "it needs an API key"
        return RemoteError(RemoteProblem.UNAUTHORIZED,
                           f"{endpoint.url} answered {status}: {given}; run \"SmallCoder: Set "
                           f"Team Server API Key\" (or set SMALLCODER_API_KEY)")
    problem = RemoteProblem.SERVER_ERROR if status >= 500 else RemoteProblem.BAD_RESPONSE
    return RemoteError(problem, f"{endpoint.url}{path} answered {status}: {reason}")


def _error_reason(body: str) -> str:
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    text = str(message) if message else body.strip()
    return text[:ERROR_BODY_CHARS] or "no reason given"


def request_json(endpoint: Endpoint, method: str, path: str, body: dict | None = None, *,
                 attempts: int = RETRY_ATTEMPTS) -> Any:
    """The JSON answer to an idempotent call, retried with backoff when the server cannot be
    reached, times out or fails (5xx); a refusal (4xx) or a malformed answer is not retried."""
    for attempt in range(attempts):
        try:
            connection, response = _send(endpoint, method, path, body)
            try:
                raw = response.read()
            except OSError as error:
                raise RemoteError(RemoteProblem.UNREACHABLE,
                                  f"{endpoint.url} broke off its answer to {path}") from error
            finally:
                connection.close()
            return _parsed(endpoint, path, raw)
        except RemoteError as error:
            retryable = error.problem in (RemoteProblem.UNREACHABLE, RemoteProblem.TIMEOUT,
                                          RemoteProblem.SERVER_ERROR)
            if not retryable or attempt == attempts - 1:
                raise
            time.sleep(RETRY_BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable: the loop returns or raises")


def _parsed(endpoint: Endpoint, path: str, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as error:
        raise RemoteError(RemoteProblem.BAD_RESPONSE,
                          f"{endpoint.url}{path} answered with something that is not JSON "
                          f"({len(raw)} bytes)") from error


class EventStream:
    """The `data:` events of one streamed POST, as JSON objects. `close()` from any thread (a
    cancel) shuts the socket, at any point from connecting on: the iteration ends and the
    server stops generating. Nothing is sent until `events()` is iterated."""

    def __init__(self, endpoint: Endpoint, path: str, body: dict) -> None:
        self._endpoint = endpoint
        self._path = path
        self._body = body
        self._lock = threading.Lock()
        self._closed = False
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Shut the socket down; safe from any thread. The connection object itself is closed
        by the thread that reads it (`__exit__`): closing it under a blocked read breaks
        http.client's state instead of the read."""
        with self._lock:
            self._closed = True
            connection = self._connection
        sock = connection.sock if connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):  # the other side closed it already
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        if self._connection is not None:
            self._connection.close()

    def _start(self) -> http.client.HTTPResponse | None:
        """Connect and send; None when closed meanwhile (a cancel)."""
        connection = _connect(self._endpoint)
        with self._lock:
            if self._closed:
                connection.close()
                return None
            self._connection = connection
        try:
            _, response = _send(self._endpoint, "POST", self._path, self._body, connection)
        except RemoteError:
            if self.closed:
                return None
            raise
        return response

    def events(self) -> Iterator[Any]:
        """Each event's JSON; ends at `data: [DONE]` or the end of the stream. A stream cut
        short raises RemoteError unless it was closed on purpose (then it just ends)."""
        response = self._start()
        if response is None:
            return
        while True:
            try:
                line = response.readline()
            except TimeoutError as error:
                if self.closed:
                    return
                raise RemoteError(RemoteProblem.TIMEOUT,
                                  f"{self._endpoint.url} sent nothing for "
                                  f"{self._endpoint.read_timeout_s:g} s") from error
            except (OSError, ValueError, http.client.HTTPException) as error:
                if self.closed:
                    return
                raise RemoteError(RemoteProblem.UNREACHABLE,
                                  f"{self._endpoint.url} broke off the stream: {error}") from error
            if not line:
                return
            event = self._event(line)
            if event is _DONE:
                return
            if event is not None:
                yield event

    def _event(self, line: bytes) -> Any:
        text = line.decode("utf-8", errors="replace").strip()
        if not text.startswith("data:"):
            return None  # blank separators, comments, event names
        data = text[len("data:"):].strip()
        if data == "[DONE]":
            return _DONE
        try:
            event = json.loads(data)
        except ValueError as error:
            raise RemoteError(RemoteProblem.BAD_RESPONSE,
                              f"{self._endpoint.url}{self._path} streamed an event that is not "
                              f"JSON ({len(data)} characters)") from error
        if isinstance(event, dict) and "error" in event:
            raise RemoteError(RemoteProblem.SERVER_ERROR,
                              f"{self._endpoint.url}{self._path}: "
                              f"{_error_reason(json.dumps(event))}")
        return event


_DONE = object()

