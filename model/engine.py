"""Inference engines: the Engine protocol and the embedded llama.cpp implementation.

The embedded engine keeps one llama.cpp context, reuses its KV cache for the part of a prompt
that did not change since the last call, streams text, and stops within one token when asked.
"""

from __future__ import annotations

import codecs
import ctypes
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from model.errors import ModelError
from model.lookup import DRAFT_TOKENS, draft
from model.prompts import FIM_TOKENS, fim_stop_tokens

DEFAULT_CONTEXT_TOKENS = 8192
DEFAULT_VRAM_BUDGET_BYTES = 2 * 1024**3
# Prompt tokens are evaluated in slices of this size so a cancel lands between slices
# rather than after a whole 8k prompt.
EVAL_SLICE_TOKENS = 256
# Room kept free on the GPU for llama.cpp's compute buffers, beyond weights and KV cache.
GPU_OVERHEAD_BYTES = 300 * 1024**2
SUPPORTED_ARCHITECTURES = ("qwen2",)
GGUF_MAGIC = b"GGUF"

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


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    evaluated_prompt_tokens: int
    generated_tokens: int
    prompt_ms: float
    generation_ms: float

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

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


# Given all text generated so far, return where to cut it and stop, or None to go on.
StopRule = Callable[[str], int | None]


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


@dataclass
class EngineCounters:
    """Cumulative figures since the engine was loaded, from the engine's own bookkeeping."""

    calls: int = 0
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    generated_tokens: int = 0
    last_tokens_per_second: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def gpu_layers_for_budget(
    budget_bytes: int, weights_bytes: int, n_layers: int, kv_cache_bytes: int
) -> int:
    """How many transformer layers fit in `budget_bytes` of VRAM with their share of the cache.

    The output layer and embeddings count as one more layer, as llama.cpp offloads them last.
    """
    if n_layers <= 0 or budget_bytes <= GPU_OVERHEAD_BYTES:
        return 0
    per_layer = (weights_bytes + kv_cache_bytes) / (n_layers + 1)
    fitting = int((budget_bytes - GPU_OVERHEAD_BYTES) // per_layer)
    return max(0, min(fitting, n_layers + 1))


def kv_cache_bytes(metadata: dict[str, str], context_tokens: int) -> int:
    """Size of an f16 KV cache for this model at `context_tokens`."""
    arch = metadata.get("general.architecture", "")
    n_layers = int(metadata.get(f"{arch}.block_count", 0))
    n_embd = int(metadata.get(f"{arch}.embedding_length", 0))
    n_head = int(metadata.get(f"{arch}.attention.head_count", 1))
    n_head_kv = int(metadata.get(f"{arch}.attention.head_count_kv", n_head))
    head_dim = n_embd // max(n_head, 1)
    return 2 * n_layers * context_tokens * n_head_kv * head_dim * 2


def plain_tokens(llm, text: str) -> list[int]:
    """Token ids of plain text for a llama_cpp.Llama: no BOS, special-token names not parsed
    (a user's file that mentions `<|fim_prefix|>` must not steer the prompt)."""
    if not text:
        return []
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


def check_gguf_header(path: Path) -> None:
    """Fail early, with advice, on a file that is not GGUF at all."""
    try:
        with path.open("rb") as source:
            magic = source.read(4)
    except OSError as error:
        raise ModelError(f"cannot read model file {path}: {error.strerror}") from error
    if magic != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF model file (it starts with {magic!r}); point SmallCoder at "
            f"a .gguf file or run `smallcoder model pull`"
        )


class LlamaCppEngine:
    """The embedded engine: llama.cpp through llama-cpp-python, loaded once."""

    def __init__(
        self,
        model_path: Path,
        *,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        vram_budget_bytes: int = DEFAULT_VRAM_BUDGET_BYTES,
        threads: int | None = None,
    ) -> None:
        import llama_cpp

        check_gguf_header(model_path)
        self.name = model_path.name.removesuffix(".gguf")
        self.path = model_path
        self.context_tokens = context_tokens
        self.counters = EngineCounters()
        self._lock = threading.Lock()
        gpu_layers = self._gpu_layers(llama_cpp, model_path, context_tokens, vram_budget_bytes)
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
        self._check_model()
        self._special_ids = {name: self._single_special_id(name) for name in FIM_TOKENS}
        self._stop_ids = {self._single_special_id(name) for name in fim_stop_tokens()}
        self._stop_ids.add(self._llm.token_eos())
        # Loaded adapters by file; llama.cpp frees them with the model.
        self._adapters: dict[Path, object] = {}
        self.adapter: tuple[Path, float] | None = None

    # ------------------------------------------------------------ loading

    @staticmethod
    def _gpu_layers(llama_cpp, path: Path, context_tokens: int, budget_bytes: int) -> int:
        if not llama_cpp.llama_supports_gpu_offload():
            return 0
        probe = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        metadata = dict(probe.metadata)
        arch = metadata.get("general.architecture", "")
        return gpu_layers_for_budget(
            budget_bytes,
            path.stat().st_size,
            int(metadata.get(f"{arch}.block_count", 0)),
            kv_cache_bytes(metadata, context_tokens),
        )

    def _check_model(self) -> None:
        arch = self._llm.metadata.get("general.architecture", "unknown")
        if arch not in SUPPORTED_ARCHITECTURES:
            raise ModelError(
                f"{self.path.name} is a {arch!r} model; SmallCoder's prompts need a Qwen2.5-Coder "
                f"model ({', '.join(SUPPORTED_ARCHITECTURES)}): set SMALLCODER_MODEL to one"
            )
        missing = [name for name in FIM_TOKENS if self._single_special_id(name) is None]
        if missing:
            raise ModelError(
                f"{self.path.name} has no fill-in-the-middle tokens {', '.join(missing)}: it is "
                f"not a Qwen2.5-Coder model; use qwen2.5-coder-1.5b-instruct-q4_k_m"
            )

    def _single_special_id(self, name: str) -> int | None:
        ids = self._llm.tokenize(name.encode(), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 else None

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
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.name} carries no chat template; use an Instruct model")
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self.detokenize([self._llm.token_eos()]),
            bos_token=self.detokenize([self._llm.token_bos()]),
        )
        rendered = formatter(messages=list(messages)).prompt
        return self._llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)

    def clear_cache(self) -> None:
        """Forget the KV cache: the next call evaluates its whole prompt."""
        with self._lock:
            self._llm.reset()

    # ------------------------------------------------------------ adapters

    def set_adapter(self, path: Path | None, scale: float = 1.0) -> None:
        """Apply the GGUF LoRA adapter at `path` over the loaded base (None: the base alone).

        The base stays loaded; each adapter file is read once and kept for switching back.
        The KV cache is cleared: what it holds was computed with the previous weights.
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
            self._llm.reset()
            memory = llama_cpp.llama_get_memory(self._llm.ctx)
            if memory is not None:
                llama_cpp.llama_memory_clear(memory, True)
            self.adapter = (path, scale) if path is not None else None

    @property
    def llama(self):
        """The underlying llama_cpp.Llama, for benchmarks that compare against it directly."""
        return self._llm

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
        prompt = list(prompt)
        if not prompt:
            raise ValueError("empty prompt")
        if len(prompt) + params.max_tokens > self.context_tokens:
            raise ModelError(
                f"prompt of {len(prompt)} tokens plus {params.max_tokens} to generate exceeds "
                f"the {self.context_tokens}-token context; send less context"
            )
        with self._lock:
            return self._generate_locked(prompt, params, cancel, on_text, stop_rule,
                                         yield_turn or _no_wait)

    def _generate_locked(self, prompt, params, cancel, on_text, stop_rule,
                         yield_turn) -> GenerationResult:
        start = time.perf_counter()
        evaluated, stopped = self._evaluate_prompt(prompt, cancel, yield_turn)
        prompt_done = time.perf_counter()
        if stopped is not None:
            return self._result("", stopped, prompt, evaluated, 0, start, prompt_done)
        # The budget is for generating: a prompt evaluated past it would only be evaluated
        # again by the next request, while the KV cache keeps it for that request anyway.
        deadline = (None if params.time_budget_ms is None
                    else prompt_done + params.time_budget_ms / 1e3)

        stream = _TextStream(params.stop, stop_rule, on_text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generated = 0
        finish: FinishReason = "length"
        llm = self._llm
        llm.set_seed(params.seed)
        if params.temperature <= 0:
            tokens = self._greedy_with_lookup(prompt, params.max_tokens)
        else:
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
        return self._result(text, finish, prompt, evaluated, generated, start, prompt_done)

    def _greedy_with_lookup(self, prompt: list[int], max_tokens: int) -> Iterator[int]:
        """The greedy continuation of an evaluated `prompt`, a token at a time. Each batch
        evaluates the next token together with a prompt-lookup guess of the ones after it
        (model/lookup.py) and keeps the guessed tokens the model chose itself, so what comes
        out is the model's own greedy choice at every position, guessed or not. The KV cache
        and `input_ids` end up as llama-cpp-python keeps them, so the next prompt reuses them.
        """
        import llama_cpp

        llm = self._llm
        memory = llama_cpp.llama_get_memory(llm.ctx)
        token = self._choices(1)[0]  # after the prompt's last token
        history = [*prompt, token]  # ends with the token to evaluate next
        batch = llama_cpp.llama_batch_init(1 + DRAFT_TOKENS, 0, 1)
        counters = self.counters.extra
        try:
            for _ in range(max_tokens):
                yield token
                past = llm.n_tokens
                room = min(max_tokens - (len(history) - len(prompt)),
                           self.context_tokens - past - 1)
                guess = draft(history, min(DRAFT_TOKENS, room)) if room > 0 else []
                step = [token, *guess]
                llama_cpp.llama_memory_seq_rm(memory, -1, past, -1)
                batch.n_tokens = len(step)
                for i, value in enumerate(step):
                    batch.token[i] = value
                    batch.pos[i] = past + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = True
                if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                    raise ModelError(f"llama.cpp could not evaluate token {past} of the context")
                chosen = self._choices(len(step))
                kept = 0
                while kept < len(guess) and chosen[kept] == guess[kept]:
                    kept += 1
                accepted = step[:1 + kept]
                llm.input_ids[past:past + len(accepted)] = accepted
                llm.n_tokens = past + len(accepted)
                token = chosen[kept]
                history += [*guess[:kept], token]
                counters["lookup_guessed"] = counters.get("lookup_guessed", 0) + len(guess)
                counters["lookup_kept"] = counters.get("lookup_kept", 0) + kept
                yield from guess[:kept]
        finally:
            # What was guessed wrong, or evaluated past a stop, leaves the cache.
            llama_cpp.llama_memory_seq_rm(memory, -1, llm.n_tokens, -1)
            llama_cpp.llama_batch_free(batch)

    def _choices(self, rows: int) -> list[int]:
        """The most likely next token after each of the last `rows` tokens evaluated."""
        import llama_cpp
        import numpy as np

        llm = self._llm
        return [int(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, row - rows),
                                          shape=(llm.n_vocab(),)).argmax())
                for row in range(rows)]

    def _evaluate_prompt(self, prompt, cancel, yield_turn) -> tuple[int, FinishReason | None]:
        """Evaluate what the KV cache does not already hold, a slice at a time.

        Returns the number of tokens evaluated and, if it stopped early, why.
        """
        llm = self._llm
        cached = 0
        for held, wanted in zip(llm.input_ids[:llm.n_tokens], prompt, strict=False):
            if held != wanted:
                break
            cached += 1
        # The last prompt token is always evaluated again: sampling needs its fresh logits.
        keep = min(cached, len(prompt) - 1)
        llm.n_tokens = keep
        pending = prompt[keep:]
        for begin in range(0, len(pending), EVAL_SLICE_TOKENS):
            yield_turn()
            if cancel is not None and cancel.cancelled:
                return begin, "cancelled"
            llm.eval(pending[begin:begin + EVAL_SLICE_TOKENS])
        return len(pending), None

    def _result(self, text, finish, prompt, evaluated, generated, start, prompt_done):
        end = time.perf_counter()
        result = GenerationResult(
            text=text,
            finish_reason=finish,
            prompt_tokens=len(prompt),
            evaluated_prompt_tokens=evaluated,
            generated_tokens=generated,
            prompt_ms=(prompt_done - start) * 1e3,
            generation_ms=(end - prompt_done) * 1e3,
        )
        counters = self.counters
        counters.calls += 1
        counters.prompt_tokens += result.prompt_tokens
        counters.evaluated_prompt_tokens += evaluated
        counters.generated_tokens += generated
        if result.tokens_per_second is not None:
            counters.last_tokens_per_second = result.tokens_per_second
        return result


def _no_wait() -> None:
    return None


class _TextStream:
    """Accumulates generated text, cuts it at stop strings or a stop rule, and streams it.

    Text that could be the start of a stop string is held back until it is known not to be.
    """

    def __init__(self, stops: tuple[str, ...], rule: StopRule | None,
                 on_text: Callable[[str], None] | None) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._rule = rule
        self._on_text = on_text
        self._text = ""
        self._emitted = 0
        self._hold = max((len(stop) - 1 for stop in self._stops), default=0)

    def feed(self, piece: str) -> bool:
        """Add a piece; True when the text is complete and generation should stop."""
        self._text += piece
        cut = self._cut_position()
        if cut is not None:
            self._text = self._text[:cut]
            self._emit(len(self._text))
            return True
        self._emit(len(self._text) - self._hold)
        return False

    def finish(self, tail: str) -> str:
        self._text += tail
        cut = self._cut_position()
        if cut is not None:
            self._text = self._text[:cut]
        self._emit(len(self._text))
        return self._text

    def _cut_position(self) -> int | None:
        cuts = [index for stop in self._stops if (index := self._text.find(stop)) >= 0]
        if self._rule is not None and (ruled := self._rule(self._text)) is not None:
            cuts.append(ruled)
        return min(cuts) if cuts else None

    def _emit(self, upto: int) -> None:
        if self._on_text is None or upto <= self._emitted:
            return
        self._on_text(self._text[self._emitted:upto])
        self._emitted = upto
