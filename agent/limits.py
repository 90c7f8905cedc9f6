"""Resource limits for the test command, and stopping its whole process tree, on any OS.

The one place for what differs by platform; importable everywhere. In order of preference:
- `prlimit` (util-linux, on every Linux distribution): the command starts as
  `prlimit --cpu=… --as=… -- program …`, so the limits hold before the test command's first
  instruction, with no Python code run between fork and exec in the threaded server.
- No `prlimit` but a `resource` module (macOS, BSD): `resource.setrlimit` in the child before
  exec (subprocess's `preexec_fn`; it only calls setrlimit, which takes no lock).
- No `resource` module (Windows): no limits. The timeout still applies and the whole process
  tree is killed through psutil.
A stop interrupts first (SIGINT, so that a plain Python command prints its traceback), then
terminates, then kills; a process group is killed whole after every run, a normal exit too.
Without process groups (no `os.killpg`: Windows) the tree psutil sees is killed instead.
Which way is taken is decided by what the platform has, not by its name, so that the tests can
take each way on Linux by hiding what another platform lacks (tests/portability.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_LIMIT_BYTES = 4 * 1024**3
DEFAULT_FILE_LIMIT_BYTES = 1024**3
DEFAULT_OPEN_FILES = 1024
# RLIMIT_NPROC counts every process and thread of the user, not of the test command: the
# limit is what the user runs already plus this many.
DEFAULT_EXTRA_PROCESSES = 256
# How long a stopped command has to print its traceback, then to clean up, before the kill.
INTERRUPT_GRACE_S = 2.0
TERMINATE_GRACE_S = 1.0
POLL_S = 0.02


@dataclass(frozen=True)
class Limits:
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES
    file_bytes: int = DEFAULT_FILE_LIMIT_BYTES
    open_files: int = DEFAULT_OPEN_FILES
    extra_processes: int = DEFAULT_EXTRA_PROCESSES
    # Memory as address space (RLIMIT_AS), or as writable data (RLIMIT_DATA) for runtimes that
    # reserve far more address space than they use: V8 reserves about 10 GB for each
    # WebAssembly instance (vitest's parser), the JVM its whole heap and code cache.
    memory_as_address_space: bool = True

    @property
    def cpu_s(self) -> int:
        """CPU seconds: twice the wall time, since a test command may use two cores."""
        return max(1, int(self.timeout_s * 2))


def limiting_method() -> str:
    """How limits are applied here: "prlimit", "setrlimit" or "none" (see the docstring)."""
    if resource is None:
        return "none"
    return "prlimit" if shutil.which("prlimit") else "setrlimit"


def _rlimits(limits: Limits) -> dict[str, int]:
    """prlimit's option name → the value, for each limit."""
    memory = "as" if limits.memory_as_address_space else "data"
    return {"cpu": limits.cpu_s, memory: limits.memory_bytes, "fsize": limits.file_bytes,
            "nofile": limits.open_files,
            "nproc": _user_processes() + limits.extra_processes}


def _user_processes() -> int:
    """Processes and threads of this user now (what RLIMIT_NPROC counts)."""
    if not hasattr(os, "getuid"):
        return 0
    uid, count = os.getuid(), 0
    for process in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = process.info["uids"], process.info["num_threads"]
        if uids is not None and uids.real == uid:
            count += threads or 1
    return count


def limited(argv: list[str], limits: Limits) -> tuple[list[str], Callable[[], None] | None]:
    """The argv to start and the function to run in the child before exec, so that the
    command runs under `limits` from its start."""
    method = limiting_method()
    values = _rlimits(limits) if method != "none" else {}
    if method == "prlimit":
        prlimit = shutil.which("prlimit") or "prlimit"
        return [prlimit, *(f"--{name}={value}" for name, value in values.items()), "--",
                *argv], None
    if method == "setrlimit":
        pairs = [(getattr(resource, f"RLIMIT_{name.upper()}"), value)
                 for name, value in values.items()]
        return argv, lambda: _set_in_child(pairs)
    return argv, None


def _set_in_child(pairs: list[tuple[int, int]]) -> None:
    for which, value in pairs:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # A limit the system refuses raises here, in the child: the command does not start.
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))


def has_process_groups() -> bool:
    return hasattr(os, "killpg") and hasattr(os, "setsid")


def popen_options() -> dict[str, object]:
    """Options that give the command a process group (POSIX) or tree (Windows) of its own."""
    if has_process_groups():
        return {"start_new_session": True}
    new_group = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # Windows only
    return {"creationflags": new_group} if new_group else {}


def exited_without_reaping(process: subprocess.Popen) -> bool:
    """True once the command has exited; on Linux it stays a zombie, so that its process
    group id cannot be taken by another process before `stop` kills the rest of the group."""
    if hasattr(os, "waitid") and process.returncode is None:
        try:
            found = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return process.poll() is not None
        return found is not None
    return process.poll() is not None


def stop(process: subprocess.Popen, *, graceful: bool, spared: tuple[str, ...] = ()) -> None:
    """End the command and everything it started. `graceful`: it is still running, so it gets
    SIGINT, then SIGTERM, then SIGKILL, each after a grace period. Processes named in `spared`
    (a confining wrapper such as bwrap, which would kill its child at once) get only SIGKILL."""
    if not has_process_groups():
        stop_tree(process)
        return
    if graceful:
        for signal_number, grace_s in ((signal.SIGINT, INTERRUPT_GRACE_S),
                                       (signal.SIGTERM, TERMINATE_GRACE_S)):
            if not _signal_tree(process, signal_number, spared):
                break
            if _exits_within(process, grace_s):
                break
    # Whatever is left of the group, once the command itself has ended (a normal exit too):
    # its zombie still holds the group id, so no other process can be hit.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_tree(process: subprocess.Popen, signal_number: int, spared: tuple[str, ...]) -> bool:
    if not spared:
        return _signal_group(process.pid, signal_number)
    try:
        leader = psutil.Process(process.pid)
        tree = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for member in tree:
        with contextlib.suppress(psutil.Error):
            if member.name() not in spared:
                member.send_signal(signal_number)
    return True


def _exits_within(process: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not exited_without_reaping(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def _signal_group(group: int, signal_number: int) -> bool:
    try:
        os.killpg(group, signal_number)
    except (ProcessLookupError, PermissionError):
        return False  # the whole group has ended
    return True


def interrupt_group_or_tree(pid: int) -> bool:
    """SIGINT to the process group led by `pid` (started with `popen_options`); without process
    groups, the tree psutil sees under `pid` is terminated (Windows has no SIGINT to send to
    another console's process). False once all of it has ended."""
    if has_process_groups():
        return _signal_group(pid, signal.SIGINT)
    return _each_in_tree(pid, psutil.Process.terminate)


def kill_group_or_tree(pid: int) -> bool:
    """SIGKILL to the process group led by `pid`, or psutil's kill of the tree under it."""
    if has_process_groups():
        return _signal_group(pid, signal.SIGKILL)
    return _each_in_tree(pid, psutil.Process.kill)


def _each_in_tree(pid: int, action: Callable[[psutil.Process], None]) -> bool:
    try:
        leader = psutil.Process(pid)
        tree = [*leader.children(recursive=True), leader]
    except psutil.NoSuchProcess:
        return False
    for member in tree:
        with contextlib.suppress(psutil.Error):
            action(member)
    return True


def stop_tree(process: subprocess.Popen) -> None:
    """Windows' way (no process groups to signal): kill the tree psutil sees, children first.
    It works on any OS, for processes that stayed children of the tree."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in [*children, process]:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, OSError):
            child.kill()
    process.wait()
