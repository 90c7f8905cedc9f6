"""Inline completion post-processing, with a scripted engine standing in for the model."""

from __future__ import annotations

from assist.completion import CompletionSettings, complete_at
from tests.fakes import ScriptedEngine

FUNCTION_START = "def total(items):\n    \n\nprint(total([1, 2]))\n"


def _complete(reply: str, text: str, line: int, character: int, path: str = "a.py",
              **settings) -> str:
    engine = ScriptedEngine([reply])
    settings.setdefault("max_tokens", 400)
    return complete_at(engine, text, line, character, path=path, repo_name="demo",
                       settings=CompletionSettings(**settings)).text


def test_completion_stops_at_dedent():
    reply = "    result = 0\n    for item in items:\n        result += item\n    return result\n" \
            "\nprint('other stuff')\n"
    assert _complete(reply, FUNCTION_START, 1, 4) == (
        "result = 0\n    for item in items:\n        result += item\n    return result")


def test_completion_stops_at_a_gap_of_blank_lines():
    reply = "    return sum(items)\n\n\n    # stray\n"
    assert _complete(reply, FUNCTION_START, 1, 4) == "return sum(items)"


def test_completion_drops_lines_that_repeat_the_suffix():
    text = "def total(items):\n    \n    return result\n"
    reply = "    result = sum(items)\n    return result\n"
    assert _complete(reply, text, 1, 4) == "result = sum(items)"


def test_completion_does_not_repeat_closing_characters_after_the_cursor():
    text = "print(greet())\n"
    assert _complete("'world'))\n", text, 0, 12) == "'world'"


def test_cursor_inside_a_line_gets_a_single_line():
    text = "value = compute() + other\n"
    assert _complete("1, 2\nmore = 3\n", text, 0, 16) == "1, 2"


def test_completion_with_other_indentation_than_typed_is_dropped():
    assert _complete("  return 1\n", FUNCTION_START, 1, 4) == ""


def test_cut_off_completion_keeps_whole_lines_and_no_dangling_block():
    reply = "    if items:\n        return 1\n    else:\n        return 2\n"
    # 40 characters are 40 tokens for the scripted engine: cut inside `return 2`.
    assert _complete(reply, FUNCTION_START, 1, 4, max_tokens=40) == (
        "if items:\n        return 1")


def test_completion_that_breaks_the_parse_is_trimmed():
    text = "x = 1\n\ny = 2\n"
    assert _complete("z = (1 +\n", text, 1, 0) == ""


def test_completion_that_parses_is_kept_whole():
    text = "function add(a, b) {\n  \n}\n"
    assert _complete("  return a + b;\n}\n", text, 1, 2, path="add.js") == "return a + b;"


def test_empty_reply_shows_nothing():
    assert _complete("\n", FUNCTION_START, 1, 4) == ""


def test_completion_in_the_middle_of_a_statement_is_its_rest_only():
    text = "def f(items):\n    total = \n"
    assert _complete(" sum(items)\n    return total\n", text, 1, 12) == "sum(items)"


def test_completion_after_a_block_opener_may_span_lines():
    text = "def f(items):\n    for item in items:\n"
    reply = "\n        print(item)\n        count += 1\n"
    assert _complete(reply, text, 1, 22) == "\n        print(item)\n        count += 1"


def test_completion_on_an_empty_line_stops_below_the_code_that_follows():
    text = "def f(x):\n    if x:\n\n    return x\n"
    assert _complete("        x += 1\nprint(x)\n", text, 2, 0) == "        x += 1"


def test_completion_at_the_start_of_a_line_of_code_inserts_a_line_above_it():
    text = "def f(items):\n    return total\n"
    assert _complete("    total = sum(items)\n    more\n", text, 1, 0) == (
        "    total = sum(items)\n")


def test_a_line_above_code_keeps_its_newline_when_it_arrives_as_a_blank_line_token():
    text = "def f(items):\n    return total\n"
    reply = ("    total", " = sum(items)", "\n\n", "    more")
    assert _complete(reply, text, 1, 0) == "    total = sum(items)\n"
