"""Inline completion post-processing, with a scripted engine standing in for the model."""

from __future__ import annotations

from assist.completion import (
    FIRST_ANSWER_PROMPT_BUDGET_MS,
    CompletionSettings,
    complete_at,
    complete_in_workspace,
    warming_prompts,
    workspace_plan,
)
from assist.workspace import WorkspaceContext
from model.engine import GenerationParams
from model.prompts import fim_prompt_tokens
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


class _ColdEngine(ScriptedEngine):
    """Evaluates 1,000 prompt tokens (characters) a second, and its cache holds `cached`
    tokens of any prompt (all but the last when `cached` is None)."""

    prompt_tokens_per_second = 1000.0

    def __init__(self, reply: str, cached: int | None) -> None:
        super().__init__([reply])
        self.cached = cached
        self.params: list[GenerationParams] = []

    def cached_prefix_tokens(self, prompt) -> int:
        return len(prompt) - 1 if self.cached is None else min(self.cached, len(prompt))

    def generate(self, prompt, params, **options):
        self.params.append(params)
        return super().generate(prompt, params, **options)


LONG_FILE = "".join(f"value_{n} = {n}\n" for n in range(300)) + "def total(items):\n    \n"


def _complete_in(engine: _ColdEngine, tmp_path, text: str = LONG_FILE, line: int = 301,
                 character: int = 4):
    return complete_in_workspace(WorkspaceContext(home=tmp_path), engine, text, line,
                                 character, path=str(tmp_path / "a.py"), repo_name="demo",
                                 settings=CompletionSettings(), context_tokens=0,
                                 prompt_budget_ms=FIRST_ANSWER_PROMPT_BUDGET_MS)


def test_a_cold_prompt_is_answered_from_a_leaner_window_and_the_richer_ones_handed_back(
        tmp_path):
    engine = _ColdEngine("    return sum(items)\n", cached=0)
    completion = _complete_in(engine, tmp_path)
    assert completion.text == "return sum(items)"
    sent = engine.detokenize(engine.prompts[-1])
    assert "value_290 = 290" in sent and "value_250 = 250" not in sent
    # To warm leanest first, each a window richer than the last, the editor's own at the end.
    lengths = [len(prompt) for prompt in completion.warm_next]
    assert lengths == sorted(lengths) and len(lengths) >= 2
    assert "value_100 = 100" in engine.detokenize(completion.warm_next[-1])
    assert "value_100 = 100" not in engine.detokenize(completion.warm_next[0])
    assert len(engine.prompts[-1]) / engine.prompt_tokens_per_second * 1000 \
        <= FIRST_ANSWER_PROMPT_BUDGET_MS


def test_a_prompt_the_cache_holds_is_answered_from_the_full_window(tmp_path):
    engine = _ColdEngine("    return sum(items)\n", cached=None)
    completion = _complete_in(engine, tmp_path)
    assert "value_100 = 100" in engine.detokenize(engine.prompts[-1])
    assert completion.warm_next == ()


def test_the_first_token_may_not_be_a_newline_at_an_indented_blank_line(tmp_path):
    engine = _ColdEngine("    return sum(items)\n", cached=None)
    _complete_in(engine, tmp_path)
    assert engine.params[-1].first_token_not_newline


def test_the_first_token_may_be_a_newline_after_code_on_the_line(tmp_path):
    engine = _ColdEngine("\n", cached=None)
    _complete_in(engine, tmp_path, text="x = compute(", line=0, character=12)
    assert not engine.params[-1].first_token_not_newline


def test_a_region_is_warmed_leanest_window_first_and_the_editors_own_last(tmp_path):
    engine = ScriptedEngine(["unused"])
    workspace = WorkspaceContext(home=tmp_path)
    prompts = warming_prompts(workspace, engine, LONG_FILE, 301, 4,
                              path=str(tmp_path / "a.py"), repo_name="demo",
                              settings=CompletionSettings(), context_tokens=0)
    lengths = [len(prompt) for prompt in prompts]
    assert lengths == sorted(lengths) and len(set(lengths)) == len(prompts)
    editors_own = workspace_plan(workspace, engine, LONG_FILE, 301, 4,
                                 path=str(tmp_path / "a.py"), repo_name="demo",
                                 settings=CompletionSettings(), context_tokens=0)
    assert prompts[-1] == fim_prompt_tokens(editors_own.request, engine)
