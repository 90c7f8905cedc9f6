"""A realistic editing session against `smallcoder serve`, replayed over stdio as VS Code drives
it: inline-completion latency per kind of moment, beside this run's raw llama.cpp speed.

A seeded script works in a copy of a third-party package (click): it opens a file, reads,
retypes line tails at about five characters a second behind an editor's debounce, accepts whole
and partial suggestions, presses Enter, jumps within a file, switches files, comes back to an
earlier spot and edits a file that is not focused. Each request is tagged with what came just
before it (KINDS); its latency at the client, whether the suggestion was empty and the prompt
tokens the server evaluated (its debug log line) are reported per tag, with the server's peak
memory. Rows (the machine, then each request and server log line, then the summary) go to
bench/results/session-<time>.jsonl as they come: a cut run keeps them.
`--checkout DIR` runs another checkout's server (a `git worktree` of an older commit), so a
before/after comparison is two labelled runs of the same script; `--no-think-time` drops the
pauses and the debounce and awaits every request, so the server never idles (the worst case).

Run: .venv/bin/python bench/session.py [--models NAME ...] [--events N] [--context-tokens N]
     [--seed N] [--no-think-time] [--checkout DIR] [--label NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import psutil
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled
from pygls.lsp.client import LanguageClient

from model import registry
from model.home import smallcoder_home

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PACKAGE, PACKAGE_VERSION = "click", "8.5.1"  # Pallets' code, not ours; pinned: same script
FILES = ("core.py", "types.py", "termui.py")  # 3,800, 1,400 and 1,000 lines
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
CONTEXT_TOKENS = 1024  # smallcoder.inlineCompletions.contextTokens' default
EVENTS = 18  # about 75-100 completion requests
SEED = 20260730
KINDS = ("keystroke", "after-accept", "after-jump", "after-switch", "return-to-file",
         "after-enter")
ARRIVALS = ("after-jump", "after-switch", "return-to-file", "after-enter")
# What the user does next: each round of the script does all of these, in a shuffled order
# (every kind shows up in a short run); all but edit-other then type at the spot.
ACTION_ROUND = ("type", "type", "jump", "switch", "return", "enter", "enter", "edit-other")
ACCEPT_SHARE = 0.4  # typing events in which the user accepts a suggestion
ACCEPT_HOWS = ("whole", "line", "word")  # Tab, accept line, accept word (Ctrl+Right)
DEBOUNCE_MS = 150  # a keystroke's request goes out once no other keystroke came this long
KEY_MS = (90, 140)  # inside a word: shorter than the debounce, so no request
WORD_PAUSE_MS = (350, 900)  # after a space or punctuation: the request goes out
READ_PAUSE_MS = (1000, 3000)  # on arriving somewhere, before typing
ACCEPT_REACTION_MS = (200, 500)  # from ghost text to Tab
PAUSE_AFTER = set(" (.,=:[")
TAIL_CHARACTERS = (10, 40)  # how much of a line's end is retyped
NEARBY_LINES = 12
JUMP_LINES = 100
PREFILL_JUMP_LINES = 20  # this far from the last prefill in a file, prefill again (extension)
ACCEPT_WAIT_S = 15.0  # how long the user waits for ghost text to accept
REQUEST_TIMEOUT_S = 300.0  # a cold 3k-token prompt on a busy 2-core machine takes minutes
EXIT_WAIT_S = 5.0  # for shutdown's answer, then for the process to end after exit
RSS_SAMPLE_S = 0.5
# Explain, after the session, twice at one method of click's Command: how soon its first words
# show (the panel streams them) and when the answer is whole. The second time finds the model
# and its cache warm.
EXPLAIN_FILE, EXPLAIN_AT = "core.py", "    def invoke(self, ctx: Context) -> t.Any:"
RAW_CONTEXT_TOKENS, RAW_PROMPT_TOKENS, RAW_GENERATED_TOKENS = 4096, 512, 64
# The server's debug line per completion, today "completion 123 ms, 45/1200 prompt tokens
# evaluated, 12 generated, stop" (assist/completion.py); read tolerantly.
SERVER_LOG = re.compile(r"completion\D*?(?P<ms>\d+)\s*ms.*?(?P<evaluated>\d+)\s*/\s*"
                        r"(?P<prompt>\d+)\s*prompt tokens evaluated(?:\D*(?P<generated>\d+)"
                        r"\s*generated)?")


@dataclass(frozen=True)
class Event:
    action: str  # "type", "enter" or "edit-other"
    kind: str  # the tag of its first request
    file: str
    line: int  # 0-based
    column: int  # where typing starts (enter: the end of the line)
    typed: str = ""  # what the user types there (enter: the next line, on the new one)
    accept_at: int | None = None  # the request (1-based) whose suggestion is accepted
    accept_how: str = "whole"


@dataclass
class Request:
    number: int
    kind: str
    file: str
    line: int
    character: int
    future: asyncio.Future
    sent_s: float
    log_mark: int  # how many server log lines had come when it went out
    event: int  # the script event it belongs to (1-based)
    # The user had typed the whole line (the rest of the line was retyped, or accepted): with
    # nothing left on it, an empty suggestion is the right one.
    line_done: bool = False
    cancelled: bool = False
    pending_ms: float | None = None  # how long it was out when cancelled


# ------------------------------------------------ the workspace and the script


def install_package() -> Path:
    """click, pip-installed (no dependencies) under $SMALLCODER_HOME/bench, outside the venv."""
    target = smallcoder_home() / "bench" / "session-packages"
    if not list(target.glob(f"{PACKAGE}-{PACKAGE_VERSION}.dist-info")):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--upgrade", "--target", str(target), f"{PACKAGE}=={PACKAGE_VERSION}"],
                       check=True)
    return target / PACKAGE


def code_lines(text: str) -> list[int]:
    """Indented ASCII code lines worth retyping: no comments, decorators or docstrings."""
    found, in_docstring = [], False
    for number, line in enumerate(text.split("\n")):
        stripped, quotes = line.strip(), line.count('"""') + line.count("'''")
        if not (in_docstring or quotes) and line.startswith("    ") and line.isascii() \
                and 16 <= len(stripped) <= 80 and not stripped.endswith("\\") \
                and not stripped.startswith(("#", "@", '"', "'")):
            found.append(number)
        in_docstring ^= quotes % 2 == 1
    return found


def enter_lines(lines: list[str], code: list[int]) -> list[int]:
    """Lines that end a statement before a code line: Enter there, then type that next line."""
    open_ends = (")", "]", "}", ",", "(", "[", "{", "\\")
    return [number - 1 for number in code if number > 0 and lines[number - 1].strip()
            and lines[number - 1].isascii() and not lines[number - 1].endswith(open_ends)]


def tail_start(line: str, rng: random.Random) -> int:
    """A column after a word boundary that leaves a tail of TAIL_CHARACTERS to retype."""
    indent = len(line) - len(line.lstrip())
    columns = [column for column in range(indent, len(line))
               if (column == indent or line[column - 1] in PAUSE_AFTER)
               and TAIL_CHARACTERS[0] <= len(line) - column <= TAIL_CHARACTERS[1]]
    return rng.choice(columns) if columns else max(indent, len(line) - TAIL_CHARACTERS[1])


def typing(action: str, kind: str, file: str, line: int, column: int, typed: str,
           rng: random.Random) -> Event:
    """An event that types `typed`, accepting a suggestion at one of its pauses or not."""
    pauses = sum(character in PAUSE_AFTER for character in typed[:-1]) + 1
    accept_at = rng.randint(1, pauses) if rng.random() < ACCEPT_SHARE else None
    return Event(action, kind, file, line, column, typed, accept_at, rng.choice(ACCEPT_HOWS))


def session_script(texts: dict[str, str], events: int, seed: int) -> list[Event]:
    """The same events for the same texts and seed: where the user goes and what they do."""
    rng = random.Random(seed)
    lines = {name: text.split("\n") for name, text in texts.items()}
    code = {name: code_lines(text) for name, text in texts.items()}
    file, line, kind = FILES[0], rng.choice(code[FILES[0]]), "after-switch"
    script: list[Event] = []
    visited: list[tuple[str, int, int]] = []
    actions: list[str] = []
    while len(script) < events:
        if not actions:
            actions = rng.sample(ACTION_ROUND, len(ACTION_ROUND))
        action = actions.pop() if script else "type"
        others = [name for name in FILES if name != file]
        earlier = [spot for spot in visited
                   if spot[0] != file or abs(spot[1] - line) >= PREFILL_JUMP_LINES]
        if action == "edit-other":
            script.append(Event("edit-other", "", rng.choice(others), 0, 0))
            continue
        if action == "return" and earlier:
            file, line, column = rng.choice(earlier)
            script.append(typing("type", "return-to-file", file, line, column,
                                 lines[file][line][column:], rng))
            continue
        if action in ("return", "switch"):
            file = rng.choice(others)
            line, kind = rng.choice(code[file]), "after-switch"
        elif action == "jump" and (far := [n for n in code[file] if abs(n - line) >= JUMP_LINES]):
            line, kind = rng.choice(far), "after-jump"
        elif action == "enter":
            ends = enter_lines(lines[file], code[file])
            line = rng.choice([n for n in ends if 0 < abs(n - line) <= NEARBY_LINES]
                              or [min(ends, key=lambda n, here=line: abs(n - here))])
            typed = lines[file][line + 1].strip()[:TAIL_CHARACTERS[1]]
            script.append(typing("enter", "after-enter", file, line, len(lines[file][line]),
                                 typed, rng))
            continue
        elif script:
            near = [n for n in code[file] if 0 < abs(n - line) <= NEARBY_LINES]
            line, kind = rng.choice(near or code[file]), "keystroke"
        column = tail_start(lines[file][line], rng)
        visited.append((file, line, column))
        script.append(typing("type", kind, file, line, column, lines[file][line][column:], rng))
    return script


def offset_of(text: str, line: int, column: int) -> int:
    return sum(len(row) + 1 for row in text.split("\n")[:line]) + column


def position_of(before_cursor: str) -> tuple[int, int]:
    return before_cursor.count("\n"), len(before_cursor) - before_cursor.rfind("\n") - 1


def accepted_part(suggestion: str, how: str) -> str:
    if how == "line":
        return suggestion.split("\n", 1)[0]
    if how == "word":
        word = re.match(r"\s*(\w+|[^\w\s]+)", suggestion)
        return word.group(0) if word else suggestion
    return suggestion


def suggestion_of(result: Any) -> str:
    items = getattr(result, "items", result) or []
    text = items[0].insert_text if items else ""
    return text if isinstance(text, str) else text.value


# ------------------------------------------------ raw llama.cpp speed


def raw_speed(model_path: Path, text: str, threads: int | None = None) -> dict[str, float]:
    """Prompt and greedy generation tokens/s of llama-cpp-python alone, with `threads` (by
    default the server's: the physical cores)."""
    import llama_cpp

    # model/engine.py's physical_cores(), not imported: the engine is what this measures, and
    # the bench must run while it is being changed.
    threads = threads or psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=RAW_CONTEXT_TOKENS,
                          n_threads=threads, n_threads_batch=threads, verbose=False)
    try:
        prompt = llm.tokenize(text.encode(), add_bos=False)[:RAW_PROMPT_TOKENS]
        llm.eval(prompt[:8])  # the first decode allocates buffers: not part of the speed
        llm.reset()
        started = time.perf_counter()
        llm.eval(prompt)
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        generated = list(islice(llm.generate(prompt, temp=0.0, top_k=1), RAW_GENERATED_TOKENS))
        generation_s = time.perf_counter() - started
    finally:
        llm.close()
        del llm
        gc.collect()
    return {"raw_prompt_tokens_per_s": round(len(prompt) / prompt_s, 1),
            "raw_generation_tokens_per_s": round(len(generated) / generation_s, 1),
            "threads": threads}


# ------------------------------------------------ the session


def server_command(checkout: Path) -> list[str]:
    """The checkout's `serve`: `python -m cli` since the CLI moved there, else server.cli."""
    if (checkout / "cli" / "__main__.py").is_file():
        return [sys.executable, "-m", "cli", "serve"]
    if (checkout / "server" / "cli.py").is_file():
        return [sys.executable, "-m", "server.cli", "serve"]
    raise SystemExit(f"{checkout} has neither cli/__main__.py nor server/cli.py: not a checkout")


class Session:
    """The editor's side of one server and workspace, and what it measures."""

    def __init__(self, client: LanguageClient, workspace: Path, think_time: bool,
                 write_row: Callable[[dict], None]) -> None:
        self.client, self.workspace, self.think_time = client, workspace, think_time
        self.write_row = write_row
        self.logs: list[re.Match | None] = []  # every server log line, completions parsed
        self.claimed: set[int] = set()
        self.texts: dict[str, str] = {}  # each open file as it is between events
        self.versions: dict[str, int] = {}
        self.focused, self.edits, self.events_played = "", 0, 0
        self.prefilled: dict[str, int] = {}  # the line last prefilled in each file
        self.pending: Request | None = None
        self.requests: list[dict] = []
        self.first_partial_s: dict[str, float] = {}  # by partialResultToken
        self.explains: list[dict] = []
        self.peak_rss_bytes = 0
        self.session_peak_rss_bytes = 0  # before Explain
        self.exited_on_request = False
        self.started_s = time.perf_counter()

    def clock_s(self) -> float:
        return round(time.perf_counter() - self.started_s, 3)

    def uri(self, file: str) -> str:
        return (self.workspace / PACKAGE / file).as_uri()

    async def pause(self, range_ms: tuple[int, int], rng: random.Random) -> None:
        delay_ms = rng.uniform(*range_ms)
        await asyncio.sleep(delay_ms / 1e3 if self.think_time else 0)

    def open(self, file: str) -> None:
        self.texts[file], self.versions[file] = (self.workspace / PACKAGE / file).read_text(), 1
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=self.uri(file), language_id="python",
                                                 version=1, text=self.texts[file])))

    def change(self, file: str, text: str) -> None:
        self.versions[file] += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri(file),
                                                                version=self.versions[file]),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    async def arrive(self, event: Event, rng: random.Random) -> None:
        """Focus a file at a line, then read. A switch, or a move far from where the file was
        last prefilled, asks the server to prefill there, as extension/src/prefill.ts does; a
        server that does not know smallcoder/prefill ignores it."""
        if event.file not in self.texts:
            self.open(event.file)
        last = self.prefilled.get(event.file)
        if event.file != self.focused or last is None \
                or abs(event.line - last) >= PREFILL_JUMP_LINES:
            self.client.protocol.notify("smallcoder/prefill", {
                "textDocument": {"uri": self.uri(event.file)},
                "position": {"line": event.line, "character": event.column}})
            self.prefilled[event.file] = event.line
        self.focused = event.file
        await self.pause(READ_PAUSE_MS, rng)

    def cancel_pending(self) -> None:
        """$/cancelRequest for the request still out, as VS Code sends when the next goes out.
        pygls 2.1.1 sends nothing when its future is cancelled, and then fails to set the
        server's late answer on it (InvalidStateError): the future is left to take that."""
        pending = self.pending
        if pending is None or pending.future.done() or pending.cancelled:
            return
        pending.cancelled = True
        pending.pending_ms = (time.perf_counter() - pending.sent_s) * 1e3
        self.client.protocol.notify(types.CANCEL_REQUEST,
                                    types.CancelParams(id=f"session-{pending.number}"))

    def request(self, kind: str, file: str, before_cursor: str,
                line_done: bool = False) -> Request:
        self.cancel_pending()
        line, character = position_of(before_cursor)
        number = self.pending.number + 1 if self.pending else 1
        future = self.client.protocol.send_request_async(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                text_document=types.TextDocumentIdentifier(uri=self.uri(file)),
                position=types.Position(line=line, character=character)),
            msg_id=f"session-{number}")
        self.pending = Request(number, kind, file, line, character, future, time.perf_counter(),
                               len(self.logs), self.events_played, line_done)
        future.add_done_callback(lambda done, request=self.pending: self.settle(request, done))
        return self.pending

    def settle(self, request: Request, done: asyncio.Future) -> None:
        """Its row once answered. The server logs a completion just before it answers, so the
        last unclaimed completion line since the request went out is its own; none, None."""
        latency_ms = (time.perf_counter() - request.sent_s) * 1e3
        error = done.exception()  # retrieved even when cancelled: asyncio warns otherwise
        if isinstance(error, JsonRpcRequestCancelled):  # the answer to our $/cancelRequest
            error = None
        answered = not (request.cancelled or error)
        mine = [index for index in range(request.log_mark, len(self.logs))
                if self.logs[index] is not None and index not in self.claimed]
        self.claimed.update(mine[-1:])
        log = self.logs[mine[-1]] if mine else None
        row = {"type": "request", "number": request.number, "event": request.event,
               "kind": request.kind,
               "file": request.file, "line": request.line + 1, "character": request.character,
               "sent_at_s": round(request.sent_s - self.started_s, 3),
               "cancelled": request.cancelled, "error": str(error) if error else None,
               "pending_ms": request.pending_ms and round(request.pending_ms),
               "latency_ms": round(latency_ms, 1),
               "empty": not suggestion_of(done.result()) if answered else None,
               "line_done": request.line_done,
               "server_log": log and log.string,
               **{name: log and log[group] and int(log[group]) for name, group in (
                   ("server_ms", "ms"), ("evaluated_prompt_tokens", "evaluated"),
                   ("prompt_tokens", "prompt"), ("generated_tokens", "generated"))}}
        self.requests.append(row)
        self.write_row(row)

    async def answer(self, request: Request, timeout_s: float) -> str:
        """The suggestion the user sees, waiting up to `timeout_s` ("" if none came)."""
        try:
            result = await asyncio.wait_for(asyncio.shield(request.future), timeout_s)
        except (TimeoutError, JsonRpcException):  # an error answer is in settle()'s row
            return ""
        return "" if request.cancelled else suggestion_of(result)

    async def pause_then_request(self, kind: str, file: str, before_cursor: str,
                                 rng: random.Random, line_done: bool = False) -> Request:
        """The user stops typing: the request goes out after the debounce and the user goes
        on after the pause. Without think time it goes out at once and is awaited."""
        if not self.think_time:
            request = self.request(kind, file, before_cursor, line_done)
            await self.answer(request, REQUEST_TIMEOUT_S)
            self.cancel_pending()  # only if it timed out
            return request
        pause_ms = rng.uniform(*WORD_PAUSE_MS)
        await asyncio.sleep(DEBOUNCE_MS / 1e3)
        request = self.request(kind, file, before_cursor, line_done)
        await asyncio.sleep((pause_ms - DEBOUNCE_MS) / 1e3)
        return request

    async def type_text(self, event: Event, before: str, after: str, kind: str,
                        rng: random.Random) -> None:
        """Type the event's text at the cursor a key at a time, and accept where it says."""
        pauses, index, typed = 0, 0, event.typed
        while index < len(typed):
            before += typed[index]
            index += 1
            self.change(event.file, before + after)
            if typed[index - 1] not in PAUSE_AFTER and index < len(typed):
                await self.pause(KEY_MS, rng)
                continue
            request = await self.pause_then_request(kind, event.file, before, rng,
                                                    index == len(typed))
            kind, pauses = "keystroke", pauses + 1
            if pauses != event.accept_at:
                continue
            accepted = accepted_part(await self.answer(request, ACCEPT_WAIT_S), event.accept_how)
            if accepted:
                await self.pause(ACCEPT_REACTION_MS, rng)
                before += accepted
                self.change(event.file, before + after)
                if typed.startswith(accepted, index):  # it was right: those keys are done
                    index += len(accepted)
                await self.pause_then_request("after-accept", event.file, before, rng,
                                              index == len(typed))

    async def play(self, event: Event, rng: random.Random) -> None:
        self.events_played += 1
        if event.action == "edit-other":  # as a refactoring or a paste would, not focused
            if event.file not in self.texts:
                self.open(event.file)
            self.edits += 1
            self.texts[event.file] += f"\n\ndef _edited_elsewhere_{self.edits}(value):\n" \
                                      "    return value\n"
            self.change(event.file, self.texts[event.file])
            return
        await self.arrive(event, rng)
        text = self.texts[event.file]
        lines = text.split("\n")
        end = offset_of(text, event.line, len(lines[event.line]))
        if event.action == "enter":
            following = lines[event.line + 1]
            before = text[:end] + "\n" + following[: len(following) - len(following.lstrip())]
            self.change(event.file, before + text[end:])
            await self.pause_then_request("after-enter", event.file, before, rng)
            await self.type_text(event, before, text[end:], "keystroke", rng)
        else:
            before = text[:offset_of(text, event.line, event.column)]
            self.change(event.file, before + text[end:])  # the tail selected and deleted
            await self.pause(KEY_MS, rng)
            await self.type_text(event, before, text[end:], event.kind, rng)
        self.change(event.file, text)  # undone: the next event finds the file as it was

    def partial_result(self, params: types.ProgressParams) -> None:
        value = params.value
        if isinstance(value, dict) and value.get("markdown", "").strip():
            self.first_partial_s.setdefault(str(params.token), time.perf_counter())

    async def explain(self, attempt: str) -> dict:
        """Explain at EXPLAIN_AT as the panel asks for it: first words and whole answer."""
        text = self.texts.get(EXPLAIN_FILE) or (self.workspace / PACKAGE / EXPLAIN_FILE).read_text()
        if EXPLAIN_FILE not in self.texts:
            self.open(EXPLAIN_FILE)
        line = text.split("\n").index(EXPLAIN_AT) + 1  # in the body
        token = f"explain-{attempt}"
        sent = time.perf_counter()
        row = {"type": "explain", "attempt": attempt, "line": line + 1}
        try:
            answer = await asyncio.wait_for(self.client.protocol.send_request_async(
                "smallcoder/explain", {"textDocument": {"uri": self.uri(EXPLAIN_FILE)},
                                       "position": {"line": line, "character": 8},
                                       "partialResultToken": token}), REQUEST_TIMEOUT_S)
        except (TimeoutError, JsonRpcException) as error:
            return {**row, "error": repr(error)}
        done = time.perf_counter()
        first = self.first_partial_s.get(token)
        markdown = getattr(answer, "markdown", None) or (answer or {}).get("markdown", "")
        return {**row, "first_words_ms": round((first - sent) * 1e3) if first else None,
                "answer_ms": round((done - sent) * 1e3), "answer_characters": len(markdown)}

    async def sample_rss(self, pid: int) -> None:
        """The server's resident memory, children included, at its highest."""
        process = psutil.Process(pid)
        while True:
            try:
                rss = process.memory_info().rss + sum(
                    child.memory_info().rss for child in process.children(recursive=True))
            except psutil.Error:
                return
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            await asyncio.sleep(RSS_SAMPLE_S)


async def run_session(model: str, checkout: Path, workspace: Path, script: list[Event],
                      args: argparse.Namespace, write_row: Callable[[dict], None]) -> Session:
    client = LanguageClient("smallcoder-bench-session", "1")
    session = Session(client, workspace, not args.no_think_time, write_row)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        session.logs.append(SERVER_LOG.search(params.message))
        write_row({"type": "log", "at_s": session.clock_s(), "message": params.message})

    @client.feature("smallcoder/statusChanged")
    def status_changed(params: Any) -> None:
        return None

    @client.feature(types.PROGRESS)
    def progress(params: types.ProgressParams) -> None:
        session.partial_result(params)

    await client.start_io(*server_command(checkout), cwd=str(checkout),
                          env={**os.environ, "PYTHONPATH": str(checkout)})
    server = client._server  # pygls keeps the asyncio subprocess here
    stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
    # Nobody else reads the server's stderr pipe, and a full pipe would stop the server.
    drain = asyncio.create_task(drain_lines(server.stderr, stderr_tail))
    sampler = asyncio.create_task(session.sample_rss(server.pid))
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options={"model": model, "logLevel": "debug",
                                    "inlineCompletions": {"contextTokens": args.context_tokens}},
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(),
                                                     name=workspace.name)]))
        client.initialized(types.InitializedParams())
        await wait_until_ready(client, model)
        for number, event in enumerate(script):
            await session.play(event, random.Random(f"{args.seed}:{number}"))
        if session.pending is not None:
            await session.answer(session.pending, REQUEST_TIMEOUT_S)
            session.cancel_pending()  # only if it timed out
        session.session_peak_rss_bytes = session.peak_rss_bytes
        if args.explain:  # Explain loads a second context for long jobs: its RSS is apart
            for attempt in ("first", "again"):
                row = await session.explain(attempt)
                session.explains.append(row)
                write_row(row)
    except Exception as error:
        raise SystemExit(f"the session failed: {error!r}; the server's last stderr lines:\n"
                         + "".join(stderr_tail)) from error
    finally:
        session.exited_on_request = await stop_server(client, server)
        sampler.cancel()
        await drain
    return session


async def stop_server(client: LanguageClient, server: asyncio.subprocess.Process) -> bool:
    """shutdown, then exit, as the editor does; a server still running EXIT_WAIT_S after each
    is killed (a worker thread still busy keeps a Python process alive). True if it ended."""
    ended = False
    try:
        if server.returncode is None:  # else it died already: nothing to ask
            await asyncio.wait_for(client.shutdown_async(None), EXIT_WAIT_S)
            client.exit(None)
            await asyncio.wait_for(server.wait(), EXIT_WAIT_S)
            ended = True
    except (TimeoutError, RuntimeError, JsonRpcException):  # slow, or going away already
        if server.returncode is None:
            server.kill()
    await client.stop()
    return ended


async def wait_until_ready(client: LanguageClient, model: str) -> None:
    while True:
        status = await client.protocol.send_request_async("smallcoder/status", {})
        if status.state in ("ready", "error", "missing-model"):
            break
        await asyncio.sleep(0.1)
    if status.state != "ready":
        raise SystemExit(f"{model}: {status.message}")


async def drain_lines(stream: asyncio.StreamReader, tail: collections.deque[str]) -> None:
    async for line in stream:
        tail.append(line.decode(errors="replace"))


# ------------------------------------------------ report


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary_rows(requests: list[dict]) -> list[dict]:
    """Per kind and for all: latency of the requests answered (not cancelled), and the rest."""
    rows = []
    for kind in (*KINDS, "all"):
        group = [row for row in requests if kind in ("all", row["kind"])]
        answered = [row for row in group if not (row["cancelled"] or row["error"])]
        due = [row for row in answered if not row.get("line_done")]
        latencies = [row["latency_ms"] for row in answered]
        evaluated = [row["evaluated_prompt_tokens"] for row in answered
                     if row["evaluated_prompt_tokens"] is not None]
        rows.append({"type": "summary", "kind": kind, "answered": len(answered),
                     "cancelled": sum(row["cancelled"] for row in group),
                     "failed": sum(bool(row["error"]) for row in group),
                     "p50_ms": round(percentile(latencies, 0.5)) if latencies else None,
                     "p95_ms": round(percentile(latencies, 0.95)) if latencies else None,
                     "max_ms": round(max(latencies)) if latencies else None,
                     "empty_share": round(statistics.mean(row["empty"] for row in answered), 2)
                     if answered else None,
                     # Leaving out requests at the end of a line the user had finished.
                     "empty_share_with_text_due": round(statistics.mean(
                         row["empty"] for row in due), 2) if due else None,
                     "mean_evaluated_prompt_tokens": round(statistics.mean(evaluated))
                     if evaluated else None})
    return rows


def first_shown_rows(requests: list[dict]) -> list[dict]:
    """Per kind of arrival: how long after the event's first request the user first saw a
    suggestion there, whatever was cancelled on the way (the user types on while no ghost text
    shows); an event that ended with none counts as never shown."""
    events: dict[int, list[dict]] = collections.defaultdict(list)
    for row in requests:
        events[row["event"]].append(row)
    rows = []
    for kind in ARRIVALS:
        waits, never = [], 0
        for group in events.values():
            group.sort(key=lambda row: row["sent_at_s"])
            if group[0]["kind"] != kind:
                continue
            shown = [row["sent_at_s"] + row["latency_ms"] / 1e3 for row in group
                     if not (row["cancelled"] or row["error"] or row["empty"])]
            if shown:
                waits.append((min(shown) - group[0]["sent_at_s"]) * 1e3)
            else:
                never += 1
        rows.append({"type": "first-shown", "kind": kind, "shown": len(waits), "never": never,
                     "p50_ms": round(percentile(waits, 0.5)) if waits else None,
                     "p95_ms": round(percentile(waits, 0.95)) if waits else None,
                     "max_ms": round(max(waits)) if waits else None})
    return rows


def print_report(machine: dict, rows: list[dict], server: dict) -> None:
    print(f"\n{machine['label']}: {machine['model']}, {machine['context_tokens']} context tokens,"
          f" think time {'on' if machine['think_time'] else 'off'}; raw llama.cpp "
          f"{machine['raw_prompt_tokens_per_s']} prompt tok/s, "
          f"{machine['raw_generation_tokens_per_s']} generation tok/s "
          f"({machine['threads']} threads); server max RSS {server['max_rss_mb']} MB, "
          f"{server['max_rss_mb_before_explain']} MB before Explain")
    print(f"{'kind':<15} {'n':>4} {'cancelled':>9} {'failed':>6} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'max ms':>7} {'empty':>6} {'empty*':>6} {'evaluated':>9}")
    for row in (row for row in rows if row["type"] == "summary"):
        cells = [row[key] for key in ("p50_ms", "p95_ms", "max_ms", "empty_share",
                                      "empty_share_with_text_due",
                                      "mean_evaluated_prompt_tokens")]
        p50, p95, top, empty, due, evaluated = ("-" if cell is None else cell for cell in cells)
        print(f"{row['kind']:<15} {row['answered']:>4} {row['cancelled']:>9} {row['failed']:>6} "
              f"{p50:>7} {p95:>7} {top:>7} {empty:>6} {due:>6} {evaluated:>9}")
    print("empty*: leaving out requests at the end of a line the user had finished")
    print(f"\nfirst suggestion shown after arriving, from the first request there:\n"
          f"{'kind':<15} {'shown':>5} {'never':>5} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
    for row in (row for row in rows if row["type"] == "first-shown"):
        p50, p95, top = ("-" if row[key] is None else row[key]
                         for key in ("p50_ms", "p95_ms", "max_ms"))
        print(f"{row['kind']:<15} {row['shown']:>5} {row['never']:>5} {p50:>7} {p95:>7} "
              f"{top:>7}")
    if server["first_error"]:
        print(f"the server failed requests, first with: {server['first_error']}")
    if not server["exited_on_request"]:
        print(f"the server did not end within {EXIT_WAIT_S:.0f} s of shutdown and exit: killed")
    if not server["completion_log_lines"]:
        print("no server log line matched SERVER_LOG: prompt tokens evaluated are unknown")


def checkout_commit(checkout: Path) -> str:
    """Its commit, "-dirty" when files changed since (the server run is the working tree)."""
    found = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty"],
                           capture_output=True, text=True)
    return found.stdout.strip() or "unknown"


def run_model(model: str, checkout: Path, label: str, package: Path, script: list[Event],
              args: argparse.Namespace, results: IO[str]) -> None:
    def write_row(row: dict) -> None:
        results.write(json.dumps({"label": label, "model": model, **row}) + "\n")
        results.flush()

    machine = {"label": label, "model": model, "type": "machine", "checkout": str(checkout),
               "commit": checkout_commit(checkout), "context_tokens": args.context_tokens,
               "seed": args.seed, "events": args.events, "think_time": not args.no_think_time,
               "debounce_ms": DEBOUNCE_MS, "logical_cpus": psutil.cpu_count(),
               "load_average": os.getloadavg(),
               **raw_speed(registry.resolve_model(model), (package / FILES[0]).read_text())}
    write_row(machine)
    workspace = Path(tempfile.mkdtemp(prefix="smallcoder-bench-session-"))
    try:
        shutil.copytree(package, workspace / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
        session = asyncio.run(run_session(model, checkout, workspace, script, args, write_row))
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    rows = [*summary_rows(session.requests), *first_shown_rows(session.requests)]
    matched = sum(log is not None for log in session.logs)
    errors = [row["error"] for row in session.requests if row["error"]]
    server = {"type": "server", "max_rss_mb": round(session.peak_rss_bytes / 1e6),
              "max_rss_mb_before_explain": round(session.session_peak_rss_bytes / 1e6),
              "exited_on_request": session.exited_on_request,
              "completion_log_lines": matched,
              "unclaimed_log_lines": matched - len(session.claimed),
              "first_error": errors[0] if errors else None}
    for row in [*rows, server]:
        write_row(row)
    print_report(machine, rows, server)
    for row in session.explains:
        print(f"explain ({row['attempt']}): first words {row.get('first_words_ms')} ms, "
              f"whole answer {row.get('answer_ms')} ms {row.get('error') or ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=[DEFAULT_MODEL])
    parser.add_argument("--context-tokens", type=int, default=CONTEXT_TOKENS)
    parser.add_argument("--events", type=int, default=EVENTS,
                        help="script events, each about four completion requests")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-think-time", action="store_true",
                        help="no reading pauses or debounce; every request awaited")
    parser.add_argument("--no-explain", dest="explain", action="store_false",
                        help="skip timing Explain after the session")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="the checkout whose server runs (default: this one)")
    parser.add_argument("--label", help="names the run in its rows (default: its commit)")
    args = parser.parse_args()
    checkout = args.checkout.resolve()
    package = install_package()
    script = session_script({file: (package / file).read_text() for file in FILES},
                            args.events, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"session-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    with out.open("w") as results:
        for model in args.models:
            run_model(model, checkout, args.label or checkout_commit(checkout), package,
                      script, args, results)
    print(f"rows: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
