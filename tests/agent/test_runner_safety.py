"""The test runner as an attacker's test command sees it: limits from the first instruction,
nothing left running, nothing leaked, bounded output, and a traceback when it is stopped."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import agent.limits
from agent.runner import HeadTailOutput, Limits, TestCommand, run_tests

SCRIPT_LIMITS = Limits(timeout_s=30)
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")


def run_script(tmp_path: Path, source: str, limits: Limits = SCRIPT_LIMITS):
    script = tmp_path / "script.py"
    script.write_text(source)
    return run_tests(TestCommand.parse(f"{sys.executable} {script}"), tmp_path, limits=limits)


def test_runs_leave_no_file_descriptor_open(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert 1 == 2\n")
    command = TestCommand.parse(f"{sys.executable} -m pytest -q")
    run_tests(command, tmp_path)  # the first run may open what stays open (imports, caches)
    before = psutil.Process().num_fds()
    for _ in range(3):
        assert not run_tests(command, tmp_path).passed
    assert psutil.Process().num_fds() == before


def test_what_a_command_started_is_killed_when_it_exits_normally(tmp_path):
    # Found by its arguments: under bubblewrap the command sees pids of its own.
    marker = f"{time.time() % 1000 + 100:.6f}"
    run = run_script(tmp_path, f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n")
    assert run.passed
    deadline = time.monotonic() + 2
    while any(process.info["cmdline"] == ["sleep", marker] and
              process.status() != psutil.STATUS_ZOMBIE
              for process in psutil.process_iter(["cmdline"])):
        assert time.monotonic() < deadline, "a process the test command started survived"
        time.sleep(0.05)


@posix_only
@pytest.mark.parametrize("method", ["prlimit", "setrlimit"])
def test_every_limit_holds_from_the_commands_first_instruction(tmp_path, monkeypatch, method):
    # setrlimit in the child is the documented fallback where there is no prlimit program.
    monkeypatch.setattr(agent.limits, "limiting_method", lambda: method)
    limits = Limits(timeout_s=10, memory_bytes=3 * 1024**3, file_bytes=1024**2, open_files=64)
    run = run_script(tmp_path, "import resource\nprint([resource.getrlimit(getattr(resource, "
                               "'RLIMIT_' + name))[0] for name in "
                               "('CPU', 'AS', 'FSIZE', 'NOFILE', 'NPROC')])\n", limits)
    cpu, memory, file_size, open_files, processes = ast.literal_eval(run.output.strip())
    assert (cpu, memory, file_size, open_files) == (20, 3 * 1024**3, 1024**2, 64)
    assert 0 < processes < 10**7


@posix_only
def test_a_file_over_the_size_limit_cannot_be_written(tmp_path):
    run = run_script(tmp_path, "open('big.bin', 'wb').write(b'x' * 4 * 1024 * 1024)\n",
                     Limits(timeout_s=30, file_bytes=1024**2))
    assert not run.passed
    assert (tmp_path / "big.bin").stat().st_size <= 1024**2


def test_the_fallback_without_process_groups_kills_the_whole_tree(tmp_path):
    marker = f"{time.time() % 1000 + 100:.6f}"
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, time\n"
                               f"subprocess.Popen(['sleep', '{marker}'])\ntime.sleep(60)\n"])
    deadline = time.monotonic() + 10
    while not any(child.cmdline() == ["sleep", marker]
                  for child in psutil.Process(parent.pid).children(recursive=True)):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    agent.limits.stop_tree(parent)
    assert parent.returncode is not None
    time.sleep(0.2)
    assert not any(process.info["cmdline"] == ["sleep", marker] and
                   process.status() != psutil.STATUS_ZOMBIE
                   for process in psutil.process_iter(["cmdline"]))


def test_huge_output_is_kept_as_its_head_and_tail(tmp_path):
    run = run_script(tmp_path, "import sys\nprint('FIRST LINE', flush=True)\n"
                               "for _ in range(20_000):\n    sys.stdout.write('y' * 1000 + '\\n')\n"
                               "print('LAST LINE')\n")
    assert run.passed
    assert run.output.startswith("FIRST LINE")
    assert run.output.rstrip().endswith("LAST LINE")
    assert "bytes of output left out" in run.output
    assert len(run.output) < 300_000


def test_head_and_tail_output_counts_what_it_leaves_out():
    output = HeadTailOutput(head_bytes=4, tail_bytes=6)
    for chunk in (b"abc", b"defgh", b"ijklmnop"):
        output.add(chunk)
    assert output.head == b"abcd" and output.tail == b"klmnop"
    assert output.left_out_bytes == 16 - 4 - 6


def test_a_plain_command_stopped_at_its_timeout_shows_its_traceback(tmp_path):
    run = run_script(tmp_path, "import time\n\n\ndef wait_for_the_server():\n"
                               "    time.sleep(60)\n\n\nwait_for_the_server()\n",
                     Limits(timeout_s=8))  # a loaded machine may take seconds to start Python
    assert run.timed_out and not run.passed
    assert "KeyboardInterrupt" in run.failures[0].message
    assert "wait_for_the_server" in run.failures[0].message


def test_a_command_started_by_a_server_that_ignores_sigint_still_shows_its_traceback(tmp_path):
    # A server started in the background by a shell (`smallcoder serve &`) ignores SIGINT, and
    # an ignored signal stays ignored across exec: the test command would die without a word.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run = run_script(tmp_path, "import time\n\n\ndef wait_for_the_server():\n"
                                   "    time.sleep(60)\n\n\nwait_for_the_server()\n",
                         Limits(timeout_s=8))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert run.timed_out
    assert "KeyboardInterrupt" in run.failures[0].message
