"""The server, the CLI and the agent's runner where Linux's modules and programs are missing.

Windows has no `resource`, no process groups and no prlimit; macOS has `resource` but no
prlimit. tests/portability.py hides what each lacks from SmallCoder's own code, so that the
fallbacks agent/limits.py documents run here for real: no limits but the timeout and a tree
kill through psutil on Windows, setrlimit in the child on macOS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.lsp_wire import WireServer
from tests.portability import PLATFORMS

SIMULATE = [sys.executable, str(REPO_ROOT / "tests" / "portability.py")]
LIMITING = {"windows": "none", "macos": "setrlimit"}


def simulated(platform: str, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*SIMULATE, platform, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout_s, check=False)


def survivors(marker: str) -> list[psutil.Process]:
    return [process for process in psutil.process_iter(["cmdline", "status"])
            if process.info["cmdline"] == ["sleep", marker]
            and process.info["status"] != psutil.STATUS_ZOMBIE]


def test_the_simulation_hides_a_module_from_smallcoder_only():
    run = simulated("windows", "-c", "import psutil, agent.limits\n"
                                     "print(agent.limits.resource, psutil.Process().pid > 0)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["None", "True"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_cli_runs(platform):
    run = simulated(platform, "-m", "cli", "model", "list", "--json")
    assert run.returncode == 0, run.stderr
    assert any(model["name"].startswith("qwen2.5-coder") for model in json.loads(run.stdout))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_hanging_test_command_is_stopped_with_everything_it_started(platform, tmp_path):
    marker = f"{time.time() % 1000 + 100:.6f}"
    (tmp_path / "hang.py").write_text(
        "import resource, subprocess, time\n" if platform == "macos" else
        "import subprocess, time\n")
    with (tmp_path / "hang.py").open("a") as script:
        if platform == "macos":
            script.write("print('open files', resource.getrlimit(resource.RLIMIT_NOFILE)[0],"
                         " flush=True)\n")
        script.write(f"subprocess.Popen(['sleep', '{marker}'])\nprint('started', flush=True)\n"
                     "time.sleep(600)\n")
    run = simulated(platform, "-c", f"""
import json, sys
from pathlib import Path
from agent.limits import limiting_method
from agent.runner import Limits, TestCommand, run_tests
folder = Path({str(tmp_path)!r})
result = run_tests(TestCommand.parse(f"{{sys.executable}} {{folder / 'hang.py'}}"), folder,
                   limits=Limits(timeout_s=3, open_files=77))
print(json.dumps({{"method": limiting_method(), "passed": result.passed,
                  "output": result.output}}))
""")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["method"] == LIMITING[platform]
    assert not result["passed"]
    assert "started" in result["output"]
    if platform == "macos":
        assert "open files 77" in result["output"]
    assert survivors(marker) == []


def test_without_process_groups_a_training_child_is_stopped_with_its_tree():
    # What server/train.py does on Cancel: interrupt (terminate, on Windows), then kill.
    marker = f"{time.time() % 1000 + 100:.6f}"
    run = simulated("windows", "-c", f"""
import subprocess, sys, time
import psutil
from agent.limits import has_process_groups, interrupt_group_or_tree, kill_group_or_tree
from agent.limits import popen_options
assert not has_process_groups()
child = subprocess.Popen([sys.executable, "-c", "import subprocess, time\\n"
                          "subprocess.Popen(['sleep', '{marker}'])\\ntime.sleep(600)\\n"],
                         **popen_options())
while not psutil.Process(child.pid).children():
    time.sleep(0.05)
assert interrupt_group_or_tree(child.pid)
child.wait(timeout=10)
kill_group_or_tree(child.pid)
""")
    assert run.returncode == 0, run.stderr
    deadline = time.monotonic() + 5
    while survivors(marker):
        assert time.monotonic() < deadline, "the training child's child survived"
        time.sleep(0.05)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_server_completes_and_solves(platform, tmp_path):
    workspace = tmp_path / "examples"
    shutil.copytree(REPO_ROOT / "examples", workspace,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    before = {path: path.read_bytes() for path in workspace.rglob("*.py")}
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF")
    server = WireServer(tmp_path / "server.log", SMALLCODER_SIMULATE_PLATFORM=platform,
                        SMALLCODER_HOME=str(tmp_path / "home"))
    try:
        # Imports under the simulation on a loaded CI machine: give it time.
        server.initialize(str(model), timeout_s=60)
        server.wait_ready(timeout_s=60)
        uri = (workspace / "stats.py").as_uri()
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1,
            "text": "def mean(values):\n    total = sum(values)\n    \n"}})
        completion = server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": 2, "character": 4},
            "context": {"triggerKind": 2}}, "completion", timeout_s=60)
        assert completion["result"]["items"][0]["insertText"].startswith("return total")
        solved = server.request("smallcoder/solve", {
            "workspaceFolder": workspace.as_uri(),
            "testCommand": f"{sys.executable} -m pytest -q -p no:cacheprovider",
            "maxRounds": 2}, "solve", timeout_s=300)
        assert solved["result"]["status"] == "solved", solved
    finally:
        exit_code = server.close()
    assert exit_code == 0, (tmp_path / "server.log").read_text()[-3000:]
    assert {path: path.read_bytes() for path in workspace.rglob("*.py")} == before
