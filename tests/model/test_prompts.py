"""The FIM prompt: Qwen's layout token for token, and a head that stays put while typing."""

from __future__ import annotations

import pytest

from model.prompts import ContextChunk, fim_prompt_tokens, fim_request_at
from tests.fakes import ScriptedEngine

# Qwen2.5-Coder's ids; llama-cpp-python's `suffix=` path uses other ones, which is why we
# build the prompt ourselves.
QWEN_FIM_IDS = {
    "<|fim_prefix|>": 151659,
    "<|fim_middle|>": 151660,
    "<|fim_suffix|>": 151661,
    "<|fim_pad|>": 151662,
    "<|repo_name|>": 151663,
    "<|file_sep|>": 151664,
}

SOURCE = "import os\n\ndef greet(name):\n    return name.upper()\n\nprint(greet('x'))\n"


def test_fim_request_splits_at_the_cursor_line():
    request = fim_request_at(SOURCE, 3, 10, repo_name="demo", path="app.py")
    assert request.prefix == "import os\n\ndef greet(name):\n"
    assert request.line_prefix == "    return"
    assert request.suffix == " name.upper()\n\nprint(greet('x'))\n"


def test_trailing_blanks_before_the_cursor_are_held_back():
    request = fim_request_at("def f():\n    \n", 1, 4, repo_name="demo", path="f.py")
    assert request.line_prefix == ""
    assert request.held_back == "    "


def test_cursor_outside_the_file_is_refused():
    with pytest.raises(ValueError, match="line 9 is outside"):
        fim_request_at(SOURCE, 8, 0, repo_name="demo", path="app.py")
    with pytest.raises(ValueError, match="column 40 is outside"):
        fim_request_at(SOURCE, 0, 39, repo_name="demo", path="app.py")


def test_fim_layout_is_exact_token_for_token():
    engine = ScriptedEngine(["unused"])
    request = fim_request_at(SOURCE, 3, 10, repo_name="demo", path="app.py",
                             context=(ContextChunk("util.py", "X = 1"),))
    special = engine.special_token
    expected = (
        [special("<|repo_name|>"), *engine.tokenize("demo\n")]
        + [special("<|file_sep|>"), *engine.tokenize("util.py\nX = 1\n")]
        + [special("<|file_sep|>"), *engine.tokenize("app.py\n")]
        + [special("<|fim_prefix|>"), *engine.tokenize("import os\n\ndef greet(name):\n")]
        + [special("<|fim_suffix|>"), *engine.tokenize(" name.upper()\n\nprint(greet('x'))\n")]
        + [special("<|fim_middle|>"), *engine.tokenize("    return")]
    )
    assert fim_prompt_tokens(request, engine) == expected


@pytest.mark.model
def test_fim_layout_uses_qwens_special_token_ids(real_engine):
    request = fim_request_at(SOURCE, 3, 10, repo_name="demo", path="app.py",
                             context=(ContextChunk("util.py", "X = 1"),))
    tokens = fim_prompt_tokens(request, real_engine)
    ids = QWEN_FIM_IDS
    positions = [tokens.index(ids[name]) for name in
                 ("<|repo_name|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")]
    assert positions == sorted(positions)
    assert tokens[0] == ids["<|repo_name|>"]
    assert tokens.count(ids["<|file_sep|>"]) == 2
    assert real_engine.detokenize(tokens[tokens.index(ids["<|fim_middle|>"]) + 1:]) == (
        "    return")


@pytest.mark.model
def test_user_text_that_looks_like_a_special_token_stays_text(real_engine):
    sneaky = "x = '<|fim_middle|>'\n"
    request = fim_request_at(sneaky, 0, 0, repo_name="demo", path="s.py")
    tokens = fim_prompt_tokens(request, real_engine)
    assert tokens.count(QWEN_FIM_IDS["<|fim_middle|>"]) == 1


@pytest.mark.model
def test_typing_on_a_line_keeps_the_prompt_head(real_engine):
    before = SOURCE.replace("return name", "return nam")
    first = fim_prompt_tokens(fim_request_at(before, 3, 14, repo_name="d", path="a.py"),
                              real_engine)
    second = fim_prompt_tokens(fim_request_at(SOURCE, 3, 15, repo_name="d", path="a.py"),
                               real_engine)
    head = first.index(QWEN_FIM_IDS["<|fim_middle|>"]) + 1
    # Typing one character changes only what follows <|fim_middle|>, so the KV cache holds
    # everything before it.
    assert first[:head] == second[:head]
    assert len(second) - head <= len(first) - head + 1


def test_moving_down_a_line_in_a_long_file_keeps_the_prefix_start():
    long_text = "".join(f"value_{n} = {n}\n" for n in range(1000))
    starts = {fim_request_at(long_text, row, 0, repo_name="d", path="a.py").prefix.split("\n")[0]
              for row in range(600, 640)}
    assert starts == {"value_320 = 320"}
