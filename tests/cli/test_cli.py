"""The `smallcoder` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SMALLCODER = [sys.executable, "-m", "cli"]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT):
    return subprocess.run([*SMALLCODER, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300, check=False)


def test_version_is_printed():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("smallcoder ")


@pytest.mark.parametrize("command", [[], ["model"], ["model", "pull"], ["model", "list"],
                                     ["model", "verify"], ["complete"],
                                     ["explain"], ["refactor"]])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: smallcoder" in result.stdout


def test_model_list_json_names_both_models(isolated_home):
    result = run("model", "list", "--json")
    rows = json.loads(result.stdout)
    assert {row["name"] for row in rows} == {"qwen2.5-coder-1.5b-instruct-q4_k_m",
                                             "qwen2.5-coder-0.5b-instruct-q4_k_m"}
    assert all(row["present"] is False for row in rows)
    assert [row["name"] for row in rows if row["default"]] == [
        "qwen2.5-coder-1.5b-instruct-q4_k_m"]


def test_model_verify_reports_a_wrong_size_file(isolated_home):
    models = isolated_home / "models"
    models.mkdir(parents=True)
    (models / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").write_bytes(b"GGUF" + b"\0" * 100)
    result = run("model", "verify", "qwen2.5-coder-0.5b-instruct-q4_k_m")
    assert result.returncode == 1
    assert "104 bytes, expected 491,400,064 (truncated)" in result.stdout


@pytest.mark.model
def test_complete_prints_a_real_completion_as_json():
    result = run("complete", "examples/stats.py:14:1", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["completion"].strip()
    assert payload["model"] == os.environ["SMALLCODER_MODEL"]
    assert payload["generated_tokens"] > 0


def test_complete_refuses_a_location_outside_the_file():
    result = run("complete", "examples/stats.py:400:1")
    assert result.returncode == 1
    assert "line 400 is outside the file" in result.stderr


def test_complete_refuses_a_non_utf8_file(tmp_path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"name = '\xe9t\xe9'\n")
    result = run("complete", f"{latin}:1:1")
    assert result.returncode == 1
    assert "is not UTF-8 text" in result.stderr


def test_complete_with_a_missing_model_says_how_to_get_it(isolated_home):
    result = run("complete", "examples/stats.py:14:1",
                 env={"SMALLCODER_MODEL": "qwen2.5-coder-1.5b-instruct-q4_k_m"})
    assert result.returncode == 1
    assert "smallcoder model pull qwen2.5-coder-1.5b-instruct-q4_k_m" in result.stderr


def test_complete_refuses_a_malformed_location():
    result = run("complete", "examples/stats.py")
    assert result.returncode == 1
    assert "is not FILE:LINE:COL" in result.stderr
