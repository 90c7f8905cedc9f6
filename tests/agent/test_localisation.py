"""Localisation and the checks around a fix: what the failing tests ran ranks the suspects, only
the best few are shown, a flaky failure is not fixed, a test file is never edited, and each
round says where its time went."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from agent.context import MAX_SUSPECTS_SHOWN, gather_context
from agent.runner import TestCommand, run_tests
from agent.solve import Budget, solve
from tests.fakes import ScriptedEngine

PYTEST = f"{sys.executable} -m pytest -q"
BUDGET = Budget(candidates_per_round=1, max_rounds=2, wall_time_s=60, test_timeout_s=30)
SHAPES = '''def circle_area(radius):
    return 3.14159 * radius * radius


def square_area(side):
    return side * side + 1


def area(kind, size):
    return {"square": square_area, "circle": circle_area}[kind](size)
'''
SHAPES_TESTS = '''from shapes import area


def test_square():
    assert area("square", 2) == 4
'''


@pytest.fixture(autouse=True)
def private_home_and_temp(isolated_home, tmp_path, monkeypatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))


def shapes_workspace(root: Path) -> Path:
    root.mkdir()
    (root / "shapes.py").write_text(SHAPES)
    (root / "test_shapes.py").write_text(SHAPES_TESTS)
    return root


def test_the_function_the_failing_test_ran_outranks_one_it_only_names(tmp_path):
    """`area` names both helpers; the trace says the test ran `square_area` only."""
    workspace = shapes_workspace(tmp_path / "ws")
    command = TestCommand.parse(PYTEST)
    run = run_tests(command, workspace)
    traced = run_tests(command, workspace, only=tuple(run.failing_ids), trace=True)
    assert {name for _, _, name in traced.covered["test_shapes.py::test_square"]} >= {
        "area", "square_area"}
    blind = [s.function.span.name for s in gather_context(workspace, run.failures, len).suspects]
    assert blind.index("circle_area") < blind.index("square_area")  # found in that order
    ranked = gather_context(workspace, run.failures, len, coverage=traced.covered).suspects
    names = [suspect.function.span.name for suspect in ranked]
    assert names.index("square_area") < names.index("circle_area")
    assert "not run by the failing tests" in ranked[names.index("circle_area")].reasons


def test_only_the_best_few_suspects_are_shown(tmp_path):
    helpers = "".join(f"def helper_{n}(x):\n    return x\n\n\n" for n in range(6))
    (tmp_path / "lib.py").write_text(helpers)
    calls = " + ".join(f"helper_{n}(1)" for n in range(6))
    (tmp_path / "test_lib.py").write_text(
        f"from lib import *\n\n\ndef test_sum():\n    assert {calls} == 7\n")
    run = run_tests(TestCommand.parse(PYTEST), tmp_path)
    context = gather_context(tmp_path, run.failures, len)
    assert len(context.suspects) == 6
    assert len(context.editable) == MAX_SUSPECTS_SHOWN


def test_the_packer_adds_a_constant_a_suspect_uses_from_its_module(tmp_path):
    (tmp_path / "pricing.py").write_text(
        "RATE = 0.2\n\n\ndef with_tax(amount):\n    return amount * (1 + RATE)\n")
    (tmp_path / "test_pricing.py").write_text(
        "from pricing import with_tax\n\n\ndef test_tax():\n    assert with_tax(100) == 125\n")
    run = run_tests(TestCommand.parse(PYTEST), tmp_path)
    context = gather_context(tmp_path, run.failures, len)
    assert [item.span.name for item in context.editable] == ["with_tax"]
    assert any("RATE = 0.2" in snippet.text for snippet in context.related)


def test_a_test_that_fails_then_passes_unchanged_is_reported_flaky_not_fixed(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "test_flaky.py").write_text(
        "from pathlib import Path\n\n\ndef test_sometimes():\n"
        "    marker = Path(__file__).with_name('ran-once')\n"
        "    first = not marker.exists()\n    marker.write_text('')\n    assert not first\n")
    engine = ScriptedEngine(["```python\ndef test_sometimes():\n    assert True\n```"])
    result = solve(workspace, PYTEST, BUDGET, engine=engine)
    assert result.status == "flaky"
    assert result.flaky == ("test_flaky.py::test_sometimes",)
    assert "flaky" in result.message and engine.prompts == [] and result.changes == ()


def test_a_reply_that_rewrites_the_failing_test_is_never_counted_as_a_fix(tmp_path):
    workspace = shapes_workspace(tmp_path / "ws")
    cheat = "```python\ndef test_square():\n    assert True\n```"
    result = solve(workspace, PYTEST, BUDGET, engine=ScriptedEngine([cheat, cheat]))
    assert result.status == "unsolved"
    assert result.changes == ()
    assert (workspace / "test_shapes.py").read_text() == SHAPES_TESTS


def test_each_round_records_where_its_time_went(tmp_path):
    workspace = shapes_workspace(tmp_path / "ws")
    fix = "```python\ndef square_area(side):\n    return side * side\n```"
    result = solve(workspace, PYTEST, BUDGET, engine=ScriptedEngine([fix]))
    assert result.status == "solved"
    assert [time.round for time in result.times] == [0, 1]
    first_runs, round_one = result.times
    assert first_runs.tests_ms > 0 and first_runs.generated_tokens == 0  # tests, traced rerun
    assert round_one.tests_ms > 0 and round_one.generated_tokens > 0
    assert round_one.prompt_tokens > 0
    assert result.to_json()["times"][1]["generatedTokens"] == round_one.generated_tokens


def test_the_next_round_finds_its_prompt_head_in_the_kv_cache(tmp_path):
    """The feedback goes after the code: round 2 evaluates only the feedback and what follows."""
    workspace = shapes_workspace(tmp_path / "ws")
    wrong = "```python\ndef square_area(side):\n    return side * side + 2\n```"
    fix = "```python\ndef square_area(side):\n    return side * side\n```"
    engine = ScriptedEngine([wrong, fix])
    result = solve(workspace, PYTEST, BUDGET, engine=engine)
    assert result.status == "solved" and result.rounds == 2
    first, second = (engine.detokenize(prompt) for prompt in engine.prompts)
    head = first[:first.index("\nFind the bug")]  # all but the closing instruction
    assert second.startswith(head) and "Your previous answer was tried" in second[len(head):]
    reused = result.times[2].prompt_tokens - result.times[2].evaluated_prompt_tokens
    assert reused >= len(head)


def test_a_reply_ends_at_the_fence_that_closes_its_code(tmp_path):
    """Nothing after the edit is generated: not the tests a small model likes to add."""
    workspace = shapes_workspace(tmp_path / "ws")
    fix = "```python\ndef square_area(side):\n    return side * side\n```"
    chatter = "\n\nAnd some tests:\n```python\n" + "def test_more():\n    pass\n" * 20 + "```\n"
    result = solve(workspace, PYTEST, BUDGET, engine=ScriptedEngine([fix + chatter]))
    assert result.status == "solved"
    assert result.times[1].generated_tokens <= len(fix)
