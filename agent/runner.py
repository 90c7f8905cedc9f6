"""Runs the configured test command, and only that, in its own process group with limits.

A run that outlives its timeout, or is cancelled, is killed with its whole process group:
a hanging test is a failure, not a hang. pytest reports through its junit xml.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

from agent.failures import Failure, failure_from_output, failures_from_junit
from model.engine import CancelToken

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_LIMIT_BYTES = 4 * 1024**3
POLL_S = 0.05
OUTPUT_LIMIT_CHARS = 200_000
# Appended to pytest commands: a report we can parse, with file attributes and plain frames,
# whole assertion values, and the parameters of parametrized tests (our plugin).
PYTEST_REPORT_OPTIONS = ("-o", "junit_family=xunit1", "--tb=native", "-p", "no:cacheprovider",
                         "-o", "verbosity_assertions=2", "-p", "smallcoder_report")
PYTEST_PLUGIN_FOLDER = Path(__file__).resolve().parent / "pytest_plugin"


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

    @property
    def failing_ids(self) -> frozenset[str]:
        return frozenset(failure.test_id for failure in self.failures)


@dataclass(frozen=True)
class Limits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES


def run_tests(command: TestCommand, cwd: Path, *, limits: Limits = Limits(),
              only: tuple[str, ...] = (), stop_at_first_failure: bool = False,
              cancel: CancelToken | None = None) -> TestRun:
    """Run `command` in `cwd` and read the result; for pytest, with `only` these node ids when
    given, and stopping at the first failing test when asked."""
    argv = list(command.argv)
    report = None
    if command.is_pytest:
        report = Path(tempfile.mkstemp(prefix="smallcoder-junit-", suffix=".xml")[1])
        argv += [*PYTEST_REPORT_OPTIONS, f"--junitxml={report}",
                 *(("--maxfail=1",) if stop_at_first_failure else ()), *only]
    try:
        exit_code, output, duration, timed_out, cancelled = _run_limited(
            argv, cwd, limits, cancel, with_plugin=command.is_pytest)
        return _result(command, exit_code, output, duration, timed_out, cancelled, report)
    finally:
        if report is not None:
            report.unlink(missing_ok=True)


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


def find_program(command: TestCommand, cwd: Path) -> str:
    """The executable the command starts, as the run will find it; an error saying what to do
    when there is none."""
    program = command.argv[0]
    if "/" in program:
        found = str(cwd / program) if not Path(program).is_absolute() else program
        if not Path(found).is_file():
            raise TestCommandError(f"the test command {program!r} does not exist")
        return found
    found = shutil.which(program, path=_environment(cwd)["PATH"])
    if found is None:
        raise TestCommandError(f"the test command {program!r} was not found in the workspace's "
                               f"environment or on PATH: install it, or give its full path")
    return found


def _run_limited(argv: list[str], cwd: Path, limits: Limits, cancel: CancelToken | None, *,
                 with_plugin: bool = False) -> tuple[int | None, str, float, bool, bool]:
    env = _environment(cwd)
    if with_plugin:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PYTEST_PLUGIN_FOLDER), env.get("PYTHONPATH")]))
    program = find_program(TestCommand(tuple(argv)), cwd)
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            process = subprocess.Popen([program, *argv[1:]], cwd=cwd, env=env,
                                       stdin=subprocess.DEVNULL, stdout=sink,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as error:
            raise TestCommandError(f"cannot start the test command {argv[0]!r}: "
                                   f"{error.strerror}") from error
        _limit(process.pid, limits)
        timed_out = cancelled = False
        try:
            while process.poll() is None:
                if cancel is not None and cancel.cancelled:
                    cancelled = True
                    break
                if time.monotonic() - started > limits.timeout_s:
                    timed_out = True
                    break
                time.sleep(POLL_S)
        finally:
            if process.poll() is None or timed_out or cancelled:
                _kill_group(process)
        sink.seek(0)
        output = sink.read()[-OUTPUT_LIMIT_CHARS:].decode("utf-8", errors="replace")
    # Paths relative to the copy: the same from run to run, and what the user knows them as.
    output = output.replace(f"{cwd.resolve()}{os.sep}", "")
    return process.returncode, output, time.monotonic() - started, timed_out, cancelled


def _environment(cwd: Path) -> dict[str, str]:
    """PATH starts with the workspace's virtual environment, else this interpreter's folder."""
    env = dict(os.environ)
    venv = next((folder for folder in (cwd / ".venv", cwd / "venv", cwd / "env")
                 if (folder / "pyvenv.cfg").is_file()), None)
    first = venv / "bin" if venv is not None else Path(sys.executable).parent
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(first), env.get("PATH", os.defpath)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _limit(pid: int, limits: Limits) -> None:
    """Memory and CPU limits set on the child right after it starts (no preexec_fn: the
    server has threads). Its own children inherit them."""
    cpu_s = max(1, int(limits.timeout_s * 2))
    try:
        resource.prlimit(pid, resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.prlimit(pid, resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    except (ProcessLookupError, PermissionError, ValueError):
        pass  # it already ended, or the system refuses: the timeout still applies


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has already ended
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
