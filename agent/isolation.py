"""Confining the test command to the agent's copy: bubblewrap on Linux when it is installed.

Under bubblewrap the command sees the whole file system read-only, a private /tmp, no network
and its own process ids; the copy (and the folder its report goes to) is the only writable tree
of the real file system, and shared folders (the virtual environment, node_modules) are mounted
read-only at their place in the copy. Without it ("none": macOS, Windows, a Linux without
bwrap or with user namespaces turned off, or SMALLCODER_ISOLATION=none) the command runs as the
user: only the process group, the limits and the timeout hold.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ISOLATION_ENVIRONMENT = "SMALLCODER_ISOLATION"  # "none" turns bubblewrap off
PROBE_TIMEOUT_S = 10


@dataclass(frozen=True)
class Confinement:
    """What a test command may see and write besides the read-only system."""

    copy: Path  # the only writable tree
    shared_folders: dict[str, Path] = field(default_factory=dict)  # name in the copy → real
    also_writable: tuple[Path, ...] = ()  # e.g. the folder of the junit report
    # Folders the command needs that may lie under /tmp, which it sees as a private tmpfs:
    # the pytest plugin, the interpreter's environment.
    also_readable: tuple[Path, ...] = ()


def isolation_name() -> str:
    """"bubblewrap" when test commands run under it here, else "none"."""
    if os.environ.get(ISOLATION_ENVIRONMENT, "").lower() == "none":
        return "none"
    return "bubblewrap" if _bubblewrap() is not None else "none"


def isolation_description() -> str:
    """What the user is told about where the tests run."""
    if isolation_name() == "bubblewrap":
        return ("bubblewrap: no network, the copy is the only writable folder")
    return ("none: the tests run as you, with limits and a timeout; install bubblewrap "
            "(`apt install bubblewrap`) to confine them to the copy")


def confined(argv: list[str], confinement: Confinement) -> list[str]:
    """`argv` wrapped so that it runs confined, when isolation is available; else as it is."""
    bwrap = _bubblewrap() if isolation_name() == "bubblewrap" else None
    if bwrap is None:
        return argv
    options = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--die-with-parent"]
    for writable in (confinement.copy, *confinement.also_writable):
        options += ["--bind", str(writable), str(writable)]
    for readable in confinement.also_readable:
        if readable.is_relative_to("/tmp"):
            options += ["--ro-bind", str(readable), str(readable)]
    for name, real in sorted(confinement.shared_folders.items()):
        options += ["--ro-bind", str(real), str(confinement.copy / name)]
    return [bwrap, *options, "--chdir", str(confinement.copy), "--", *argv]


@functools.cache
def _bubblewrap() -> str | None:
    """bwrap's path when it can start a confined process here (user namespaces may be off)."""
    if not sys.platform.startswith("linux"):
        return None
    found = shutil.which("bwrap")
    if found is None:
        return None
    try:
        probe = subprocess.run([found, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                                "--die-with-parent", "true"], capture_output=True,
                               timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if probe.returncode == 0 else None
