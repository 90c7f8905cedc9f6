"""The embedded llama.cpp engine with the real 0.5B model."""

from __future__ import annotations

import ast
import threading
from itertools import islice
from pathlib import Path

import pytest

from assist.completion import CompletionSettings, complete_at
from model.engine import CancelToken, GenerationParams, LlamaCppEngine
from model.errors import ModelError
from model.loading import gpu_layers_for_budget
from model.prompts import fim_prompt_tokens, fim_request_at
from tests.conftest import small_model_path

pytestmark = pytest.mark.model
LONG_PROMPT = "Write a long story about a robot who learns to program.\n"


def _chat(engine, text=LONG_PROMPT):
    return engine.chat_prompt([{"role": "user", "content": text}])


def test_cancel_from_the_stream_stops_at_the_next_token(real_engine):
    cancel = CancelToken()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        cancel.cancel()

    result = real_engine.generate(_chat(real_engine), GenerationParams(max_tokens=200),
                                  cancel=cancel, on_text=on_text)
    assert result.finish_reason == "cancelled"
    assert result.generated_tokens <= 2


def test_cancel_from_another_thread_stops_generation(real_engine):
    cancel = CancelToken()
    timer = threading.Timer(0.3, cancel.cancel)
    timer.start()
    result = real_engine.generate(_chat(real_engine), GenerationParams(max_tokens=2000),
                                  cancel=cancel)
    timer.cancel()
    assert result.finish_reason == "cancelled"
    assert result.generated_tokens < 200


def test_a_cancelled_request_before_start_evaluates_nothing(real_engine):
    cancel = CancelToken()
    cancel.cancel()
    result = real_engine.generate(_chat(real_engine, "something new entirely " * 40),
                                  GenerationParams(), cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert result.generated_tokens == 0


def test_time_budget_stops_generation(real_engine):
    result = real_engine.generate(_chat(real_engine),
                                  GenerationParams(max_tokens=2000, time_budget_ms=300))
    assert result.finish_reason == "time"
    assert 0 < result.generated_tokens < 100


def test_max_tokens_is_respected(real_engine):
    result = real_engine.generate(_chat(real_engine), GenerationParams(max_tokens=5))
    assert result.finish_reason == "length"
    assert result.generated_tokens == 5


def test_stop_string_is_cut_and_not_streamed(real_engine):
    streamed: list[str] = []
    prompt = _chat(real_engine, "Count from 1 to 20, separated by commas, nothing else.")
    result = real_engine.generate(prompt, GenerationParams(max_tokens=80, stop=("5",)),
                                  on_text=streamed.append)
    assert result.finish_reason == "stop"
    assert "5" not in result.text
    assert "".join(streamed) == result.text
    assert "4" in result.text


def _big_file() -> str:
    functions = [
        f"def helper_{n}(values):\n    \"\"\"Return the values scaled by {n}.\"\"\"\n"
        f"    return [value * {n} for value in values]\n\n"
        for n in range(60)
    ]
    return "".join(functions) + "def main():\n    result = helper_1([1, 2])\n    \n"


def test_a_one_character_edit_reuses_the_prompt_head(real_engine):
    text = _big_file()
    cursor_line = text.count("\n") - 1
    first = fim_prompt_tokens(fim_request_at(text, cursor_line, 4, repo_name="r", path="m.py"),
                              real_engine)
    assert len(first) > 1400
    cold = real_engine.generate([*first[:10], 42, *first[10:]], GenerationParams(max_tokens=4))
    edited = text[:-1] + "p\n"
    second = fim_prompt_tokens(fim_request_at(edited, cursor_line, 5, repo_name="r",
                                              path="m.py"), real_engine)
    real_engine.generate(first, GenerationParams(max_tokens=4))
    warm = real_engine.generate(second, GenerationParams(max_tokens=4))
    assert cold.evaluated_prompt_tokens > len(first) - 20
    assert warm.evaluated_prompt_tokens <= 5
    assert warm.reused_prompt_tokens >= len(second) - 5


def test_greedy_output_is_llama_cpp_s_own_with_prompt_lookup_guesses_kept(real_engine):
    # Rewriting code repeats it: most of the answer is guessed from the prompt, and what comes out
    # must still be exactly what llama-cpp-python's own greedy sampling gives, cold and warm.
    source = _big_file()[:1200]
    prompt = _chat(real_engine, f"Add type hints to this code:\n```python\n{source}```")
    params = GenerationParams(max_tokens=96)
    llm = real_engine.llama
    llm.reset()
    own = list(islice(llm.generate(prompt, temp=0.0, top_k=40, top_p=0.95, min_p=0.0,
                                   repeat_penalty=1.0), 96))
    real_engine.clear_cache()
    extra = real_engine.counters.extra
    kept_before = extra.get("lookup_kept", 0)
    cold = real_engine.generate(prompt, params)
    assert extra["lookup_kept"] - kept_before > 20
    warm = real_engine.generate(prompt, params)
    assert warm.evaluated_prompt_tokens == 1
    assert cold.finish_reason == warm.finish_reason == "length"
    assert cold.text == warm.text == llm.detokenize(own).decode()


def test_completing_fibonacci_gives_python_that_parses(real_engine):
    text = "def fibonacci(n):\n    \n"
    # No time budget: a busy CPU must not turn this into an empty suggestion.
    completion = complete_at(real_engine, text, 1, 4, path="fib.py", repo_name="demo",
                             settings=CompletionSettings(time_budget_ms=None))
    assert completion.text.strip()
    source = "def fibonacci(n):\n    " + completion.text + "\n"
    ast.parse(source)
    assert "return" in source


def test_chat_prompt_uses_the_gguf_template(real_engine):
    tokens = real_engine.chat_prompt([{"role": "user", "content": "hi"}])
    text = real_engine.detokenize(tokens)
    assert text.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nhi<|im_end|>" in text


def test_a_file_that_is_not_gguf_is_refused_with_advice(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ModelError, match="is not a GGUF model file"):
        LlamaCppEngine(fake)


def test_a_truncated_gguf_is_refused_with_advice(tmp_path):
    truncated = tmp_path / "truncated.gguf"
    with small_model_path().open("rb") as source:
        truncated.write_bytes(source.read(2_000_000))
    with pytest.raises(ModelError, match="could not load"):
        LlamaCppEngine(truncated)


def test_missing_model_file_is_refused(tmp_path):
    with pytest.raises(ModelError, match="cannot read model file"):
        LlamaCppEngine(Path(tmp_path / "nope.gguf"))


@pytest.mark.parametrize(
    ("budget_mb", "expected"),
    [(0, 0), (200, 0), (2048, 29), (1200, 20)],
)
def test_gpu_layers_fit_the_vram_budget(budget_mb, expected):
    mib = 1024**2
    # 1.5B Q4_K_M: 1.12 GB of weights, 28 layers, 224 MiB of f16 KV cache at 8k.
    layers = gpu_layers_for_budget(budget_mb * mib, 1_117_320_768, 28, 224 * mib)
    assert layers == expected
