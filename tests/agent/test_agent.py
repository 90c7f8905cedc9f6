"""The agent's loop with a scripted engine, its sandbox and test runner, and one real-model run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from agent.context import FailureContext, ShownFunction
from agent.proposals import ProposalError, parse_proposal
from agent.runner import Limits, TestCommand, TestCommandError, run_tests
from agent.sandbox import Sandbox
from agent.solve import Budget, solve
from analyzers.functions import functions
from cli.main import main
from model.engine import CancelToken
from tests.conftest import REPO_ROOT, small_model_path
from tests.fakes import ScriptedEngine
from training.accepted import load_accepted

PYTEST = f"{sys.executable} -m pytest -q"
SCALE = '''def scale(x, factor):
    return x * factor


def half(x):
    return scale(x, 2)
'''
SCALE_TESTS = '''from scale import half, scale


def test_scale_multiplies():
    assert scale(3, 2) == 6


def test_half_divides_by_two():
    assert half(4) == 2
'''
WRONG = "```python\ndef half(x):\n    return x * 3\n```"
RIGHT = "The bug is the operator:\n```python\ndef half(x):\n    return x / 2\n```"
REGRESSION = "```python\ndef scale(x, factor):\n    return x / factor\n```"
ONE_ROUND = Budget(candidates_per_round=1, max_rounds=3, wall_time_s=60, test_timeout_s=30)


@pytest.fixture(autouse=True)
def private_home_and_temp(isolated_home, tmp_path, monkeypatch) -> Path:
    """Transcripts go to a private home; scratch copies to a private temporary folder."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


def scale_workspace(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "scale.py").write_text(SCALE)
    (root / "test_scale.py").write_text(SCALE_TESTS)
    return root


def tree_hash(root: Path) -> str:
    """Every path, its bytes and its mtime: any write to the workspace changes it."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
            digest.update(str(path.stat().st_mtime_ns).encode())
    return digest.hexdigest()


def editable_function(path: str, source: str) -> FailureContext:
    """What the model is shown when `source`'s first function is the one to fix."""
    return FailureContext((), (ShownFunction(path, functions(source, "python")[0], True),), {})


def transcript_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def transcript_kinds(path: Path) -> list[tuple[str, str]]:
    return [(record["kind"], record.get("verdict", "")) for record in transcript_records(path)]


# ---------------------------------------------------------------- the loop


def test_a_wrong_proposal_is_reverted_and_the_right_one_kept(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    progress: list[str] = []
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([WRONG, RIGHT]),
                   on_progress=progress.append)
    assert result.status == "solved"
    assert result.rounds == 2
    assert "-    return scale(x, 2)\n+    return x / 2\n" in result.diff
    assert "x * 3" not in result.diff
    (change,) = result.changes
    assert change.path == "scale.py"
    assert change.new_text == SCALE.replace("scale(x, 2)", "x / 2")
    assert "round 2: 1 → 0 failing" in progress
    assert ("proposal", "reverted") in transcript_kinds(result.transcript)
    assert ("proposal", "kept") in transcript_kinds(result.transcript)


def test_a_change_that_breaks_a_passing_test_is_refused(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    engine = ScriptedEngine([REGRESSION, RIGHT])
    result = solve(workspace, PYTEST, ONE_ROUND, engine=engine)
    assert result.status == "solved"
    assert "x / factor" not in result.diff
    second_prompt = engine.detokenize(engine.prompts[1])
    assert "made tests fail that passed before" in second_prompt
    assert "test_scale_multiplies" in second_prompt


def test_the_prompt_shows_the_failure_the_test_and_the_function_it_calls(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    engine = ScriptedEngine([RIGHT])
    solve(workspace, PYTEST, ONE_ROUND, engine=engine)
    prompt = engine.detokenize(engine.prompts[0])
    assert "test_scale.py::test_half_divides_by_two" in prompt
    assert "assert 8 == 2" in prompt
    assert "def test_half_divides_by_two" in prompt
    assert "def half(x):\n    return scale(x, 2)" in prompt
    assert "def scale(x, factor):" in prompt


def test_the_prompt_shows_a_parametrized_tests_inputs_and_whole_values(tmp_path):
    # The id `test_sorts[data1]` hides the data; pytest cuts long lists at "..." by default.
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "sorting.py").write_text("def sort(items):\n    return list(items)\n")
    (workspace / "test_sorting.py").write_text(
        "import pytest\nfrom sorting import sort\n\n\n"
        "@pytest.mark.parametrize('data', [[1], list(range(12, 0, -1))])\n"
        "def test_sorts(data):\n    assert sort(data) == sorted(data)\n")
    engine = ScriptedEngine(["```python\ndef sort(items):\n    return sorted(items)\n```"])
    result = solve(workspace, PYTEST, ONE_ROUND, engine=engine)
    assert result.status == "solved"
    prompt = engine.detokenize(engine.prompts[0])
    assert "test_sorting.py::test_sorts[data1]\n    with data = [12, 11, 10, 9, 8," in prompt
    assert "assert [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1] == [1, 2, 3," in prompt
    assert "Full diff" not in prompt


def test_a_recursion_that_fails_is_shown_as_its_project_frames_with_their_lines(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "kth.py").write_text(
        "def kth(arr, k):\n    pivot = arr[0]\n    above = [x for x in arr if x > pivot]\n"
        "    if k > 0:\n        return kth(above, k)\n    return pivot\n")
    (workspace / "test_kth.py").write_text(
        "from kth import kth\n\n\ndef test_kth():\n    assert kth([1, 2, 3], 2) == 3\n")
    run = run_tests(TestCommand.parse(PYTEST), workspace, limits=Limits(timeout_s=60))
    (failure,) = run.failures
    assert ("Traceback (most recent call last):\n"
            "  test_kth.py:5 in test_kth: assert kth([1, 2, 3], 2) == 3\n"
            "  kth.py:5 in kth, 3 times: return kth(above, k)\n"
            "  kth.py:2 in kth: pivot = arr[0]\n"
            "IndexError: list index out of range") in failure.message
    assert "site-packages" not in failure.message


@pytest.mark.parametrize("reply", [
    # The fix in its code block.
    "return scale(x, 2)` multiplies instead of dividing.\n\n"
    "```python\ndef half(x):\n    return x / 2\n```",
    # The fix said in words, then the function copied out unchanged (the 1.5B often does).
    "return scale(x, 2)`. It should be `return x / 2`.\n\n"
    "```python\ndef half(x):\n    return scale(x, 2)\n```",
], ids=["in-code", "in-words"])
def test_a_candidate_that_names_the_wrong_line_first_is_applied(tmp_path, reply):
    workspace = scale_workspace(tmp_path / "ws")
    engine = ScriptedEngine([WRONG, reply])
    result = solve(workspace, PYTEST, Budget(candidates_per_round=2, max_rounds=1),
                   engine=engine)
    assert result.status == "solved"
    assert engine.detokenize(engine.prompts[1]).endswith("The wrong line is `")
    assert "-    return scale(x, 2)\n+    return x / 2\n" in result.diff


def test_a_stated_fix_replaces_a_part_of_a_line_or_a_run_of_lines(tmp_path):
    source = ("def area(w, h):\n    \"\"\"Area.\"\"\"\n    if w < 0:\n        return 0\n"
              "    total = w * (\n        h + 1\n    )\n    return total\n")
    context = editable_function("area.py", source)
    part = parse_proposal("The wrong line is `w < 0`; it should be `w <= 0`.", context)
    assert part.replacements[0].new_text == source.replace("w < 0", "w <= 0").rstrip()
    run = parse_proposal("The wrong line is `total = w * (h + 1)`. The correct line is:\n"
                         "```python\ntotal = w * (\n    h\n)\n```", context)
    assert run.replacements[0].new_text == source.replace(
        "        h + 1\n", "        h\n").rstrip()


@pytest.mark.parametrize(("wrong", "right", "fixed"), [
    ("return total / count", "total / (count - 1)", "return total / (count - 1)"),
    ("mean = total / count", "total / (count - 1)", "mean = total / (count - 1)"),
    ("return total / count", "return total / (count - 1)", "return total / (count - 1)"),
], ids=["return", "assignment", "whole-statement"])
def test_a_stated_correction_of_the_expression_alone_keeps_the_statement(wrong, right, fixed):
    # The 1.5B says "the wrong line is `return a / b`; it should be `a / (b - 1)`": taking the
    # expression for the whole line dropped the return and the function returned None.
    source = ("def mean(values):\n    total = sum(values)\n    count = len(values)\n"
              f"    {wrong}\n")
    if wrong.startswith("mean ="):
        source += "    return mean\n"
    proposal = parse_proposal(f"The wrong line is `{wrong}`. It should be `{right}`.",
                              editable_function("mean.py", source))
    assert proposal.replacements[0].new_text == source.replace(wrong, fixed).rstrip()


def test_a_stated_java_correction_keeps_the_return_and_the_semicolon():
    source = ("class Stats {\n    static int mean(int total, int count) {\n"
              "        return total / count;\n    }\n}\n")
    method = next(span for span in functions(source, "java") if span.name == "mean")
    context = FailureContext((), (ShownFunction("Stats.java", method, True),), {})
    proposal = parse_proposal("The wrong line is `return total / count;`. It should be "
                              "`total / (count - 1)`.", context)
    assert "    return total / (count - 1);\n}" in proposal.replacements[0].new_text


def test_a_named_line_without_a_resembling_correction_is_not_applied(tmp_path):
    source = "def kth(arr, k):\n    pivot = arr[0]\n    return kth(arr[1:], k)\n"
    context = editable_function("kth.py", source)
    with pytest.raises(ProposalError):
        parse_proposal("The wrong line is `return kth(arr[1:], k)`. When `k` is large, "
                       "the correct `pivot` is missing.", context)


def test_a_reply_that_changes_nothing_is_drawn_again_within_the_round(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    unchanged = "```python\ndef half(x):\n    return scale(x, 2)\n```"
    engine = ScriptedEngine([unchanged, WRONG, WRONG, RIGHT])
    result = solve(workspace, PYTEST, Budget(candidates_per_round=2, max_rounds=1),
                   engine=engine)
    # Two changes were tested (x * 3, x / 2); the unchanged and repeated replies did not count.
    assert result.status == "solved"
    assert len(engine.prompts) == 4


def test_after_a_wasted_reply_the_feedback_is_still_the_last_test_result(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    engine = ScriptedEngine([WRONG])
    solve(workspace, PYTEST, Budget(candidates_per_round=2, max_rounds=2), engine=engine)
    second_round = engine.detokenize(engine.prompts[4])  # after one test and three repeats
    assert "x * 3" in second_round and "the same tests still fail" in second_round


def test_the_transcript_says_why_each_unusable_reply_was_refused(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    engine = ScriptedEngine([WRONG, "I think the tests are wrong."])
    result = solve(workspace, PYTEST, Budget(candidates_per_round=2, max_rounds=1),
                   engine=engine)
    unusable = [record for record in transcript_records(result.transcript)
                if record.get("verdict") == "unusable"]
    assert unusable and all("held no function" in record["reason"] for record in unusable)


def test_unusable_replies_leave_the_workspace_failing_and_say_so(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    result = solve(workspace, PYTEST, Budget(candidates_per_round=2, max_rounds=2),
                   engine=ScriptedEngine(["I think the tests are wrong."]))
    assert result.status == "unsolved"
    assert result.rounds == 2
    assert result.diff == "" and result.changes == ()
    assert result.failing_after == 1


def test_green_tests_need_no_model(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    (workspace / "scale.py").write_text(SCALE.replace("scale(x, 2)", "x / 2"))
    engine = ScriptedEngine([WRONG])
    result = solve(workspace, PYTEST, ONE_ROUND, engine=engine)
    assert result.status == "already-passing"
    assert engine.prompts == []


def test_a_plain_command_is_judged_by_its_exit_status_and_traceback(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "main.py").write_text("def add(a, b):\n    return a - b\n")
    (workspace / "test.py").write_text(
        "from main import add\n\n\ndef check(add):\n    assert add(2, 3) == 5\n\n\ncheck(add)\n")
    engine = ScriptedEngine(["```python\ndef add(a, b):\n    return a + b\n```"])
    result = solve(workspace, f"{sys.executable} test.py", ONE_ROUND, engine=engine)
    assert result.status == "solved"
    prompt = engine.detokenize(engine.prompts[0])
    assert "AssertionError" in prompt and "def add(a, b):\n    return a - b" in prompt


def test_a_rewrite_without_the_docstring_keeps_the_original_one(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    (workspace / "scale.py").write_text(SCALE.replace(
        "def half(x):\n", 'def half(x):\n    """Half of x."""\n'))
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([RIGHT]))
    assert result.changes[0].new_text.endswith(
        'def half(x):\n    """Half of x."""\n    return x / 2\n')


def test_failures_in_classes_and_parametrized_tests_get_pytest_node_ids(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_cases.py").write_text(
        "import pytest\n\n\nclass TestGroup:\n    def test_inner(self):\n        assert 1 == 2\n"
        "\n\n@pytest.mark.parametrize('n', [1, 2])\ndef test_even(n):\n    assert n % 2 == 0\n")
    run = run_tests(TestCommand.parse(PYTEST), tmp_path, limits=Limits(timeout_s=60))
    assert run.failing_ids == {"tests/test_cases.py::TestGroup::test_inner",
                               "tests/test_cases.py::test_even[1]"}
    inner = next(failure for failure in run.failures if "inner" in failure.test_id)
    assert "assert 1 == 2" in inner.message
    assert inner.frames[-1].function == "test_inner"


# ---------------------------------------------------------------- safety


def test_the_scratch_copy_never_leaks_into_the_workspace(tmp_path, private_home_and_temp):
    workspace = scale_workspace(tmp_path / "ws")
    before = tree_hash(workspace)
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([WRONG, RIGHT]))
    assert result.status == "solved"
    assert tree_hash(workspace) == before
    assert not list(private_home_and_temp.glob("smallcoder-agent-*"))


def test_cancel_stops_the_loop_at_once_and_changes_nothing(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    before = tree_hash(workspace)
    cancel = CancelToken()
    slow = ScriptedEngine([RIGHT * 20], seconds_per_token=0.02)
    timer = threading.Timer(1.5, cancel.cancel)
    timer.start()
    started = time.monotonic()
    result = solve(workspace, PYTEST, ONE_ROUND, engine=slow, cancel=cancel)
    assert result.status == "cancelled"
    assert time.monotonic() - started < 1.5 + 2
    assert result.changes == ()
    assert tree_hash(workspace) == before


def test_a_hanging_test_command_is_a_failure_and_its_processes_are_killed(tmp_path):
    # The child is found by its arguments: under bubblewrap the command sees pids of its own.
    marker = f"{time.time() % 1000 + 100:.6f}"
    script = tmp_path / "hang.py"
    script.write_text("import subprocess, time\n"
                      f"child = subprocess.Popen(['sleep', '{marker}'])\n"
                      "time.sleep(60)\n")
    started = time.monotonic()
    run = run_tests(TestCommand.parse(f"{sys.executable} {script}"), tmp_path,
                    limits=Limits(timeout_s=1.5))
    assert time.monotonic() - started < 6
    assert run.timed_out and not run.passed
    assert "timed out" in run.failures[0].message
    deadline = time.monotonic() + 2
    while any(process.info["cmdline"] == ["sleep", marker] and
              process.status() != psutil.STATUS_ZOMBIE
              for process in psutil.process_iter(["cmdline"])):
        assert time.monotonic() < deadline, "the test command's child process survived"
        time.sleep(0.05)


COUNTDOWN = '''def countdown(n):
    while n != 0:
        n -= 2
    return "done"
'''
COUNTDOWN_TESTS = "from countdown import countdown\n\n\n" + "".join(
    f"def test_odd_{n}():\n    assert countdown({n}) == 'done'\n\n\n" for n in (3, 5, 7, 9, 11))
COUNTDOWN_FIX = ("```python\ndef countdown(n):\n    while n > 0:\n        n -= 2\n"
                 "    return 'done'\n```")


def test_a_suite_that_outlives_its_timeout_is_solved_from_the_test_that_hangs(tmp_path):
    # Each test hangs until pytest-timeout stops it after 5 s; the whole run is killed at 15 s,
    # before pytest writes any report (five hangs take 25 s), so only a run that stops at the
    # first failure says where. The margins leave a loaded machine 10 s to start pytest.
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "countdown.py").write_text(COUNTDOWN)
    (workspace / "test_countdown.py").write_text(COUNTDOWN_TESTS)
    engine = ScriptedEngine([COUNTDOWN_FIX])
    result = solve(workspace, f"{PYTEST} --timeout 5", replace(ONE_ROUND, test_timeout_s=15),
                   engine=engine)
    assert result.status == "solved", result.message
    assert "countdown" in engine.detokenize(engine.prompts[0])
    assert (workspace / "countdown.py").read_text() == COUNTDOWN


def test_cancel_kills_a_running_test_command(tmp_path):
    cancel = CancelToken()
    threading.Timer(0.5, cancel.cancel).start()
    started = time.monotonic()
    run = run_tests(TestCommand.parse(f"{sys.executable} -c 'import time; time.sleep(60)'"),
                    tmp_path, cancel=cancel)
    assert run.cancelled
    # Killed, not waited for: the command would sleep 60 s (the bound leaves a loaded machine
    # room to start Python and deliver the signals).
    assert time.monotonic() - started < 20


def test_a_test_command_that_does_not_exist_is_a_clear_error(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    with pytest.raises(TestCommandError, match="'no-such-runner' was not found"):
        solve(workspace, "no-such-runner -q", ONE_ROUND, engine=ScriptedEngine([RIGHT]))


def test_the_test_command_is_never_run_by_a_shell(tmp_path):
    command = TestCommand.parse("pytest -q 'tests/a b.py'; rm -rf /")
    assert command.argv == ("pytest", "-q", "tests/a b.py;", "rm", "-rf", "/")
    with pytest.raises(TestCommandError, match="empty"):
        TestCommand.parse("   ")


# ---------------------------------------------------------------- the scratch copy


def test_a_workspace_outside_git_is_copied_without_caches_and_venvs(tmp_path):
    workspace = scale_workspace(tmp_path / "plain")
    (workspace / "__pycache__").mkdir()
    (workspace / "__pycache__" / "scale.cpython-311.pyc").write_bytes(b"\0")
    (workspace / ".venv").mkdir()
    (workspace / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with Sandbox(workspace) as sandbox:
        copied = sorted(path.relative_to(sandbox.root).as_posix()
                        for path in sandbox.root.rglob("*") if not path.is_symlink())
        assert copied == ["scale.py", "test_scale.py"]
        assert not (sandbox.root / ".venv").exists()
        assert sandbox.shared_folders == {".venv": workspace.resolve() / ".venv"}
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([RIGHT]))
    assert result.status == "solved"


def test_a_git_workspace_copies_tracked_and_untracked_files_but_not_ignored_ones(tmp_path):
    workspace = scale_workspace(tmp_path / "repo")
    (workspace / ".gitignore").write_text("build/\n.venv/\n")
    (workspace / "build").mkdir()
    (workspace / "build" / "big.bin").write_bytes(b"\0" * 1000)
    (workspace / ".venv").mkdir()
    (workspace / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=workspace, check=True)
    subprocess.run([*git, "add", "scale.py", ".gitignore"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=workspace, check=True)
    with Sandbox(workspace) as sandbox:
        copied = sorted(path.relative_to(sandbox.root).as_posix()
                        for path in sandbox.root.rglob("*") if not path.is_symlink())
        assert copied == [".gitignore", "scale.py", "test_scale.py"]
        assert sandbox.shared_folders == {".venv": workspace.resolve() / ".venv"}


# ---------------------------------------------------------------- the real model


@pytest.mark.model
def test_the_real_model_runs_the_loop_on_a_one_line_bug(real_engine, tmp_path):
    """The 0.5B model usually fixes `a - b`; what is asserted holds whatever it writes:
    the loop runs, verifies every change with the tests, and the workspace stays as it was."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(
        'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n')
    (workspace / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    before = tree_hash(workspace)
    result = solve(workspace, PYTEST, Budget(max_rounds=2, candidates_per_round=1,
                                             wall_time_s=90, reply_max_tokens=200),
                   engine=real_engine)
    assert tree_hash(workspace) == before
    assert result.status in ("solved", "unsolved", "out-of-time")
    assert result.rounds >= 1
    kinds = transcript_kinds(result.transcript)
    assert ("proposal", "") not in kinds
    if result.status == "solved":
        assert "a + b" in result.changes[0].new_text
    else:
        assert result.changes == ()


def test_examples_fail_on_apply_discount_in_a_scratch_copy():
    """The demo and the editor test rely on examples/ failing on apply_discount alone."""
    with Sandbox(REPO_ROOT / "examples") as sandbox:
        run = run_tests(TestCommand.parse(PYTEST), sandbox.root, limits=Limits(timeout_s=60))
    assert run.failing_ids == {"tests/test_inventory.py::test_discount_takes_percent_off"}


# ---------------------------------------------------------------- command line


def smallcoder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=300, check=False)


def test_cli_solve_refuses_a_missing_test_command_before_loading_the_model(tmp_path):
    workspace = scale_workspace(tmp_path / "ws")
    result = smallcoder("solve", "--workspace", str(workspace), "--test-cmd", "no-such-runner",
                        "--model", str(tmp_path / "absent.gguf"))
    assert result.returncode == 1
    assert "'no-such-runner' was not found" in result.stderr


def test_cli_solve_apply_learn_keeps_the_fix_with_the_test_it_made_pass(tmp_path, isolated_home,
                                                                       capsys):
    workspace = scale_workspace(tmp_path / "ws")
    argv = ["solve", "--workspace", str(workspace), "--test-cmd", PYTEST, "--max-rounds", "1",
            "--apply", "--learn"]
    assert main(argv, open_engine=lambda _model: ScriptedEngine([RIGHT])) == 0
    assert "return x / 2" in (workspace / "scale.py").read_text()
    [change], skipped = load_accepted()
    assert (change.kind, change.workspace, change.path, skipped) == (
        "fix", str(workspace.resolve()), "scale.py", 0)
    assert "return x / 2" in change.after and "return x / 2" not in change.before
    assert change.evidence["failing_before"] == ["test_scale.py::test_half_divides_by_two"]
    assert "scale.py kept for training" in capsys.readouterr().err


def test_cli_solve_learn_without_apply_is_refused_before_the_model_loads(tmp_path, isolated_home,
                                                                        capsys):
    def no_model(_model):
        raise AssertionError("the model was loaded")

    workspace = scale_workspace(tmp_path / "ws")
    assert main(["solve", "--workspace", str(workspace), "--test-cmd", PYTEST, "--learn"],
                open_engine=no_model) == 1
    assert "--learn keeps an applied change: add --apply" in capsys.readouterr().err
    assert load_accepted() == ([], 0)


@pytest.fixture(scope="session")
def model_file() -> Path:
    """Resolved once, before any test moves SMALLCODER_HOME to a private folder."""
    return small_model_path()


@pytest.mark.model
def test_cli_solve_prints_the_diff_and_leaves_the_workspace_alone(tmp_path, model_file):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (workspace / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    before = tree_hash(workspace)
    result = smallcoder("solve", "--workspace", str(workspace), "--test-cmd", PYTEST,
                        "--max-rounds", "1", "--time-budget", "60", "--model", str(model_file),
                        "--json")
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["status"] == "solved" else 1)
    assert report["rounds"] == 1
    assert tree_hash(workspace) == before
    assert Path(report["transcript"]).is_file()
