"""The agent's copy as a hostile repository sees it: links that lead outside, a huge checkout,
scratch folders left behind, and tests that try to write outside or reach the network."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agent.isolation import isolation_name
from agent.runner import Limits, TestCommand, run_tests
from agent.sandbox import Sandbox, SandboxError
from agent.solve import Budget, solve
from cli.solve import apply_changes
from tests.conftest import REPO_ROOT, small_model_path
from tests.fakes import ScriptedEngine

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
ONE_ROUND = Budget(candidates_per_round=1, max_rounds=2, wall_time_s=120, test_timeout_s=60)
CALC = "def add(a, b):\n    return a - b\n"
FIX = "```python\ndef add(a, b):\n    return a + b\n```"
# A test that writes through the link, quietly: the attack must not show as a failure.
TEST_WRITING_THROUGH_THE_LINK = '''from calc import add


def test_add():
    try:
        with open("shared/notes.txt", "w") as notes:
            notes.write("written by the tests")
    except OSError:
        pass
    assert add(2, 3) == 5
'''
ISOLATIONS = ["none", pytest.param("bubblewrap", marks=pytest.mark.skipif(
    isolation_name() != "bubblewrap", reason="bubblewrap is not usable here"))]


@pytest.fixture(scope="module")
def model_file() -> Path:
    """Resolved before any test moves SMALLCODER_HOME to a private folder."""
    return small_model_path()


@pytest.fixture(autouse=True)
def private_temp(isolated_home, tmp_path, monkeypatch) -> Path:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@pytest.fixture(params=ISOLATIONS)
def isolation(request, monkeypatch) -> str:
    monkeypatch.setenv("SMALLCODER_ISOLATION", request.param)
    assert isolation_name() == request.param
    return request.param


def git_commit_all(workspace: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=workspace, check=True)
    subprocess.run([*git, "add", "-A"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=workspace, check=True)


def outside_folder(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_bytes(b"the user's own notes\n")
    (outside / "calc_helpers.py").write_text(CALC)
    return outside


def workspace_linking_to(outside: Path, tmp_path: Path) -> Path:
    """A workspace whose tests write through `shared`, a link to the folder `outside`."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_calc.py").write_text(TEST_WRITING_THROUGH_THE_LINK)
    (workspace / "shared").symlink_to(outside, target_is_directory=True)
    return workspace


def test_a_link_to_an_outside_folder_cannot_be_written_through_even_with_apply(
        tmp_path, isolation):
    outside = outside_folder(tmp_path)
    before = (outside / "notes.txt").read_bytes()
    workspace = workspace_linking_to(outside, tmp_path)
    git_commit_all(workspace)  # git lists the link itself, so a plain copy would keep it
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([FIX]))
    assert result.status == "solved", result.message
    assert result.isolation == isolation
    assert apply_changes(workspace, result.changes) == ["calc.py"]
    assert (outside / "notes.txt").read_bytes() == before
    assert any(note.startswith("shared -> ") and "left out" in note for note in result.notes)


def test_tests_cannot_write_into_the_workspaces_virtual_environment(tmp_path, isolation):
    workspace = tmp_path / "ws"
    (workspace / ".venv" / "bin").mkdir(parents=True)
    (workspace / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_venv.py").write_text(
        "def test_write():\n    try:\n        open('.venv/bin/planted', 'w').write('x')\n"
        "    except OSError:\n        pass\n")
    with Sandbox(workspace) as sandbox:
        run = run_tests(TestCommand.parse(PYTEST), sandbox.root, limits=Limits(timeout_s=60),
                        shared_folders=sandbox.shared_folders)
    assert run.passed, run.output
    assert not (workspace / ".venv" / "bin" / "planted").exists()


def test_a_link_to_an_outside_file_is_copied_by_content_and_never_edited(tmp_path):
    outside = outside_folder(tmp_path)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").symlink_to(outside / "calc_helpers.py")
    (workspace / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([FIX]))
    assert result.status == "unsolved"
    assert result.changes == ()
    assert (outside / "calc_helpers.py").read_text() == CALC
    assert any("its content was copied" in note for note in result.notes)


def test_writing_a_path_that_leads_out_of_the_copy_is_refused(tmp_path, private_temp):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    neighbour = private_temp / "neighbour.py"
    neighbour.write_text(CALC)
    with Sandbox(workspace) as sandbox, pytest.raises(SandboxError, match="outside"):
        sandbox.write("../neighbour.py", "print('out')\n")
    assert neighbour.read_text() == CALC


def test_a_copy_over_its_size_cap_is_refused_with_the_setting_to_change(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "data.bin").write_bytes(b"\0" * 3 * 1024**2)
    with pytest.raises(SandboxError, match=r"more than 1 MB.*smallcoder\.agent\.maxCopyMb"):
        Sandbox(workspace, max_copy_bytes=1024**2)
    assert not list((tmp_path / "tmp").iterdir())


def test_scratch_folders_of_agents_that_ended_are_removed_at_start(tmp_path, private_temp):
    import os
    ended = private_temp / "smallcoder-agent-999999999-abc"  # above any pid_max: never running
    running = private_temp / f"smallcoder-agent-{os.getppid()}-abc"
    for folder in (ended, running):
        folder.mkdir()
        (folder / "left.py").write_text("x = 1\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    with Sandbox(workspace):
        pass
    assert not ended.exists()
    assert running.exists()


@pytest.mark.skipif(isolation_name() != "bubblewrap", reason="bubblewrap is not usable here")
def test_under_bubblewrap_tests_write_only_the_copy_and_reach_no_network(tmp_path):
    outside = outside_folder(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "attack.py").write_text(
        "import socket\n"
        "try:\n"
        f"    open({str(outside / 'notes.txt')!r}, 'w').write('changed')\n"
        "    print('WROTE OUTSIDE')\n"
        "except OSError:\n    pass\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    print('REACHED THE NETWORK')\n"
        "except OSError:\n    pass\n"
        "open('inside.txt', 'w').write('fine')\n")
    with Sandbox(tmp_path / "ws") as sandbox:
        run = run_tests(TestCommand.parse(f"{sys.executable} attack.py"), sandbox.root,
                        limits=Limits(timeout_s=30))
        assert run.passed, run.output
        assert (sandbox.root / "inside.txt").read_text() == "fine"
    listener.close()
    assert "WROTE OUTSIDE" not in run.output and "REACHED THE NETWORK" not in run.output
    assert (outside / "notes.txt").read_bytes() == b"the user's own notes\n"


def test_the_transcript_and_the_copy_are_readable_by_the_user_alone(tmp_path, private_temp):
    import stat
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text(CALC)
    (workspace / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    with Sandbox(workspace) as sandbox:
        assert stat.S_IMODE(sandbox.root.stat().st_mode) == 0o700
    result = solve(workspace, PYTEST, ONE_ROUND, engine=ScriptedEngine([FIX]))
    assert stat.S_IMODE(result.transcript.stat().st_mode) == 0o600
    assert stat.S_IMODE(result.transcript.parent.stat().st_mode) == 0o700


@pytest.mark.model
def test_the_command_line_solve_with_apply_leaves_a_linked_outside_file_alone(tmp_path,
                                                                               model_file):
    """The real model and the real `smallcoder solve --apply`: whatever the model writes, the
    file behind the link is byte-identical afterwards."""
    outside = outside_folder(tmp_path)
    before = (outside / "notes.txt").read_bytes()
    workspace = workspace_linking_to(outside, tmp_path)
    git_commit_all(workspace)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "solve", "--workspace", str(workspace), "--test-cmd",
         PYTEST, "--max-rounds", "1", "--time-budget", "120", "--model", str(model_file),
         "--apply", "--json"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
        check=False)
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["status"] == "solved" else 1), result.stderr
    assert any(note.startswith("shared -> ") for note in report["notes"])
    assert (outside / "notes.txt").read_bytes() == before
