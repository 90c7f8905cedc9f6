"""JSON-RPC messages checked before pygls dispatches them: every request gets an answer.

pygls handles well-formed messages. What is not (not JSON, nested too deep, a wrong envelope,
a notification sent with an id, a request before `initialize` or a second one) is answered here
with the error the JSON-RPC and LSP specifications name, and text is made valid Unicode first.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol

logger = logging.getLogger(__name__)

# LSP methods that are notifications: sent with an id, they are a client's mistake to report.
NOTIFICATIONS = frozenset(
    method for method, (message_type, *_) in types.METHOD_TO_TYPES.items()
    if attrs.has(message_type) and "id" not in attrs.fields_dict(message_type))
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON string or a bracket: enough to find the top level of a document too deep to decode.
JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
ID_VALUE = re.compile(r'\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')


class SmallCoderProtocol(LanguageServerProtocol):
    """Reads each frame's body itself (server/transport.py hands them over) so that no
    malformed message goes unanswered, and pygls structures only the top-level message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False

    def receive(self, body: bytes) -> bool:
        """Handle one frame's body; False when it is not JSON (the framing was likely off)."""
        text = body.decode("utf-8", errors="replace")
        try:
            data = decode(text)
        except RecursionError:
            logger.warning("refused a message nested too deep to decode")
            self.answer_error(top_level_id(text),
                              JsonRpcInvalidRequest("the message is nested too deep to read"))
            return True
        except ValueError as error:
            self.refuse(None, JsonRpcParseError(f"the message is not JSON: {error}"))
            return False
        problem = envelope_problem(data) or self._sequence_problem(data)
        if problem is not None:
            self.refuse(data, problem)
            return True
        try:
            message = self.structure_message(data)
        except JsonRpcException:
            self.refuse(data, JsonRpcInvalidParams(
                f"the params of {data.get('method')} do not match the protocol"))
            return True
        self._dispatch(data, message)
        return True

    def structure_message(self, data: dict[str, Any]):
        if "method" in data and "params" not in data:
            # vscode-jsonrpc leaves `params` out of parameterless requests; pygls requires it.
            data = {**data, "params": None}
        return super().structure_message(data)

    def refuse(self, data: Any, error: JsonRpcException) -> None:
        """Answer a request that cannot be handled with `error`; log anything else."""
        logger.warning("refused %.200r: %s", data, error.message)
        if isinstance(data, dict) and ("id" not in data or is_response(data)):
            return  # a notification or a response: nobody waits for an answer
        self.answer_error(data.get("id") if isinstance(data, dict) else None, error)

    def answer_error(self, request_id: Any, error: JsonRpcException) -> None:
        """JSON-RPC: an id that cannot be told, or is no valid id, is answered as null."""
        self._send_response(request_id if is_valid_id(request_id) else None,
                            error=error.to_response_error())

    def _sequence_problem(self, data: dict[str, Any]) -> JsonRpcException | None:
        """LSP's order: `initialize` first and once; after `shutdown`, only `exit`."""
        method = data.get("method")
        if method == types.INITIALIZE and self.initialize_received:
            return JsonRpcInvalidRequest("initialize was already received: a server is "
                                         "initialized once")
        if method not in (None, types.INITIALIZE, types.EXIT) and not self.initialize_received:
            return JsonRpcServerNotInitialized(f"{method} before initialize")
        if method not in (None, types.EXIT) and self._shutdown:
            return JsonRpcInvalidRequest(f"{method} after shutdown")
        return None

    def _execute_handler(self, msg_id: Any, handler: Any, callback: Any,
                         args: Any = None, kwargs: Any = None) -> None:
        """pygls files every handler's future under its id but drops only a request's:
        each notification (a didChange per keystroke) and each step of a built-in handler
        left one behind for good. Dropped here once done, if it is still the one filed."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if (future := self._request_futures.get(msg_id)) is not None:
            future.add_done_callback(lambda done: self._forget(msg_id, done))

    def _forget(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    def _dispatch(self, data: dict[str, Any], message: Any) -> None:
        if data.get("method") == types.INITIALIZE:
            self.initialize_received = True
        try:
            self.handle_message(message)
        except Exception as error:  # pygls answers a handler's errors; this is its own
            logger.exception("handling %s failed", data.get("method"))
            self.refuse(data, JsonRpcInternalError(f"{type(error).__name__}: {error}"))


def decode(text: str) -> Any:
    """A message's JSON with lone surrogates (valid JSON, invalid Unicode) made U+FFFD: they
    cannot be encoded, and would fail every later feature that reads the document."""
    data = json.loads(text)
    return valid_unicode(data) if SURROGATE_ESCAPE.search(text) else data


def valid_unicode(value: Any) -> Any:
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {valid_unicode(key): valid_unicode(item) for key, item in value.items()}
    return value


def is_response(data: dict[str, Any]) -> bool:
    return "method" not in data and ("result" in data) != ("error" in data)


def is_valid_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def envelope_problem(data: Any) -> JsonRpcException | None:
    """What makes `data` no JSON-RPC 2.0 message an LSP server can take, if anything."""
    if not isinstance(data, dict):
        return JsonRpcInvalidRequest("a message is a JSON object (LSP sends no batches)")
    if data.get("jsonrpc") != "2.0":
        return JsonRpcInvalidRequest('"jsonrpc" must be "2.0"')
    if "id" in data and not is_valid_id(data["id"]):
        return JsonRpcInvalidRequest("id must be a string or an integer")
    if "method" not in data:
        if "id" in data and is_response(data):
            return None
        return JsonRpcInvalidRequest("a message has a method, or an id and a result or error")
    method = data["method"]
    if not isinstance(method, str) or not method:
        return JsonRpcInvalidRequest("method must be a non-empty string")
    if not isinstance(data.get("params"), (dict, list, type(None))):
        return JsonRpcInvalidRequest("params must be an object or an array")
    if "id" in data and method in NOTIFICATIONS:
        return JsonRpcInvalidRequest(f"{method} is a notification: it is sent without an id")
    return None


def top_level_id(text: str) -> int | str | None:
    """The id of a JSON-RPC message found without decoding it (it is too deep to decode)."""
    depth = 0
    for token in JSON_TOKEN.finditer(text):
        kind = token.group()
        if kind in "[{":
            depth += 1
        elif kind in "]}":
            depth -= 1
        elif depth == 1 and kind == '"id"' and (value := ID_VALUE.match(text, token.end())):
            try:
                found = json.loads(value.group(1))
            except ValueError:
                return None
            return found if is_valid_id(found) else None
    return None
