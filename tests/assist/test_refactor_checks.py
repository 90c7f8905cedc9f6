"""Checked refactor: a rewrite is offered only once its callers, the workspace's linters and its
tests (in a scratch copy) accept it; scripted model replies, real tests and linters."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest

from analyzers.index import WorkspaceIndex
from assist.actions import ActionError, Run, refactor
from assist.checks import RefactorChecks
from model.engine import CancelToken
from tests.conftest import REPO_ROOT
from tests.fakes import ScriptedEngine

PRICES = ("def discounted(price: int, percent: int) -> int:\n"
          "    return price - price * percent // 100\n")
TESTS = ("from prices import discounted\n\n\ndef test_half():\n"
         "    assert discounted(200, percent=25) == 150\n")
KEEPS = ("```python\ndef discounted(price: int, percent: int) -> int:\n"
         "    off = price * percent // 100\n    return price - off\n```")
BREAKS = ("```python\ndef discounted(price: int, percent: int) -> int:\n"
          "    return price * percent // 100\n```")
TEST_COMMAND = f"{sys.executable} -m pytest -q -p no:cacheprovider"
TYPESCRIPT = REPO_ROOT / "node_modules" / "typescript"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "prices.py").write_text(PRICES)
    (tmp_path / "test_prices.py").write_text(TESTS)
    return tmp_path


def _refactor(root: Path, replies: list[str], instruction: str = "", **options):
    engine = ScriptedEngine(replies)
    index = WorkspaceIndex(root)
    index.refresh()
    checks = RefactorChecks(root, "prices.py", index, **options)
    text = (root / "prices.py").read_text()
    return refactor(Run(engine), text, "python", 1, 4, instruction, checks=checks), engine


def test_a_rewrite_that_fails_the_tests_is_replaced_by_one_that_passes(shop):
    result, engine = _refactor(shop, [BREAKS, KEEPS], test_command=TEST_COMMAND)
    assert "off = price * percent // 100" in result.new_document
    assert result.candidates == 2
    assert [(check.name, check.passed) for check in result.checks] == [
        ("parses", True), ("signature", True), ("callers", True), ("names", True),
        ("tests", True)]
    assert "tests: `" in engine.detokenize(engine.prompts[1])
    assert (shop / "prices.py").read_text() == PRICES  # the tests ran in a copy


def test_a_refactor_is_refused_when_every_candidate_fails_the_tests(shop):
    with pytest.raises(ActionError, match=r"no rewrite passed the checks in 3 candidates; the "
                                          r"last failed tests: .* fails after the rewrite and "
                                          r"passed before: .*test_half"):
        _refactor(shop, [BREAKS], test_command=TEST_COMMAND)
    assert (shop / "prices.py").read_text() == PRICES


def test_tests_that_failed_before_the_rewrite_do_not_refuse_it(shop):
    (shop / "test_prices.py").write_text(TESTS + "\n\ndef test_broken():\n    assert False\n")
    result, _ = _refactor(shop, [KEEPS], test_command=TEST_COMMAND)
    assert result.checks[-1].passed and "failed before the rewrite too" in result.checks[-1].detail


def test_without_a_test_command_the_tests_are_not_run(shop):
    result, _ = _refactor(shop, [BREAKS])
    assert [check.name for check in result.checks] == ["parses", "signature", "callers",
                                                       "names"]


def test_a_renamed_parameter_that_a_keyword_call_uses_fails_the_callers_check(shop):
    renamed = ("```python\ndef discounted(price: int, share: int) -> int:\n"
               "    return price - price * share // 100\n```")
    with pytest.raises(ActionError, match=r"callers: 1 of 1 call\(s\) no longer fit: "
                                          r"test_prices.py:5 `discounted\(200, percent=25\)`"):
        _refactor(shop, [renamed], instruction="rename the parameter percent to share")


def test_rename_variables_does_not_let_the_function_be_renamed(shop):
    """"rename variables to be clearer" asks nothing of the function's name: the 1.5B renamed
    HumanEval's prime_fib on it, and the tests then failed with a NameError."""
    renamed = ("```python\ndef apply_discount(price: int, percent: int) -> int:\n"
               "    return price - price * percent // 100\n```")
    result, engine = _refactor(shop, [renamed, KEEPS],
                               instruction="rename variables to be clearer")
    assert "no function named discounted" in engine.detokenize(engine.prompts[1])
    assert "Keep the name `discounted`." in engine.detokenize(engine.prompts[0])
    assert "def discounted(price: int, percent: int) -> int:" in result.new_document


def test_a_function_renamed_as_asked_fails_while_calls_use_the_old_name(shop):
    renamed = ("```python\ndef discount_of(price: int, percent: int) -> int:\n"
               "    return price - price * percent // 100\n```")
    with pytest.raises(ActionError, match=r"callers: renamed to `discount_of`, but 1 call\(s\) "
                                          r"still use `discounted`: test_prices.py:5"):
        _refactor(shop, [renamed], instruction="rename the function to discount_of")


def test_a_rewrite_that_drops_the_import_it_uses_fails_without_any_test_command(tmp_path):
    """The 1.5B's 'add type hints' on HumanEval/39 dropped the function's own `import math`."""
    (tmp_path / "prices.py").write_text("def root(x: float) -> float:\n    import math\n\n"
                                        "    return math.sqrt(x)\n")
    dropped = "```python\ndef root(x: float) -> float:\n    return sqrt(x)\n```"
    kept = "```python\ndef root(x: float) -> float:\n    from math import sqrt\n" \
           "    return sqrt(x)\n```"
    result, engine = _refactor(tmp_path, [dropped, kept])
    assert "names: uses `sqrt`, defined nowhere in prices.py" in engine.detokenize(
        engine.prompts[1])
    assert ("names", True, "no undefined name") in [
        (check.name, check.passed, check.detail) for check in result.checks]
    assert "from math import sqrt" in result.new_document


def test_a_new_ruff_problem_fails_when_the_workspace_uses_ruff(shop):
    (shop / "ruff.toml").write_text("[lint]\nselect = ['F']\n")
    unused = ("```python\ndef discounted(price: int, percent: int) -> int:\n"
              "    unused = 3\n    return price - price * percent // 100\n```")
    with pytest.raises(ActionError, match="ruff: new: F841"):
        _refactor(shop, [unused])
    result, _ = _refactor(shop, [KEEPS])
    assert ("ruff", True, "nothing new") in [(c.name, c.passed, c.detail) for c in result.checks]


def test_refactor_of_broken_code_is_refused_with_the_parse_error(tmp_path):
    text = "def total(values):\n    return sum(values +\n\n\nx = 1\n"
    with pytest.raises(ActionError, match=r"`total` does not parse \(line 2: return sum\(values "
                                          r"\+\): fix the syntax error first"):
        refactor(Run(ScriptedEngine([KEEPS])), text, "python", 1, 4)


def test_a_refactor_cancelled_while_the_tests_run_changes_nothing(shop):
    (shop / "test_prices.py").write_text(TESTS + "\n\ndef test_slow():\n"
                                         "    import time\n    time.sleep(30)\n")
    cancel = CancelToken()
    threading.Timer(3.0, cancel.cancel).start()
    engine = ScriptedEngine([KEEPS])
    checks = RefactorChecks(shop, "prices.py", test_command=TEST_COMMAND, cancel=cancel)
    with pytest.raises(ActionError, match="cancelled"):
        refactor(Run(engine, cancel), PRICES, "python", 1, 4, checks=checks)
    assert (shop / "prices.py").read_text() == PRICES
    assert checks._sandbox is None  # the copy is gone


@pytest.mark.skipif(not TYPESCRIPT.is_dir(), reason="needs the repository's npm install")
def test_a_new_type_error_fails_when_the_workspace_has_tsc(tmp_path):
    (tmp_path / "tsconfig.json").write_text('{"compilerOptions": {"strict": true}, '
                                            '"files": ["twice.ts"]}')
    # A node_modules as npm lays it out: the copy shares it, and sees nothing outside it.
    shutil.copytree(TYPESCRIPT, tmp_path / "node_modules" / "typescript")
    text = "export function twice(n: number): number {\n  return n * 2;\n}\n"
    (tmp_path / "twice.ts").write_text(text)
    wrong = "```ts\nfunction twice(n: number): number {\n  return `${n}${n}`;\n}\n```"
    checks = RefactorChecks(tmp_path, "twice.ts", workspace_programs=True)
    with pytest.raises(ActionError, match="tsc: new: TS2322: Type 'string' is not assignable"):
        refactor(Run(ScriptedEngine([wrong])), text, "typescript", 1, 2, checks=checks)
    right = "```ts\nfunction twice(n: number): number {\n  return n + n;\n}\n```"
    checks = RefactorChecks(tmp_path, "twice.ts", workspace_programs=True)
    result = refactor(Run(ScriptedEngine([right])), text, "typescript", 1, 2, checks=checks)
    assert ("tsc", True) in [(check.name, check.passed) for check in result.checks]


def test_tests_that_fail_without_naming_a_test_refuse_the_rewrite(shop):
    missing = f"{sys.executable} -c \"raise SystemExit(3)\""
    with pytest.raises(ActionError, match=r"fails \(exit code 3\) without naming the failing "
                                          r"tests, before the rewrite too"):
        _refactor(shop, [KEEPS], test_command=missing)
