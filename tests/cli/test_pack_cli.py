"""`smallcoder pack FILE:LINE --budget N`: what would be sent and why, counted by the model's
tokenizer (loaded alone, vocab only: fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, small_model_path

REPORT = '''from pkg.units import to_metres


def describe(feet):
    return f"{to_metres(feet):.1f} m"
'''

UNITS = '''def to_metres(feet: float) -> float:
    """Feet to metres."""
    return feet / 3.28084
'''


def run_pack(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", "pack", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "SMALLCODER_HOME": str(home)})


@pytest.fixture
def workspace(tmp_path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "report.py").write_text(REPORT)
    (root / "pkg" / "units.py").write_text(UNITS)
    return root


@pytest.mark.model
def test_pack_json_lists_snippets_with_reasons_within_the_budget(workspace, tmp_path):
    result = run_pack(f"{workspace / 'pkg' / 'report.py'}:5", "--budget", "200", "--json",
                      "--model", str(small_model_path()), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    packed = json.loads(result.stdout)
    assert packed["used_tokens"] <= 200
    assert sum(snippet["tokens"] for snippet in packed["snippets"]) == packed["used_tokens"]
    places = {(s["path"], s["kind"]): s["reason"] for s in packed["snippets"]}
    assert places[("pkg/units.py", "definition")] == "the target uses `to_metres` (jedi)"
    assert places[("pkg/report.py", "target")] == "the function target"
    assert list(tmp_path.glob("home/indexes/ws-*.json"))


@pytest.mark.model
def test_pack_prints_one_line_per_snippet(workspace, tmp_path):
    result = run_pack(f"{workspace / 'pkg' / 'report.py'}:5", "--budget", "200", "--no-jedi",
                      "--model", str(small_model_path()), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 snippets, ")
    assert "pkg/units.py:1-3" in result.stdout and "the target uses `to_metres`" in result.stdout


def test_pack_refuses_a_budget_beyond_8k(workspace, tmp_path):
    result = run_pack(f"{workspace / 'pkg' / 'report.py'}:5", "--budget", "9000",
                      home=tmp_path / "home")
    assert result.returncode == 1
    assert "give 0…8192 tokens" in result.stderr


@pytest.mark.model
def test_pack_for_completion_leaves_out_what_the_fim_prompt_shows(workspace, tmp_path):
    result = run_pack(f"{workspace / 'pkg' / 'report.py'}:5", "--budget", "200", "--json",
                      "--target", "completion", "--model", str(small_model_path()),
                      home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    packed = json.loads(result.stdout)
    assert [(s["path"], s["reason"]) for s in packed["snippets"]] == [
        ("pkg/units.py", "the target uses `to_metres`")]


def test_pack_for_tests_asks_for_the_failures_it_needs(workspace, tmp_path):
    result = run_pack("--target", "tests", "--workspace", str(workspace), home=tmp_path / "home")
    assert result.returncode == 1
    assert "give --test-cmd CMD" in result.stderr and "--failures REPORT.xml" in result.stderr


@pytest.mark.model
def test_pack_for_tests_shows_the_ranking_the_functions_and_the_related_code(workspace,
                                                                             tmp_path):
    """The tests run in a scratch copy; the workspace is left as it was."""
    (workspace / "test_report.py").write_text(
        "from pkg.report import describe\n\n\ndef test_describe():\n"
        "    assert describe(3.28084) == '1.0 m'\n")
    (workspace / "pkg" / "units.py").write_text(UNITS.replace("/ 3.28084", "* 3.28084"))
    before = {path: path.read_text() for path in workspace.rglob("*") if path.is_file()}
    result = run_pack("--target", "tests", "--workspace", str(workspace), "--json",
                      "--test-cmd", f"{sys.executable} -m pytest -q",
                      "--model", str(small_model_path()), home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    packed = json.loads(result.stdout)
    assert [f["test"] for f in packed["failures"]] == ["test_report.py::test_describe"]
    shown = {(s["path"], s["function"]) for s in packed["suspects"] if s["shown"]}
    assert shown == {("pkg/units.py", "to_metres"), ("pkg/report.py", "describe")}
    assert all("run by 1 of 1 failing test(s)" in s["reasons"] for s in packed["suspects"])
    assert {path: path.read_text() for path in workspace.rglob("*") if path.is_file()} == before
