"""The remote engine (issue #33): a team's llama-server or OpenAI-compatible server evaluates
the tokens; prompts are laid out, and output decoded and cut, here exactly as the embedded
engine does it, with the local GGUF's vocabulary (checked against the server's at connect).

Streams are closed on cancel, on a stop and past the time budget, so the server stops too.
Many requests may run at once (the server has slots): nothing here holds a lock while waiting.
"""

from __future__ import annotations

import codecs
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from model.engine import (
    DEFAULT_CONTEXT_TOKENS,
    CancelToken,
    EngineCounters,
    GenerationParams,
    GenerationResult,
    PrefillResult,
)
from model.errors import ModelError
from model.kv_cache import common_prefix_length
from model.prompts import fim_stop_tokens
from model.remote_dialects import LlamaServerDialect, OpenAIDialect, Piece
from model.remote_http import Endpoint, EventStream, RemoteError, RemoteProblem, check_url
from model.text_stream import StopRule, TextStream
from model.tokenizer import VocabularyTokenizer

DIALECTS = ("llama-server", "openai")
# The environment variable the API key comes in (the extension sets it from SecretStorage).
API_KEY_ENVIRONMENT = "SMALLCODER_API_KEY"
# Prompts recently sent, to estimate what a server slot's cache holds (cached_prefix_tokens).
RECENT_PROMPTS = 8
# A prompt speed is taken from the server's timings only for prompts at least this long.
SPEED_MIN_PROMPT_TOKENS = 32


@dataclass(frozen=True)
class RemoteConfig:
    dialect: str  # one of DIALECTS
    url: str
    model: str = ""  # the OpenAI dialect's model name ("": the first the server lists)
    api_key: str = field(default="", repr=False)
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 120.0

    @staticmethod
    def api_key_from_environment() -> str:
        return os.environ.get(API_KEY_ENVIRONMENT, "")


class RemoteEngine:
    """The Engine protocol over HTTP; `connect()` has checked the server when this exists."""

    def __init__(self, vocabulary_path: Path, config: RemoteConfig) -> None:
        if config.dialect not in DIALECTS:
            raise ModelError(f"unknown engine {config.dialect!r}: use one of "
                             f"{', '.join(DIALECTS)}")
        if (problem := check_url(config.url)) is not None:
            raise ModelError(f"{problem}: check smallcoder.serverUrl")
        self.config = config
        self._vocabulary = VocabularyTokenizer(vocabulary_path, check_coder=True)
        endpoint = Endpoint(config.url, config.api_key, config.connect_timeout_s,
                            config.read_timeout_s)
        self._native = LlamaServerDialect(endpoint) if config.dialect == "llama-server" else None
        self._openai = OpenAIDialect(endpoint, config.model) if self._native is None else None
        self._stop_ids = {self._vocabulary.special_token(name) for name in fim_stop_tokens()}
        self._stop_ids.add(self._vocabulary.eos_token)
        self.counters = EngineCounters()
        self._lock = threading.Lock()  # guards the figures below, never held over the network
        self._recent: deque[tuple[int, ...]] = deque(maxlen=RECENT_PROMPTS)
        self._speed: float | None = None
        info = (self._native or self._openai).connect(self._vocabulary)
        self.served_model = info.model
        self.context_tokens = info.context_tokens or DEFAULT_CONTEXT_TOKENS
        self.name = f"{info.model} on {config.url}"

    # ------------------------------------------------------------ tokens (local)

    def tokenize(self, text: str) -> list[int]:
        return self._vocabulary.tokenize(text)

    def count_tokens(self, text: str) -> int:
        return self._vocabulary.count_tokens(text)

    def special_token(self, name: str) -> int:
        return self._vocabulary.special_token(name)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._vocabulary.detokenize(tokens)

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return self._vocabulary.chat_prompt(messages)

    # ------------------------------------------------------------ the server's cache

    def cached_prefix_tokens(self, prompt: Sequence[int]) -> int:
        """An estimate: the longest head `prompt` shares with a prompt sent lately (a slot
        may have been taken by another user since)."""
        prompt = list(prompt)
        with self._lock:
            recent = list(self._recent)
        held = max((common_prefix_length(list(sent), prompt) for sent in recent), default=0)
        return min(held, max(0, len(prompt) - 1))

    @property
    def prompt_tokens_per_second(self) -> float | None:
        return self._speed

    def prefill(self, prompt: Sequence[int], *, cancel: CancelToken | None = None,
                yield_turn: Callable[[], None] | None = None) -> PrefillResult:
        """Have llama-server evaluate `prompt` into a slot's cache (nothing generated); an
        OpenAI server has no such call, so there is nothing to do (finished)."""
        prompt = self._checked(prompt, 0)
        if self._native is None or (cancel is not None and cancel.cancelled):
            return PrefillResult(0, 0, self._native is None)
        cached = self.cached_prefix_tokens(prompt)
        evaluated, finished = 0, False
        streams = _Streams(cancel)
        with EventStream(self._native.endpoint, "/completion",
                         self._native.prefill_body(prompt)) as stream, \
                streams.closing_on_cancel():
            streams.track(stream)
            for event in stream.events():
                timings = event.get("timings") if isinstance(event, dict) else None
                if isinstance(timings, dict):
                    evaluated = int(timings.get("prompt_n") or 0)
                finished = finished or (isinstance(event, dict) and event.get("stop") is True)
        if finished:
            self._remember(prompt)
        return PrefillResult(evaluated, max(0, cached if not finished else
                                            len(prompt) - evaluated), finished)

    def _remember(self, prompt: list[int]) -> None:
        with self._lock:
            self._recent.append(tuple(prompt))

    def _note_timings(self, timings: dict) -> None:
        prompt_n, prompt_ms = timings.get("prompt_n"), timings.get("prompt_ms")
        if isinstance(prompt_n, int) and prompt_n >= SPEED_MIN_PROMPT_TOKENS and prompt_ms:
            with self._lock:
                self._speed = prompt_n * 1000.0 / float(prompt_ms)

    # ------------------------------------------------------------ generation

    def _checked(self, prompt: Sequence[int], max_tokens: int) -> list[int]:
        prompt = list(prompt)
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) + max_tokens > self.context_tokens:
            raise ModelError(f"prompt of {len(prompt)} tokens plus {max_tokens} to generate "
                             f"exceeds the server's {self.context_tokens}-token context; send "
                             f"less context")
        return prompt

    def generate(self, prompt: Sequence[int], params: GenerationParams, *,
                 cancel: CancelToken | None = None,
                 on_text: Callable[[str], None] | None = None,
                 stop_rule: StopRule | None = None,
                 yield_turn: Callable[[], None] | None = None) -> GenerationResult:
        """Stream a completion of `prompt`. `yield_turn` is not called: the server runs
        completions and long jobs side by side in its slots, so a long job need not wait."""
        prompt = self._checked(prompt, params.max_tokens)
        run = _Run(params, TextStream(params.stop, stop_rule, on_text), time.perf_counter())
        if cancel is not None and cancel.cancelled:
            return self._result(run, prompt, "cancelled")
        streams = _Streams(cancel)
        with streams.closing_on_cancel(), closing(self._pieces(prompt, params, streams)) \
                as pieces:
            finish = self._consume(pieces, run, cancel)
        if finish in ("eos", "length", "stop"):
            self._remember(prompt)
        return self._result(run, prompt, finish)

    def _pieces(self, prompt: list[int], params: GenerationParams,
                streams: _Streams) -> Iterator[Piece]:
        if self._native is None:
            text = self._vocabulary.detokenize(prompt)
            yield from self._openai.pieces(text, params, streams.track)
            return
        first = None
        if params.first_token_not_newline and params.temperature <= 0:
            first = self._first_token(prompt, params, streams)
            if first is None:
                return  # cancelled, or the stream broke off: _consume tells which
            yield Piece((first,), None, 1)
            if params.max_tokens <= 1:
                yield Piece((), None, 0, "length")
                return
        yield from self._native.pieces(prompt, params, first, streams.track)

    def _first_token(self, prompt: list[int], params: GenerationParams,
                     streams: _Streams) -> int | None:
        """The likeliest first token that is no stop token and does not start a new line,
        as the embedded engine chooses it (among the likeliest the server reports)."""
        candidates = self._native.first_token_choices(prompt, params, streams.track)
        for token in candidates:
            if token not in self._stop_ids and not self._vocabulary.token_bytes(token) \
                    .startswith((b"\n", b"\r")):
                return token
        return candidates[0] if candidates else None

    def _consume(self, pieces: Iterator[Piece], run: _Run, cancel: CancelToken | None) -> str:
        """Feed the pieces through decoding, the stop rules and the budgets; why it ended."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for piece in pieces:
            if run.first_piece_at is None:
                run.first_piece_at = time.perf_counter()
            self._note_timings(piece.timings)
            run.timings.update(piece.timings)
            ended = self._feed(piece, run, decoder)
            if ended is not None:
                return ended
            if piece.finish is not None:
                run.tail = decoder.decode(b"", final=True)
                return piece.finish
            if cancel is not None and cancel.cancelled:
                return "cancelled"
            if run.past_deadline():
                return "time"
        if cancel is not None and cancel.cancelled:
            return "cancelled"
        raise RemoteError(RemoteProblem.UNREACHABLE,
                          f"{self.config.url} broke off the stream before its end (did the "
                          f"server stop?)")

    def _feed(self, piece: Piece, run: _Run, decoder) -> str | None:
        for token in piece.tokens:
            if token in self._stop_ids:
                return "eos"
            run.generated += 1
            if run.stream.feed(decoder.decode(self._vocabulary.token_bytes(token))):
                return "stop"
            if run.generated >= run.params.max_tokens:
                return "length"
        if piece.text is not None:
            run.generated += piece.generated_tokens
            if run.stream.feed(piece.text):
                return "stop"
            if run.generated >= run.params.max_tokens:
                return "length"
        return None

    def _result(self, run: _Run, prompt: list[int], finish: str) -> GenerationResult:
        end = time.perf_counter()
        prompt_done = run.first_piece_at or end
        text = run.stream.finish(run.tail if finish != "stop" else "")
        evaluated = run.timings.get("prompt_n")
        result = GenerationResult(
            text=text, finish_reason=finish, prompt_tokens=len(prompt),
            evaluated_prompt_tokens=evaluated if isinstance(evaluated, int) else len(prompt),
            generated_tokens=run.generated, prompt_ms=(prompt_done - run.started) * 1e3,
            generation_ms=(end - prompt_done) * 1e3)
        with self._lock:
            counters = self.counters
            counters.calls += 1
            counters.prompt_tokens += result.prompt_tokens
            counters.evaluated_prompt_tokens += result.evaluated_prompt_tokens
            counters.generated_tokens += result.generated_tokens
            if result.tokens_per_second is not None:
                counters.last_tokens_per_second = result.tokens_per_second
        return result


@dataclass
class _Run:
    """One generation's state while its pieces arrive."""

    params: GenerationParams
    stream: TextStream
    started: float
    first_piece_at: float | None = None
    generated: int = 0
    tail: str = ""
    timings: dict = field(default_factory=dict)

    def past_deadline(self) -> bool:
        budget = self.params.time_budget_ms
        return (budget is not None and self.first_piece_at is not None
                and time.perf_counter() - self.first_piece_at >= budget / 1e3)


class _Streams:
    """The streams of one request (a generation opens one or two, one after the other): a
    cancel closes each, one opened after the cancel too."""

    def __init__(self, cancel: CancelToken | None) -> None:
        self._cancel = cancel
        self._open: list[EventStream] = []

    def track(self, stream: EventStream) -> None:
        self._open.append(stream)
        if self._cancel is not None and self._cancel.cancelled:
            stream.close()

    def close_all(self) -> None:
        for stream in list(self._open):
            stream.close()

    def closing_on_cancel(self) -> AbstractContextManager[None]:
        return nullcontext() if self._cancel is None else self._cancel.on_cancel(self.close_all)
