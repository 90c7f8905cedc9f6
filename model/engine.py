"""Inference engines: the Engine protocol and the embedded llama.cpp implementation.

The embedded engine keeps one llama.cpp context and evaluates a prompt only where its KV cache
cannot serve it (model/prompt_cache.py: the common head, saved states, shifted chunks), can do
that ahead of a request (prefill), streams text, and stops within one token when asked.
"""

from __future__ import annotations

import codecs
import ctypes
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from model.errors import ModelError
from model.greedy import GreedyDecoder
from model.kv_cache import common_prefix_length
from model.loading import (
    chat_tokens,
    check_coder_model,
    check_gguf_header,
    gpu_layers_for_model,
    physical_cores,
    plain_tokens,
    single_special_id,
)
from model.prompt_cache import PromptCache, SyncStep
from model.prompts import FIM_TOKENS, fim_stop_tokens
from model.text_stream import StopRule, TextStream

DEFAULT_CONTEXT_TOKENS = 8192
DEFAULT_VRAM_BUDGET_BYTES = 2 * 1024**3
# Prompt tokens are evaluated in slices of this size so that a cancel lands between slices
# rather than after a whole 8k prompt: 128 tokens cost the 1.5B about 1 s on a slow CPU, and
# evaluate within a few percent as fast as 256 or 512 (see the report of issue #30).
EVAL_SLICE_TOKENS = 128
# A prefill gives the engine up between slices, so a foreground request waits at most one: a
# slice is what the measured prompt speed evaluates in PREFILL_SLICE_SECONDS, within bounds.
# A fixed 32 tokens took the 1.5B 0.7 s on a busy 2-core CPU (bench/session.py: answers of 2-5
# prompt tokens took about 1 s); below 16 tokens per-batch overhead starts to cost throughput.
PREFILL_SLICE_SECONDS = 0.3
PREFILL_SLICE_TOKENS = 32
PREFILL_MIN_SLICE_TOKENS = 16
# RAM for saved states of sequences the cache moved away from (the 1.5B: 28 KiB a token).
DEFAULT_STATE_CACHE_BYTES = 256 * 1024**2
# Whether chunks of the cache are shifted to new positions: output becomes approximate
# (bench/reuse.py measures how often it differs from exact).
REUSE_CHUNKS = False
# Timed at load, so that the prompt speed is known before the first request.
SPEED_PROBE_TEXT = "def scaled(values, factor):\n    return [value * factor for value in values]\n"

FinishReason = str  # "stop" | "length" | "time" | "cancelled" | "eos"


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 128
    # Wall time for generating, counted once the prompt is evaluated.
    time_budget_ms: float | None = None
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_k: int = 40
    top_p: float = 0.95
    seed: int = 0
    # The first token is the likeliest that does not start a new line (greedy decoding): at a
    # blank indented line, a newline first would suggest nothing.
    first_token_not_newline: bool = False


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    evaluated_prompt_tokens: int
    generated_tokens: int
    prompt_ms: float
    generation_ms: float
    # Of the tokens not evaluated: those restored from a saved state, and those shifted.
    restored_prompt_tokens: int = 0
    shifted_prompt_tokens: int = 0

    @property
    def reused_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.evaluated_prompt_tokens

    @property
    def tokens_per_second(self) -> float | None:
        if self.generated_tokens == 0 or self.generation_ms <= 0:
            return None
        return self.generated_tokens * 1000.0 / self.generation_ms


class CancelToken:
    """Set from any thread to stop a generation; checked before every token."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Call `callback` (from the cancelling thread) if the token is cancelled while the
        block runs, or at once if it already is: a remote request closes its socket there."""
        with self._lock:
            self._callbacks.append(callback)
            already = self._event.is_set()
        try:
            if already:
                callback()
            yield
        finally:
            with self._lock:
                self._callbacks.remove(callback)


@dataclass(frozen=True)
class PrefillResult:
    """What a prefill did: tokens it evaluated, tokens the cache already held (or restored,
    or shifted), and whether the cache now holds the whole prompt."""

    evaluated_tokens: int
    reused_tokens: int
    finished: bool


class Engine(Protocol):
    """What the rest of SmallCoder needs from a model, embedded or remote."""

    name: str
    context_tokens: int

    def tokenize(self, text: str) -> list[int]: ...

    def count_tokens(self, text: str) -> int: ...

    def special_token(self, name: str) -> int: ...

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]: ...

    def generate(
        self,
        prompt: Sequence[int],
        params: GenerationParams,
        *,
        cancel: CancelToken | None = None,
        on_text: Callable[[str], None] | None = None,
        stop_rule: StopRule | None = None,
        yield_turn: Callable[[], None] | None = None,
    ) -> GenerationResult: ...

    def prefill(self, prompt: Sequence[int], *, cancel: CancelToken | None = None,
                yield_turn: Callable[[], None] | None = None) -> PrefillResult:
        """Evaluate `prompt` into the cache ahead of the request that will send it, giving the
        engine up between small slices (`yield_turn` blocks while a foreground request runs)."""
        ...

    def cached_prefix_tokens(self, prompt: Sequence[int]) -> int:
        """How many tokens of `prompt` a request now would not evaluate; cheap."""
        ...

    @property
    def prompt_tokens_per_second(self) -> float | None:
        """Recent prompt evaluation speed, known from load on (None if unknown)."""
        ...


@dataclass
class EngineCounters:
    """Cumulative figures since the engine was loaded, from the engine's own bookkeeping."""

    calls: int = 0
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    generated_tokens: int = 0
    last_tokens_per_second: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


class LlamaCppEngine:
    """The embedded engine: llama.cpp through llama-cpp-python, loaded once."""

    def __init__(
        self,
        model_path: Path,
        *,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        vram_budget_bytes: int = DEFAULT_VRAM_BUDGET_BYTES,
        threads: int | None = None,
        state_cache_bytes: int = DEFAULT_STATE_CACHE_BYTES,
        reuse_chunks: bool = REUSE_CHUNKS,
    ) -> None:
        import llama_cpp

        check_gguf_header(model_path)
        self.name = model_path.name.removesuffix(".gguf")
        self.path = model_path
        self.context_tokens = context_tokens
        self.counters = EngineCounters()
        self._lock = threading.Lock()
        gpu_layers = gpu_layers_for_model(llama_cpp, model_path, context_tokens,
                                          vram_budget_bytes)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=context_tokens,
                n_batch=512,
                # Prompts too: llama-cpp-python would otherwise evaluate them on every logical
                # CPU, which collapses when another process (or our other context) is busy.
                n_threads=threads or physical_cores(),
                n_threads_batch=threads or physical_cores(),
                n_gpu_layers=gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as error:
            raise ModelError(
                f"llama.cpp could not load {model_path}: the file is damaged or not a model "
                f"it supports ({error}); run `smallcoder model verify`, or pull it again"
            ) from error
        self.gpu_layers = gpu_layers
        check_coder_model(self._llm, model_path)
        self._special_ids = {name: self._single_special_id(name) for name in FIM_TOKENS}
        self._stop_ids = {self._single_special_id(name) for name in fim_stop_tokens()}
        self._stop_ids.add(self._llm.token_eos())
        # Loaded adapters by file; llama.cpp frees them with the model.
        self._adapters: dict[Path, object] = {}
        self.adapter: tuple[Path, float] | None = None
        self._cache = PromptCache(self._llm, state_cache_bytes=state_cache_bytes,
                                  reuse_chunks=reuse_chunks, batch_tokens=self._llm.n_batch)
        self._greedy = GreedyDecoder(self._llm, self._cache, self._stop_ids,
                                     self.counters.extra)
        self._cache.measure_speed(self.tokenize(SPEED_PROBE_TEXT))

    # ------------------------------------------------------------ loading

    def _single_special_id(self, name: str) -> int | None:
        return single_special_id(self._llm, name)

    # ------------------------------------------------------------ tokens

    def tokenize(self, text: str) -> list[int]:
        return plain_tokens(self._llm, text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def special_token(self, name: str) -> int:
        token = self._special_ids.get(name) or self._single_special_id(name)
        if token is None:
            raise ModelError(f"{self.name} has no special token {name}")
        return token

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of `tokens`, special tokens shown by name (for logs and tests)."""
        return self._llm.detokenize(list(tokens), special=True).decode("utf-8", errors="replace")

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Tokens of a chat rendered with the GGUF's own chat template, ready to answer."""
        return chat_tokens(self._llm, messages, self.name)

    def clear_cache(self) -> None:
        """Forget the KV cache and the saved states: the next call evaluates its whole prompt."""
        with self._lock:
            self._cache.forget()

    def set_state_cache_limit(self, limit_bytes: int) -> None:
        """RAM for saved states (0: none); the least recently used go first."""
        self._cache.states.set_limit(limit_bytes)

    def cache_stats(self) -> dict[str, int]:
        """Saved states: entries, bytes, limit_bytes, saves, restores."""
        return self._cache.states.stats()

    @property
    def reuse_chunks(self) -> bool:
        return self._cache.reuse_chunks

    @reuse_chunks.setter
    def reuse_chunks(self, enabled: bool) -> None:
        self._cache.reuse_chunks = enabled

    # ------------------------------------------------------------ adapters

    def set_adapter(self, path: Path | None, scale: float = 1.0) -> None:
        """Apply the GGUF LoRA adapter at `path` over the loaded base (None: the base alone).

        The base stays loaded; each adapter file is read once and kept for switching back.
        The KV cache and saved states are cleared: they were computed with other weights.
        """
        import llama_cpp

        with self._lock:
            handles = []
            if path is not None:
                handle = self._adapters.get(path)
                if handle is None:
                    handle = llama_cpp.llama_adapter_lora_init(self._llm.model,
                                                               str(path).encode())
                    if not handle:
                        raise ModelError(
                            f"llama.cpp could not load the adapter {path}: it is not a LoRA "
                            f"GGUF for {self.name}; train it again with `smallcoder train`")
                    self._adapters[path] = handle
                handles.append(handle)
            array = (llama_cpp.llama_adapter_lora_p_ctypes * len(handles))(*handles)
            scales = (ctypes.c_float * len(handles))(*([scale] * len(handles)))
            if llama_cpp.llama_set_adapters_lora(self._llm.ctx, array, len(handles), scales):
                raise ModelError(f"llama.cpp refused the adapter {path} for {self.name}")
            self._cache.forget()
            self.adapter = (path, scale) if path is not None else None

    @property
    def llama(self):
        """The underlying llama_cpp.Llama, for benchmarks that compare against it directly."""
        return self._llm

    # ------------------------------------------------------------ prompt cache

    def prefill(self, prompt: Sequence[int], *, cancel: CancelToken | None = None,
                yield_turn: Callable[[], None] | None = None) -> PrefillResult:
        """Bring the KV cache to hold `prompt` (all but its last token, which a request
        evaluates again for fresh logits) the way generate() would, a prefill_slice_tokens
        slice at a time. The engine is free between slices: `yield_turn` is called there (it
        blocks while a foreground request runs), then a slice re-syncs: the cache may have
        moved."""
        goal = self._checked(prompt, 0)[:-1]
        wait = yield_turn or _no_wait
        evaluated, finished, slice_tokens = 0, False, self.prefill_slice_tokens
        while not finished:
            wait()
            if cancel is not None and cancel.cancelled:
                break
            with self._lock:
                step = self._cache.step(goal, slice_tokens, keep_longer=True)
            evaluated += step.evaluated
            finished = step.done
        held = min(len(goal), common_prefix_length(self._cache.live_tokens(), goal))
        return PrefillResult(evaluated, max(0, held - evaluated), finished)

    def cached_prefix_tokens(self, prompt: Sequence[int]) -> int:
        """How many tokens of `prompt` need no evaluating now: held by the live cache, by a
        saved state, or (with chunk reuse) elsewhere in the cache. List work only, no lock:
        for sizing a prompt to a latency budget."""
        prompt = list(prompt)
        return min(self._cache.cached_tokens(prompt[:-1]), max(0, len(prompt) - 1))

    @property
    def prompt_tokens_per_second(self) -> float | None:
        return self._cache.speed.tokens_per_second

    @property
    def prefill_slice_tokens(self) -> int:
        return self._cache.speed.tokens_within(PREFILL_SLICE_SECONDS, PREFILL_MIN_SLICE_TOKENS,
                                               PREFILL_SLICE_TOKENS)

    # ------------------------------------------------------------ generation

    def generate(
        self,
        prompt: Sequence[int],
        params: GenerationParams,
        *,
        cancel: CancelToken | None = None,
        on_text: Callable[[str], None] | None = None,
        stop_rule: StopRule | None = None,
        yield_turn: Callable[[], None] | None = None,
    ) -> GenerationResult:
        """Stream a completion of `prompt`; one caller at a time per engine.

        `yield_turn` is called before every token and prompt slice: a long job passes a
        function that blocks while more urgent work uses the CPU.
        """
        prompt = self._checked(prompt, params.max_tokens)
        with self._lock:
            return self._generate_locked(prompt, params, cancel, on_text, stop_rule,
                                         yield_turn or _no_wait)

    def _checked(self, prompt: Sequence[int], max_tokens: int) -> list[int]:
        prompt = list(prompt)
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) + max_tokens > self.context_tokens:
            raise ModelError(
                f"prompt of {len(prompt)} tokens plus {max_tokens} to generate exceeds "
                f"the {self.context_tokens}-token context; send less context"
            )
        return prompt

    def _generate_locked(self, prompt, params, cancel, on_text, stop_rule,
                         yield_turn) -> GenerationResult:
        start = time.perf_counter()
        greedy = params.temperature <= 0
        synced, stopped = self._evaluate_prompt(prompt, greedy, cancel, yield_turn)
        prompt_done = time.perf_counter()
        if stopped is not None:
            return self._result("", stopped, prompt, synced, 0, start, prompt_done)
        # The budget is for generating: a prompt evaluated past it would only be evaluated
        # again by the next request, while the KV cache keeps it for that request anyway.
        deadline = (None if params.time_budget_ms is None
                    else prompt_done + params.time_budget_ms / 1e3)

        stream = TextStream(params.stop, stop_rule, on_text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated = 0
        finish: FinishReason = "length"
        llm = self._llm
        llm.set_seed(params.seed)
        if greedy:
            tokens = self._greedy.tokens(prompt, params.max_tokens,
                                         params.first_token_not_newline)
        else:
            # llama-cpp-python evaluates the last prompt token itself (counted already).
            tokens = llm.generate(prompt, temp=params.temperature, top_k=params.top_k,
                                  top_p=params.top_p, min_p=0.0, repeat_penalty=1.0)
        for token in tokens:
            if token in self._stop_ids:
                finish = "eos"
                break
            generated += 1
            if stream.feed(decoder.decode(llm.detokenize([token]))):
                finish = "stop"
                break
            if generated >= params.max_tokens:
                break
            if cancel is not None and cancel.cancelled:
                finish = "cancelled"
                break
            if deadline is not None and time.perf_counter() >= deadline:
                finish = "time"
                break
            yield_turn()
        text = stream.finish(decoder.decode(b"", final=True) if finish != "stop" else "")
        return self._result(text, finish, prompt, synced, generated, start, prompt_done)

    def _evaluate_prompt(self, prompt, greedy, cancel,
                         yield_turn) -> tuple[SyncStep, FinishReason | None]:
        """Bring the cache to hold `prompt`, EVAL_SLICE_TOKENS at a time; the last token is
        always evaluated again, for its logits (by llama-cpp-python when sampling).

        Returns what was evaluated, restored and shifted and, if it stopped early, why."""
        goal, steps = prompt[:-1], []
        while not (steps and steps[-1].done):
            yield_turn()
            if cancel is not None and cancel.cancelled:
                break
            steps.append(self._cache.step(goal, EVAL_SLICE_TOKENS))
        done = bool(steps) and steps[-1].done
        if done and greedy:
            self._cache.decode(prompt[-1:], logits="last")
        synced = SyncStep(sum(step.evaluated for step in steps) + int(done),
                          sum(step.restored for step in steps),
                          sum(step.shifted for step in steps), done)
        return synced, None if done else "cancelled"

    def _result(self, text, finish, prompt, synced: SyncStep, generated, start, prompt_done):
        end = time.perf_counter()
        result = GenerationResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=len(prompt),
            evaluated_prompt_tokens=synced.evaluated,
            generated_tokens=generated,
            prompt_ms=(prompt_done - start) * 1e3,
            generation_ms=(end - prompt_done) * 1e3,
            restored_prompt_tokens=synced.restored,
            shifted_prompt_tokens=synced.shifted,
        )
        counters = self.counters
        counters.calls += 1
        counters.prompt_tokens += result.prompt_tokens
        counters.evaluated_prompt_tokens += synced.evaluated
        counters.generated_tokens += generated
        for name in ("restored_prompt_tokens", "shifted_prompt_tokens"):
            counters.extra[name] = counters.extra.get(name, 0) + getattr(result, name)
        if result.tokens_per_second is not None:
            counters.last_tokens_per_second = result.tokens_per_second
        return result


def _no_wait() -> None:
    return None
