"""The engine's prompt cache with the real 0.5B model: prefill, saved states, shifted chunks,
the first token at a blank line, and the figures a caller sizes prompts by."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest

from model.engine import (
    DEFAULT_STATE_CACHE_BYTES,
    CancelToken,
    GenerationParams,
)
from model.prompts import fim_prompt_tokens, fim_request_at

pytestmark = pytest.mark.model
PARAMS = GenerationParams(max_tokens=8)


def _module(functions: int, offset: int = 0) -> str:
    return "".join(
        f"def helper_{n}(values):\n    \"\"\"Scale the values by {n}.\"\"\"\n"
        f"    return [value * {n} for value in values]\n\n"
        for n in range(offset, offset + functions)
    ) + "def main():\n    result = helper_1([1, 2])\n    \n" + "".join(
        f"total_{n} = helper_{n}([{n}])\n" for n in range(20))


def _fim(engine, text: str, line: int, character: int = 4) -> list[int]:
    return fim_prompt_tokens(fim_request_at(text, line, character, repo_name="r",
                                            path="m.py"), engine)


def _cursor_line(text: str) -> int:
    return text.split("\n").index("    ")


@contextmanager
def _chunk_reuse(engine):
    engine.reuse_chunks = True
    try:
        yield
    finally:
        engine.reuse_chunks = False


class _Gate:
    """server/model_host.py's TurnGate in miniature: a prefill's turn waits while a
    foreground request runs."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._foreground = 0

    @contextmanager
    def foreground(self):
        with self._condition:
            self._foreground += 1
        try:
            yield
        finally:
            with self._condition:
                self._foreground -= 1
                self._condition.notify_all()

    def wait_turn(self) -> None:
        with self._condition:
            # A prefill that kept the engine locked would never see the foreground finish.
            assert self._condition.wait_for(lambda: not self._foreground, timeout=600)

    def entered(self) -> bool:
        with self._condition:
            return self._foreground > 0


def test_prompt_speed_is_known_from_load_on(real_engine):
    assert real_engine.prompt_tokens_per_second > 0


def test_a_prefilled_prompt_costs_one_token_and_answers_as_a_cold_one(real_engine):
    prompt = _fim(real_engine, _module(12), _cursor_line(_module(12)))
    real_engine.clear_cache()
    cold = real_engine.generate(prompt, PARAMS)
    real_engine.clear_cache()
    assert real_engine.cached_prefix_tokens(prompt) == 0
    prefilled = real_engine.prefill(prompt)
    assert prefilled.finished
    assert prefilled.evaluated_tokens == len(prompt) - 1
    assert real_engine.cached_prefix_tokens(prompt) == len(prompt) - 1
    warm = real_engine.generate(prompt, PARAMS)
    assert warm.evaluated_prompt_tokens == 1
    assert warm.text == cold.text
    again = real_engine.prefill(prompt)
    assert again == type(again)(0, len(prompt) - 1, True)


def test_returning_to_a_prompt_restores_its_saved_state(real_engine):
    text = _module(12)
    first_prompt = _fim(real_engine, text, _cursor_line(text))
    other_text = _module(10, offset=50)
    other_prompt = _fim(real_engine, other_text, _cursor_line(other_text))
    real_engine.clear_cache()
    first = real_engine.generate(first_prompt, PARAMS)
    real_engine.generate(other_prompt, PARAMS)
    assert real_engine.cached_prefix_tokens(first_prompt) == len(first_prompt) - 1
    back = real_engine.generate(first_prompt, PARAMS)
    assert back.evaluated_prompt_tokens <= 3
    assert back.restored_prompt_tokens >= len(first_prompt) - 3
    assert back.text == first.text
    assert real_engine.cache_stats()["restores"] >= 1


@pytest.mark.timeout(1200)
def test_saved_states_stay_within_their_limit_and_the_least_recent_go(real_engine):
    prompts = [real_engine.tokenize(f"# part {n}\n" + "".join(
        f"value_{n}_{k} = {k} * {n}\n" for k in range(14))) for n in range(12)]
    real_engine.clear_cache()
    saves = real_engine.cache_stats()["saves"]
    real_engine.prefill(prompts[0])
    real_engine.prefill(prompts[1])
    one_state = real_engine.cache_stats()["bytes"]
    limit = int(3.5 * one_state)
    real_engine.set_state_cache_limit(limit)
    try:
        for prompt in prompts[2:]:
            real_engine.prefill(prompt)
            stats = real_engine.cache_stats()
            assert stats["bytes"] <= limit and stats["entries"] <= 3
        assert stats["saves"] - saves == len(prompts) - 1
        assert real_engine.cached_prefix_tokens(prompts[-2]) == len(prompts[-2]) - 1
        assert real_engine.cached_prefix_tokens(prompts[0]) < 5
    finally:
        real_engine.set_state_cache_limit(DEFAULT_STATE_CACHE_BYTES)


def test_clearing_the_cache_drops_saved_states(real_engine):
    real_engine.clear_cache()
    real_engine.prefill(real_engine.tokenize("alpha = 1\n" * 80))
    real_engine.prefill(real_engine.tokenize("beta = 2\n" * 80))
    assert real_engine.cache_stats()["entries"] == 1
    real_engine.clear_cache()
    assert real_engine.cache_stats()["entries"] == 0


def test_a_line_inserted_above_the_cursor_costs_only_that_line(real_engine):
    text = _module(12)
    line = _cursor_line(text)
    lines = text.split("\n")
    entered = "\n".join([*lines[:line], "    offset = 3", *lines[line:]])
    before, after = _fim(real_engine, text, line), _fim(real_engine, entered, line + 1)
    with _chunk_reuse(real_engine):
        real_engine.clear_cache()
        real_engine.generate(before, PARAMS)
        assert real_engine.cached_prefix_tokens(after) > len(after) - 20
        result = real_engine.generate(after, PARAMS)
    assert result.evaluated_prompt_tokens < 20
    assert result.shifted_prompt_tokens > 100
    # Prompt lookup reads the prompt back from llama-cpp-python's tokens: they are in order.
    assert real_engine.llama.input_ids[:len(after)].tolist() == after


def test_lines_dropped_from_the_window_top_shift_the_rest_left(real_engine):
    text = _module(12)
    line = _cursor_line(text)
    lines = text.split("\n")
    moved = "\n".join(lines[16:])
    before, after = _fim(real_engine, text, line), _fim(real_engine, moved, line - 16)
    with _chunk_reuse(real_engine):
        real_engine.clear_cache()
        real_engine.generate(before, PARAMS)
        result = real_engine.generate(after, PARAMS)
    assert result.evaluated_prompt_tokens < len(after) // 4
    assert real_engine.llama.input_ids[:len(after)].tolist() == after


def test_a_cancelled_prefill_stops_between_slices(real_engine):
    prompt = _fim(real_engine, _module(12), _cursor_line(_module(12)))
    real_engine.clear_cache()
    cancel = CancelToken()
    turns = []

    def turn() -> None:
        turns.append(1)
        if len(turns) == 3:
            cancel.cancel()

    slice_tokens = real_engine.prefill_slice_tokens
    result = real_engine.prefill(prompt, cancel=cancel, yield_turn=turn)
    assert not result.finished
    assert result.evaluated_tokens == 2 * slice_tokens
    assert real_engine.cached_prefix_tokens(prompt) == 2 * slice_tokens


def test_a_foreground_request_gets_the_engine_between_prefill_slices(real_engine):
    prompt = _fim(real_engine, _module(8), _cursor_line(_module(8)))
    foreground_prompt = real_engine.tokenize("def add(a, b):\n    return")
    real_engine.clear_cache()
    gate = _Gate()
    events: list[str] = []
    foreground: list = []

    def ask() -> None:
        with gate.foreground():
            foreground.append(real_engine.generate(foreground_prompt, PARAMS))
            events.append("answered")

    asker = threading.Thread(target=ask)

    def turn() -> None:
        events.append("slice")
        if events.count("slice") == 3:
            asker.start()
            while not gate.entered():
                pass
        gate.wait_turn()

    result = real_engine.prefill(prompt, yield_turn=turn)
    asker.join()
    assert result.finished
    assert "answered" in events and events.index("answered") < len(events) - 1
    assert foreground[0].generated_tokens > 0
    assert real_engine.generate(prompt, PARAMS).evaluated_prompt_tokens == 1


def test_a_blank_indented_line_gets_code_not_a_newline_first(real_engine):
    text = ("class Stack:\n    def __init__(self):\n        self.items = []\n        \n\n"
            "    def push(self, item):\n        self.items.append(item)\n")
    prompt = _fim(real_engine, text, 3, 8)
    real_engine.clear_cache()
    plain = real_engine.generate(prompt, GenerationParams(max_tokens=8))
    steered = real_engine.generate(prompt, GenerationParams(max_tokens=8,
                                                            first_token_not_newline=True))
    assert plain.text.startswith("\n")
    assert steered.text and not steered.text.startswith(("\n", "\r"))
