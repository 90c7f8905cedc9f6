"""A seeded LSP fuzzer: real messages, mutated ones, random JSON, broken framing, huge payloads.

`run_fuzz` drives a WireServer (the fake engine) in batches; after each batch a status probe
must be answered within HANG_S, and at the end every request that was framed right and had a
valid id must have had an answer. tests/server/test_lsp_fuzz.py runs it in CI, bench/fuzz.py
for longer.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.lsp_wire import WireServer, frame

HANG_S = 10.0
BATCH_MESSAGES = 25
# What a message is, by share: most are real or mutated, as an editor's stream would be.
KINDS = {"real": 40, "mutated": 35, "random-json": 8, "framing": 12, "huge": 1, "odd": 4}
REQUESTS = ["textDocument/inlineCompletion", "textDocument/codeAction", "codeAction/resolve",
            "smallcoder/status", "smallcoder/explain", "smallcoder/refactor",
            "smallcoder/prefill", "textDocument/hover", "initialize", "workspace/symbol"]
NOTIFICATIONS = ["textDocument/didOpen", "textDocument/didChange", "textDocument/didSave",
                 "textDocument/didClose", "workspace/didChangeWatchedFiles",
                 "workspace/didChangeConfiguration", "$/cancelRequest", "$/setTrace",
                 "smallcoder/prefill"]
ODD_STRINGS = ["", "\ud800", "\udfff x", "\x00", "é\u202e", "😀" * 3, "a" * 5000,
               "file:///", "file://host/share/x.py", "file:///c%3A/x.py", "%%%", "\n" * 50,
               "untitled:Untitled-1", "null", "../../../../etc/passwd"]
ODD_NUMBERS = [-1, 0, 1, 2**31 - 1, 2**31, 2**32, 2**53, 2**63, -(2**63), 1.5, 1e308, True]
SOURCE = ("import math\n\n\ndef mean(values):\n    total = sum(values)\n    \n\n\n"
          "class Stack:\n    def push(self, item):\n        self.items.append(item)\n")


@dataclass(frozen=True)
class Sent:
    data: bytes
    kind: str
    # The id the server must answer, when the message is a request it can read.
    expects: int | str | None = None


@dataclass
class FuzzReport:
    seed: int
    messages: int = 0
    requests: int = 0
    answered: int = 0
    unanswered: list = field(default_factory=list)
    crashes: int = 0
    hangs: int = 0
    rss_warm_bytes: int | None = None
    rss_end_bytes: int | None = None
    seconds: float = 0.0
    kinds: Counter = field(default_factory=Counter)

    def figures(self) -> dict:
        return {"seed": self.seed, "messages": self.messages, "requests": self.requests,
                "answered": self.answered, "unanswered": len(self.unanswered),
                "crashes": self.crashes, "hangs": self.hangs,
                "rss_warm_mb": _mb(self.rss_warm_bytes), "rss_end_mb": _mb(self.rss_end_bytes),
                "seconds": round(self.seconds, 1), "kinds": dict(self.kinds)}


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 1024**2, 1)


def expects_answer(message: Any) -> bool:
    """JSON-RPC: anything with a usable id that is not itself a response gets an answer."""
    if not isinstance(message, dict) or "id" not in message:
        return False
    valid_id = isinstance(message["id"], (int, str)) and not isinstance(message["id"], bool)
    response = "method" not in message and ("result" in message) != ("error" in message)
    return valid_id and not response


class Fuzzer:
    """Seeded messages for a workspace at `root`; every id it gives is unique."""

    def __init__(self, seed: int, root: Path, model_path: str) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self._root = root
        self._model_path = model_path
        self._next_id = 0
        self._issued: set[int | str] = set()
        names = ["stats.py", "my file.py", "café.py", "util.js", "notes.txt"]
        self.uris = [(root / name).as_uri() for name in names]

    def next_message(self) -> Sent:
        kind = self.random.choices(list(KINDS), weights=list(KINDS.values()))[0]
        return getattr(self, "_" + kind.replace("-", "_"))()

    # ------------------------------------------------------------ kinds

    def _real(self) -> Sent:
        return self._sent(self.real_message(), "real")

    def _mutated(self) -> Sent:
        return self._sent(self.mutate(self.real_message()), "mutated")

    def _random_json(self) -> Sent:
        return self._sent(self.random_value(depth=3), "random-json")

    def _odd(self) -> Sent:
        """Deep nesting, a message inside params, lone surrogates in the text."""
        message = self.real_message()
        choice = self.random.randrange(3)
        if choice == 0:
            depth = self.random.choice([100, 999, 1000, 5000])
            message["params"] = {"deep": json.loads("[" * depth + "]" * depth)
                                 if depth < 900 else None}
            if depth >= 900:  # too deep for json.dumps: spliced in as text
                text = json.dumps(message).replace('{"deep": null}',
                                                   "[" * depth + "]" * depth)
                return self._sent_text(message, text.encode(), "odd")
        elif choice == 1:
            message["params"] = {"inner": self.real_message(), "textDocument": {
                "uri": self.random.choice(self.uris)}}
        else:
            message["params"] = self.mutate_strings(message.get("params"), always=True)
        return self._sent(message, "odd")

    def _huge(self) -> Sent:
        text = SOURCE * self.random.choice([1000, 20_000, 60_000])
        return self._sent(self._notification("textDocument/didOpen", {"textDocument": {
            "uri": self.random.choice(self.uris), "languageId": "python", "version": 1,
            "text": text}}), "huge")

    def _framing(self) -> Sent:
        """A broken frame; a request inside one is not owed an answer."""
        body = json.dumps(self.real_message()).encode()
        attacks = [
            b"content-length: %d\r\n\r\n%s" % (len(body), body),
            b"Content-Length:%d\r\n\r\n%s" % (len(body), body),
            b"Content-Length: %d\r\nContent-Type: x\r\n\r\n%s" % (len(body), body),
            b"Garbage-without-colon\r\n\r\n" + body,
            b"Content-Length: 1000000000000\r\n\r\n" + body,
            b"Content-Length: -5\r\n\r\n" + body,
            b"Content-Length: %d\r\n\r\n%s" % (max(0, len(body) - self.random.randint(1, 40)),
                                               body),
            b"Content-Length: %d\r\n\r\n%s" % (len(body) + self.random.randint(1, 300), body),
            bytes(self.random.getrandbits(8) for _ in range(self.random.randint(1, 3000))),
            b"X-Header: " + b"y" * 9000 + b"\r\n\r\n",
            b"\r\n\r\n\r\n",
        ]
        index = self.random.randrange(len(attacks))
        return Sent(attacks[index], f"framing-{index}")

    # ------------------------------------------------------------ real messages

    def real_message(self) -> dict:
        uri = self.random.choice(self.uris)
        position = {"line": self.random.randint(0, 12), "character": self.random.randint(0, 12)}
        document = {"uri": uri}
        if self.random.random() < 0.55:
            method = self.random.choice(REQUESTS)
            return self._request(method, self._request_params(method, document, position))
        method = self.random.choice(NOTIFICATIONS)
        return self._notification(method, self._notification_params(method, document,
                                                                     position))

    def _request_params(self, method: str, document: dict, position: dict) -> Any:
        where = {"start": position, "end": position}
        return {
            "textDocument/inlineCompletion": {"textDocument": document, "position": position,
                                              "context": {"triggerKind": 2}},
            "textDocument/codeAction": {"textDocument": document, "range": where,
                                        "context": {"diagnostics": []}},
            "codeAction/resolve": {"title": "Refactor this function", "kind": "refactor",
                                   "data": {"uri": document["uri"], "position": position}},
            "textDocument/hover": {"textDocument": document, "position": position},
            "initialize": {"processId": None, "capabilities": {}},
            "workspace/symbol": {"query": "mean"},
        }.get(method, {"textDocument": document, "position": position})

    def _notification_params(self, method: str, document: dict, position: dict) -> Any:
        where = {"start": position, "end": position}
        versioned = {**document, "version": self.random.randint(2, 10**6)}
        return {
            "textDocument/didOpen": {"textDocument": {**document, "languageId": "python",
                                                      "version": 1, "text": SOURCE}},
            "textDocument/didChange": {"textDocument": versioned, "contentChanges": [
                {"range": where, "text": self.random.choice(["x", "\n", "    ", "def f():"])}]},
            "textDocument/didSave": {"textDocument": document},
            "textDocument/didClose": {"textDocument": document},
            "workspace/didChangeWatchedFiles": {"changes": [{"uri": document["uri"],
                                                             "type": 2}]},
            "workspace/didChangeConfiguration": {"settings": {"smallcoder": {
                "model": self._model_path, "logLevel": "debug"}}},
            "$/cancelRequest": {"id": self.random.choice(sorted(self._issued, key=str) or [0])},
            "$/setTrace": {"value": "off"},
        }.get(method, {"textDocument": document, "position": position})

    # ------------------------------------------------------------ mutations

    def mutate(self, message: dict) -> dict:
        mutations = [self._drop_key, self._retype_value, self._flip_id, self._swap_method,
                     self.mutate_strings, self._mutate_numbers]
        for mutation in self.random.sample(mutations, self.random.randint(1, 2)):
            message = mutation(message)
        return message

    def _drop_key(self, message: dict) -> dict:
        target = self._random_dict_in(message)
        if target:
            del target[self.random.choice(list(target))]
        return message

    def _retype_value(self, message: dict) -> dict:
        target = self._random_dict_in(message)
        if target:
            target[self.random.choice(list(target))] = self.random_value(depth=2)
        return message

    def _flip_id(self, message: dict) -> dict:
        if "id" in message:
            if self.random.random() < 0.5:
                del message["id"]
            else:
                message["id"] = self.random.choice([None, 1.5, True, {}, []])
        else:
            message["id"] = self._take_id()
        return message

    def _swap_method(self, message: dict) -> dict:
        message["method"] = self.random.choice(REQUESTS + NOTIFICATIONS + [
            None, 3, "", "no/such", "$/unknown", "exit\u0000", "shutdown "])
        return message

    def mutate_strings(self, value: Any, always: bool = False) -> Any:
        if isinstance(value, str) and (always or self.random.random() < 0.3):
            return self.random.choice(ODD_STRINGS)
        if isinstance(value, dict):
            return {key: value[key] if key in ("jsonrpc", "method", "id")
                    else self.mutate_strings(value[key], always) for key in value}
        if isinstance(value, list):
            return [self.mutate_strings(item, always) for item in value]
        return value

    def _mutate_numbers(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return self.random.choice(ODD_NUMBERS) if self.random.random() < 0.5 else value
        if isinstance(value, dict):
            return {key: value[key] if key == "id" else self._mutate_numbers(value[key])
                    for key in value}
        if isinstance(value, list):
            return [self._mutate_numbers(item) for item in value]
        return value

    def _random_dict_in(self, message: dict) -> dict | None:
        found = [message]
        stack = [message]
        while stack:
            for value in stack.pop().values():
                if isinstance(value, dict):
                    found.append(value)
                    stack.append(value)
        candidates = [d for d in found if d]
        return self.random.choice(candidates) if candidates else None

    def random_value(self, depth: int) -> Any:
        choice = self.random.randrange(7 if depth > 0 else 5)
        if choice == 0:
            return None
        if choice == 1:
            return self.random.choice(ODD_NUMBERS)
        if choice == 2:
            return self.random.choice(ODD_STRINGS)
        if choice == 3:
            return self.random.random() < 0.5
        if choice == 4:
            return self.random.randint(-10, 10)
        if choice == 5:
            return [self.random_value(depth - 1) for _ in range(self.random.randint(0, 4))]
        return {self.random.choice(["jsonrpc", "id", "method", "params", "result", "x"]):
                self.random_value(depth - 1) for _ in range(self.random.randint(0, 4))}

    # ------------------------------------------------------------ building

    def _take_id(self) -> int | str:
        """A fresh id, a number or a string by turns; random values may collide, these not."""
        self._next_id += 1
        taken = 10**6 + self._next_id if self._next_id % 2 else f"fuzz-{self._next_id}"
        self._issued.add(taken)
        return taken

    def _request(self, method: str, params: Any) -> dict:
        return {"jsonrpc": "2.0", "id": self._take_id(), "method": method, "params": params}

    def _notification(self, method: str, params: Any) -> dict:
        return {"jsonrpc": "2.0", "method": method, "params": params}

    def _sent(self, message: Any, kind: str) -> Sent:
        if expects_answer(message) and message["id"] not in self._issued:
            message["id"] = self._take_id()  # a random id could repeat an owed one
        return self._sent_text(message, json.dumps(message).encode(), kind)

    def _sent_text(self, message: Any, body: bytes, kind: str) -> Sent:
        return Sent(frame(body), kind, message["id"] if expects_answer(message) else None)


def run_fuzz(server: WireServer, fuzzer: Fuzzer, *, messages: int | None = None,
             seconds: float | None = None, warm_up_messages: int = 1000,
             on_batch: Callable[[FuzzReport], None] | None = None) -> FuzzReport:
    """Send messages in batches until `messages` or `seconds` run out; then wait for the
    answers still owed. A probe after each batch that is not answered in HANG_S is a hang."""
    report = FuzzReport(seed=fuzzer.seed)
    owed: list[int | str] = []
    started = time.monotonic()
    while server.alive():
        if messages is not None and report.messages >= messages:
            break
        if seconds is not None and time.monotonic() - started >= seconds:
            break
        for _ in range(BATCH_MESSAGES):
            sent = fuzzer.next_message()
            server.send_raw(sent.data)
            report.messages += 1
            report.kinds[sent.kind.split("-")[0]] += 1
            if sent.expects is not None:
                owed.append(sent.expects)
                report.requests += 1
        _probe(server, report)
        if report.rss_warm_bytes is None and report.messages >= warm_up_messages:
            report.rss_warm_bytes = server.rss_bytes() if server.alive() else None
        if on_batch is not None:
            report.seconds = time.monotonic() - started
            on_batch(report)
    _settle(server, report, owed)
    report.seconds = time.monotonic() - started
    return report


def _probe(server: WireServer, report: FuzzReport) -> None:
    probe_id = f"probe-{report.messages}"
    try:
        server.request("smallcoder/status", {}, probe_id, timeout_s=HANG_S)
    except AssertionError:
        if server.alive():
            report.hangs += 1


def _settle(server: WireServer, report: FuzzReport, owed: list[int | str]) -> None:
    deadline = time.monotonic() + 30
    for request_id in owed:
        try:
            server.response(request_id, timeout_s=max(0.1, deadline - time.monotonic()))
        except AssertionError:
            report.unanswered.append(request_id)
    report.answered = len(owed) - len(report.unanswered)
    if server.alive():
        report.rss_end_bytes = server.rss_bytes()
    else:
        report.crashes = 1
