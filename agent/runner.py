"""Runs the configured test command, and only that, in its own process group with limits
(agent/limits.py), confined to the agent's copy where bubblewrap is available (isolation.py).

A run that outlives its timeout, or is cancelled, is interrupted, then killed with its whole
process group, which is killed after a normal exit too: a hanging test is a failure, not a
hang, and nothing it started outlives it. Its output is kept as head and tail, in bounded
memory. pytest reports through its junit xml; other runners are read by agent/runners.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import IO

from agent.failures import Failure, failure_from_output, failures_from_junit
from agent.isolation import Confinement, confined, isolation_name
from agent.limits import (
    Limits,
    exited_without_reaping,
    limited,
    popen_options,
    stop,
)
from agent.reports import BUILD_FAILURE_ID
from agent.runners import Runner, detect_runner, environment_for, read_failures
from agent.sandbox import SCRATCH_PREFIX
from model.engine import CancelToken

POLL_S = 0.05
# What is kept of a command's output: its start and its end (see HeadTailOutput).
OUTPUT_HEAD_BYTES = 64 * 1024
OUTPUT_TAIL_BYTES = 192 * 1024
READ_CHUNK_BYTES = 64 * 1024
READER_JOIN_S = 2.0
# Appended to pytest commands: a report we can parse, with file attributes and plain frames,
# whole assertion values, and the parameters of parametrized tests (our plugin).
PYTEST_REPORT_OPTIONS = ("-o", "junit_family=xunit1", "--tb=native", "-p", "no:cacheprovider",
                         "-o", "verbosity_assertions=2", "-p", "smallcoder_report")
PYTEST_PLUGIN_FOLDER = Path(__file__).resolve().parent / "pytest_plugin"
TRACE_FILE_NAME = "trace.json"  # beside the junit report, written by smallcoder_trace


class TestCommandError(Exception):
    """The test command cannot run at all; the message says what to change."""

    __test__ = False  # not a pytest test class, whatever its name says


@dataclass(frozen=True)
class TestCommand:
    argv: tuple[str, ...]
    __test__ = False

    @classmethod
    def parse(cls, command: str) -> TestCommand:
        """Split like a POSIX shell, without one: no pipes, no expansion, no `;`."""
        try:
            argv = tuple(shlex.split(command))
        except ValueError as error:
            raise TestCommandError(f"cannot read the test command {command!r}: {error}") from None
        if not argv:
            raise TestCommandError("the test command is empty: give one such as `pytest -q`")
        return cls(argv)

    @property
    def is_pytest(self) -> bool:
        program = PurePath(self.argv[0]).name
        if program in ("pytest", "py.test"):
            return True
        return program.startswith("python") and self.argv[1:3] == ("-m", "pytest")

    @property
    def pytest_selects_tests(self) -> bool:
        """True when the pytest arguments name tests or take values (then we add no ids)."""
        options = self.argv[3:] if self.argv[1:3] == ("-m", "pytest") else self.argv[1:]
        return any(not argument.startswith("-") for argument in options)

    def __str__(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class TestRun:
    __test__ = False
    passed: bool
    failures: tuple[Failure, ...]
    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False
    # With `trace`: the project's functions each test executed, by node id, as
    # (path relative to the copy, 1-based first line, name).
    covered: dict[str, tuple[tuple[str, int, str], ...]] = field(default_factory=dict)

    @property
    def failing_ids(self) -> frozenset[str]:
        return frozenset(failure.test_id for failure in self.failures)

    @property
    def build_failed(self) -> bool:
        """The code did not build: no test ran, so this is worse than any failing tests."""
        return BUILD_FAILURE_ID in self.failing_ids

    def better_than(self, other: TestRun) -> bool:
        """Strictly fewer failing tests, or a build that now gets as far as running tests."""
        if self.cancelled:
            return False
        if other.build_failed and not self.build_failed:
            return True
        return self.failing_ids < other.failing_ids


def run_tests(command: TestCommand, cwd: Path, *, limits: Limits | None = None,
              only: tuple[str, ...] = (), stop_at_first_failure: bool = False,
              cancel: CancelToken | None = None,
              shared_folders: dict[str, Path] | None = None, trace: bool = False) -> TestRun:
    """Run `command` in `cwd` and read the result; for pytest, with `only` these node ids when
    given, stopping at the first failing test when asked, and with `trace` recording the
    functions each test runs (`TestRun.covered`). `shared_folders` (name → real folder: a
    virtual environment, node_modules) are what the copy uses without holding."""
    limits = limits or Limits()
    argv = list(command.argv)
    report = None
    runner = None if command.is_pytest else detect_runner(command.argv, cwd)
    if command.is_pytest or (runner is not None and runner.report_options):
        # In a folder of its own (0700), named but not created here: no descriptor to leak.
        # Named like the copies, so that one left by a killed server is removed at a later start.
        report = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-junit-")
                      ) / "report.xml"
    if command.is_pytest:
        argv += [*PYTEST_REPORT_OPTIONS, f"--junitxml={report}",
                 *(("--maxfail=1",) if stop_at_first_failure else ()),
                 *(("-p", "smallcoder_trace") if trace else ()), *only]
    elif runner is not None:
        argv = runner.argv(command.argv, report, offline=isolation_name() == "bubblewrap")
    if runner is not None and runner.reserves_address_space:
        limits = replace(limits, memory_as_address_space=False)
    confinement = Confinement(cwd.resolve(), dict(shared_folders or {}),
                              () if report is None else (report.parent,),
                              (PYTEST_PLUGIN_FOLDER, Path(sys.prefix).resolve()))
    started_at = time.time()
    extra_environment = environment_for(runner, cwd) if runner else {}
    traced = command.is_pytest and trace and report is not None
    if traced:
        extra_environment = {"SMALLCODER_TRACE_FILE": str(report.parent / TRACE_FILE_NAME),
                             "SMALLCODER_TRACE_ROOT": str(cwd.resolve())}
    try:
        exit_code, output, duration, timed_out, cancelled = _run_limited(
            argv, confinement, limits, cancel, with_plugin=command.is_pytest,
            extra_environment=extra_environment)
        if runner is not None and not (timed_out or cancelled):
            return _runner_result(runner, command, exit_code, output, duration, report, cwd,
                                  started_at)
        run = _result(command, exit_code, output, duration, timed_out, cancelled, report)
        if traced and report is not None:
            run = replace(run, covered=_read_trace(report.parent / TRACE_FILE_NAME))
        return run
    finally:
        if report is not None:
            shutil.rmtree(report.parent, ignore_errors=True)


def _result(command: TestCommand, exit_code: int | None, output: str, duration: float,
            timed_out: bool, cancelled: bool, report: Path | None) -> TestRun:
    if timed_out or cancelled:
        why = "cancelled" if cancelled else f"timed out after {duration:.0f} s and was killed"
        failure = Failure(str(command), f"the test command {why}\n{output[-2000:]}")
        return TestRun(False, (failure,), exit_code, output, duration, timed_out, cancelled)
    if report is not None:
        xml_text = report.read_text(encoding="utf-8", errors="replace") if report.exists() else ""
        failures = failures_from_junit(xml_text) if xml_text.strip() else []
        # Exit 5 is "no tests collected": nothing failed. Any other non-zero exit without a
        # failing case (a crash, a usage error) is a failure of the whole command.
        if exit_code not in (0, 5) and not failures:
            failures = [failure_from_output(str(command), exit_code or -1, output)]
        return TestRun(not failures, tuple(failures), exit_code, output, duration)
    if exit_code == 0:
        return TestRun(True, (), exit_code, output, duration)
    failure = failure_from_output(str(command), exit_code if exit_code is not None else -1,
                                  output)
    return TestRun(False, (failure,), exit_code, output, duration)


def _read_trace(path: Path) -> dict[str, tuple[tuple[str, int, str], ...]]:
    """The functions each test ran, as our trace plugin wrote them; nothing when it wrote
    nothing (killed at the timeout) or something else (the tests may write anywhere they can)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(node): tuple((str(file), int(line), str(name)) for file, line, name in found)
                for node, found in raw.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _runner_result(runner: Runner, command: TestCommand, exit_code: int | None, output: str,
                   duration: float, report: Path | None, cwd: Path,
                   started_at: float) -> TestRun:
    code = exit_code if exit_code is not None else -1
    failures = read_failures(runner, str(command), code, output, report, cwd, started_at)
    return TestRun(not failures and code == 0, tuple(failures), exit_code, output, duration)


def find_program(command: TestCommand, cwd: Path,
                 shared_folders: dict[str, Path] | None = None) -> str:
    """The executable the command starts, as the run will find it (`.venv/bin/pytest` in a
    shared folder: the real one); an error saying what to do when there is none."""
    program = command.argv[0]
    shared = shared_folders or {}
    if "/" in program:
        first, _, rest = program.partition("/")
        found = (program if Path(program).is_absolute() else
                 str(shared[first] / rest) if first in shared else str(cwd / program))
        if not Path(found).is_file():
            raise TestCommandError(f"the test command {program!r} does not exist")
        return found
    found = shutil.which(program, path=_environment(cwd, shared)["PATH"])
    if found is None:
        raise TestCommandError(f"the test command {program!r} was not found in the workspace's "
                               f"environment or on PATH: install it, or give its full path")
    return found


def _run_limited(argv: list[str], confinement: Confinement, limits: Limits,
                 cancel: CancelToken | None, *, with_plugin: bool = False,
                 extra_environment: dict[str, str] | None = None
                 ) -> tuple[int | None, str, float, bool, bool]:
    cwd = confinement.copy
    env = {**_environment(cwd, confinement.shared_folders), **(extra_environment or {})}
    if with_plugin:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PYTEST_PLUGIN_FOLDER), env.get("PYTHONPATH")]))
    program = find_program(TestCommand(tuple(argv)), cwd, confinement.shared_folders)
    limited_argv, in_child = limited([program, *argv[1:]], limits)
    in_child = _with_interrupt_restored(in_child)
    command = confined(limited_argv, confinement)
    started = time.monotonic()
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   preexec_fn=in_child, **popen_options())
    except (OSError, subprocess.SubprocessError) as error:
        raise TestCommandError(f"cannot start the test command {argv[0]!r}: {error}") from error
    output = HeadTailOutput()
    reader = threading.Thread(target=output.read_until_closed, args=(process.stdout,),
                              name="test-output", daemon=True)
    reader.start()
    timed_out = cancelled = False
    try:
        while not exited_without_reaping(process):
            if cancel is not None and cancel.cancelled:
                cancelled = True
                break
            if time.monotonic() - started > limits.timeout_s:
                timed_out = True
                break
            time.sleep(POLL_S)
    finally:
        stop(process, graceful=not exited_without_reaping(process),
             spared=("bwrap",) if command[0] != limited_argv[0] else ())
        # The group is gone, so the pipe is closed and the reader ends; only a process that
        # left the group (setsid) could hold it open, and then the reader closes it later.
        reader.join(READER_JOIN_S)
    # Paths relative to the copy: the same from run to run, and what the user knows them as.
    text = output.text().replace(f"{cwd.resolve()}{os.sep}", "")
    return process.returncode, text, time.monotonic() - started, timed_out, cancelled


def _with_interrupt_restored(in_child: Callable[[], None] | None
                             ) -> Callable[[], None] | None:
    """A server started in the background by a shell ignores SIGINT, and an ignored signal
    stays ignored across exec: the test command would never get the SIGINT that makes it
    print its traceback. Only then, the child sets it back to its default before exec (a
    single system call; `in_child`, the limits, still runs)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return in_child

    def restore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if in_child is not None:
            in_child()

    return restore


class HeadTailOutput:
    """The first and the last bytes a command wrote, and how many were left out between:
    memory stays bounded whatever it prints, and both the start (collection errors) and the
    end (the summary, a traceback) are kept."""

    def __init__(self, head_bytes: int = OUTPUT_HEAD_BYTES,
                 tail_bytes: int = OUTPUT_TAIL_BYTES) -> None:
        self.head_bytes, self.tail_bytes = head_bytes, tail_bytes
        self.head, self.tail = bytearray(), bytearray()
        self.left_out_bytes = 0

    def add(self, chunk: bytes) -> None:
        room = self.head_bytes - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - self.tail_bytes
        if excess > 0:
            del self.tail[:excess]
            self.left_out_bytes += excess

    def read_until_closed(self, stream: IO[bytes]) -> None:
        """Read `stream` to its end, then close it (run on a thread of its own)."""
        with stream:
            for chunk in iter(lambda: stream.read1(READ_CHUNK_BYTES), b""):
                self.add(chunk)

    def text(self) -> str:
        gap = (f"\n[... {self.left_out_bytes} bytes of output left out ...]\n"
               if self.left_out_bytes else "")
        return (self.head.decode("utf-8", errors="replace") + gap
                + self.tail.decode("utf-8", errors="replace"))


def _environment(cwd: Path, shared_folders: dict[str, Path] | None = None) -> dict[str, str]:
    """PATH starts with the workspace's virtual environment, else this interpreter's folder;
    node_modules shared with the copy is on NODE_PATH."""
    env = dict(os.environ)
    shared = shared_folders or {}
    venv = next((folder for folder in (*shared.values(), cwd / ".venv", cwd / "venv", cwd / "env")
                 if (folder / "pyvenv.cfg").is_file()), None)
    if "node_modules" in shared:
        env["NODE_PATH"] = os.pathsep.join(
            filter(None, [str(shared["node_modules"]), env.get("NODE_PATH")]))
    first = venv / "bin" if venv is not None else Path(sys.executable).parent
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(first), env.get("PATH", os.defpath)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
