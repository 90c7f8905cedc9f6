"""`smallcoder explain` and `smallcoder refactor` on a small workspace, with scripted model replies:
what is printed, what is flagged, and when the file changes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from assist.explain import REWRITING
from cli.main import main
from model.errors import ModelError
from tests.fakes import ScriptedEngine
from training.accepted import load_accepted

STATS = ('"""Small statistics helpers for the shop\'s reports."""\n\n\n'
         "def mean(values: list[float]) -> float:\n"
         "    total = sum(values)\n"
         "    return total / len(values)\n\n\n"
         "LIMIT = 3\n")
MEAN_BODY_LINE = 6  # 1-based: `return total / len(values)`
LIMIT_LINE = 9
REPORT = ("from stats import mean\n\n\ndef weekly_report(sales: list[float]) -> str:\n"
          "    return f'average {mean(sales)}'\n")
TESTS = ("from stats import mean\n\n\ndef test_mean_of_two():\n"
         "    assert mean([1.0, 3.0]) == 2.0\n")
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
SIMPLER = ("```python\ndef mean(values: list[float]) -> float:\n"
           "    return sum(values) / len(values)\n```")
WRONG = "```python\ndef mean(values: list[float]) -> float:\n    return 0.0\n```"


@pytest.fixture
def shop(tmp_path: Path, isolated_home: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "stats.py").write_text(STATS)
    (root / "report.py").write_text(REPORT)
    (root / "test_stats.py").write_text(TESTS)
    return root


def smallcoder(*argv: str, replies: list[str] | None = None) -> int:
    """The command as a user runs it, on a scripted engine; without replies, on a machine
    where no model is downloaded."""
    def open_engine(_model: str | None) -> ScriptedEngine:
        if replies is None:
            raise ModelError("no model on this machine")
        return ScriptedEngine(replies)

    return main(list(argv), open_engine=open_engine)


# ---------------------------------------------------------------- explain


def test_explain_prints_the_explanation_titled_after_the_function(shop, capsys):
    reply = ("\n", "It returns ", "the average of `values`.", "\n")
    assert smallcoder("explain", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", replies=[reply]) == 0
    # Streamed piece by piece, then completed: each word exactly once.
    assert capsys.readouterr().out == "### `mean`\n\nIt returns the average of `values`.\n"


def test_explain_flags_a_name_the_workspace_does_not_have(shop, capsys):
    reply = "It calls `normalize_scores` on `values`, then averages them."
    assert smallcoder("explain", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}",
                      replies=[reply, "It averages `values`."]) == 0
    out = capsys.readouterr().out
    # The draft as the model wrote it, a line while it is rewritten, then what the index
    # found and what it became.
    assert out == (f"### `mean`\n\n{reply}\n\n_{REWRITING}…_\n\n---\n"
                   f"**Checked against the workspace index:**\n"
                   f"- `normalize_scores` is not defined or used anywhere in the workspace. "
                   f"Rewritten; it read: “{reply}”\n")


def test_explain_flags_a_caller_that_does_not_call_it(shop, capsys):
    (shop / "audit.py").write_text("def audit_prices(prices):\n    return sorted(prices)\n")
    reply = "It is used by `audit_prices` to average prices."
    assert smallcoder("explain", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", replies=[reply]) == 0
    assert ("- “called by `audit_prices`”: the index finds no call of `mean` in `audit_prices`; "
            "it is called by `test_mean_of_two`, `weekly_report`.") in capsys.readouterr().out


def test_explain_a_whole_file(shop, capsys):
    assert smallcoder("explain", f"{shop / 'stats.py'}:{LIMIT_LINE}", "--scope", "file",
                      replies=["Helpers for the reports."]) == 0
    assert capsys.readouterr().out == "### `stats.py`\n\nHelpers for the reports.\n"


# ---------------------------------------------------------------- refactor


def test_refactor_prints_the_checks_and_the_diff_and_leaves_the_file_alone(shop, capsys):
    before = (shop / "stats.py").read_bytes()
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}",
                      replies=[SIMPLER]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("--- a/stats.py\n+++ b/stats.py\n")
    assert "-    total = sum(values)\n-    return total / len(values)\n" \
           "+    return sum(values) / len(values)\n" in printed.out
    assert "  parses: the rewritten file parses\n  signature: kept\n" in printed.err
    assert "not applied (--apply writes it)" in printed.err
    assert (shop / "stats.py").read_bytes() == before


def test_refactor_with_apply_writes_the_checked_rewrite(shop, capsys):
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", "--apply",
                      "--test-cmd", PYTEST, replies=[SIMPLER]) == 0
    assert (shop / "stats.py").read_text() == STATS.replace(
        "    total = sum(values)\n    return total / len(values)\n",
        "    return sum(values) / len(values)\n")
    err = capsys.readouterr().err
    assert "  tests: `" in err and "` passes (" in err
    assert f"applied to {shop / 'stats.py'}" in err


def test_refactor_apply_learn_keeps_the_refactoring_for_training(shop, capsys):
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", "--apply", "--learn",
                      "--instruction", "inline total", replies=[SIMPLER]) == 0
    [change], skipped = load_accepted()
    assert (change.kind, change.workspace, change.path, change.before, skipped) == (
        "refactor", str(shop), "stats.py", STATS, 0)
    assert change.after == (shop / "stats.py").read_text()
    assert change.evidence == {"function": "mean", "instruction": "inline total"}
    assert "stats.py kept for training" in capsys.readouterr().err


def test_refactor_learn_without_apply_is_refused_and_keeps_nothing(shop, capsys):
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", "--learn") == 1
    assert "--learn keeps an applied change: add --apply" in capsys.readouterr().err
    assert load_accepted() == ([], 0)


def test_a_refused_refactor_keeps_nothing_for_training(shop, capsys):
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", "--apply", "--learn",
                      "--test-cmd", PYTEST, replies=[WRONG]) == 1
    assert load_accepted() == ([], 0)


def test_a_refactor_whose_tests_fail_is_refused_and_changes_nothing(shop, capsys):
    before = (shop / "stats.py").read_bytes()
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}", "--apply",
                      "--test-cmd", PYTEST, replies=[WRONG]) == 1
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "refactor refused: no rewrite passed the checks in 3 candidates; the last failed " \
           "tests: " in printed.err
    assert "test_mean_of_two" in printed.err
    assert f"{shop / 'stats.py'} is unchanged" in printed.err
    assert (shop / "stats.py").read_bytes() == before


def test_refactor_refuses_a_function_that_does_not_parse(shop, capsys):
    broken = shop / "broken.py"
    broken.write_text("def mean(values):\n    return sum(values / len(values)\n")
    assert smallcoder("refactor", f"{broken}:2") == 1
    assert "does not parse (line 2" in capsys.readouterr().err
    assert broken.read_text() == "def mean(values):\n    return sum(values / len(values)\n"


def test_refactor_refuses_a_test_command_that_cannot_start(shop, capsys):
    assert smallcoder("refactor", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}",
                      "--test-cmd", "no-such-runner -q") == 1
    assert "no-such-runner" in capsys.readouterr().err


# ---------------------------------------------------------------- bad input
# Reported before any model is opened: these pass on a machine with no model downloaded.


@pytest.mark.parametrize("command", ["explain", "refactor"])
def test_a_missing_file_is_one_clear_line(command, shop, capsys):
    assert smallcoder(command, f"{shop / 'nowhere.py'}:1") == 1
    assert capsys.readouterr().err == f"smallcoder: error: {shop / 'nowhere.py'} is not a file\n"


@pytest.mark.parametrize("command", ["explain", "refactor"])
def test_a_line_past_the_end_is_refused(command, shop, capsys):
    assert smallcoder(command, f"{shop / 'stats.py'}:400") == 1
    assert capsys.readouterr().err == (f"smallcoder: error: {shop / 'stats.py'} has 10 lines, "
                                       f"not 400\n")


@pytest.mark.parametrize("command", ["explain", "refactor"])
def test_a_non_utf8_file_is_refused(command, shop, capsys):
    latin = shop / "latin.py"
    latin.write_bytes(b"def name():\n    return '\xe9t\xe9'\n")
    assert smallcoder(command, f"{latin}:2") == 1
    assert "is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["explain", "refactor"])
def test_a_line_outside_any_function_is_refused(command, shop, capsys):
    assert smallcoder(command, f"{shop / 'stats.py'}:{LIMIT_LINE}") == 1
    assert capsys.readouterr().err == (f"smallcoder: error: {shop / 'stats.py'}:{LIMIT_LINE}: "
                                       f"there is no function at the cursor: put it inside "
                                       f"one\n")


def test_a_file_outside_the_given_workspace_is_refused(shop, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert smallcoder("explain", f"{shop / 'stats.py'}:{MEAN_BODY_LINE}",
                      "--workspace", str(elsewhere)) == 1
    assert "is not inside the workspace" in capsys.readouterr().err
