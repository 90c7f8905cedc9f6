"""Windows and macOS as far as SmallCoder's Python can tell, simulated on Linux.

SmallCoder decides by what the platform has, not by its name (agent/limits.py): these hide
what the other platform lacks, so that its fallbacks run for real in CI.
- "windows": no `resource`, `fcntl`, `termios`, `pwd` or `grp` module, no process groups
  (`os.killpg`, `os.setsid`, `os.getpgid`), no `os.getuid`, no `os.waitid`, no `bwrap`.
- "macos": no `prlimit` program (util-linux is Linux's) nor `bwrap`, no `os.waitid`.

Run a module or code under one: `python tests/portability.py windows -m cli model list`,
`python tests/portability.py macos -c CODE`; tests/lsp_fake_server.py takes the platform from
$SMALLCODER_SIMULATE_PLATFORM.
"""

from __future__ import annotations

import builtins
import os
import runpy
import shutil
import sys
from pathlib import Path

PLATFORMS = ("windows", "macos")
WINDOWS_MISSING_MODULES = ("resource", "fcntl", "termios", "pwd", "grp")
WINDOWS_MISSING_OS = ("killpg", "setsid", "getpgid", "getuid", "geteuid", "waitid")
MACOS_MISSING_OS = ("waitid",)
MISSING_PROGRAMS = {"windows": ("prlimit", "bwrap"), "macos": ("prlimit", "bwrap")}
# Only SmallCoder's own imports see a module missing: the libraries it uses import their Linux
# backends here (psutil imports resource) and their Windows ones there.
OUR_PACKAGES = ("cli", "server", "assist", "agent", "analyzers", "model", "training")


def hide_from_us(names: tuple[str, ...]) -> None:
    """Makes `import NAME` fail in SmallCoder's modules, as on a platform without NAME (at the
    import statement: sys.modules has NAME again as soon as a library imports it)."""
    real_import = builtins.__import__

    def importing(name, globals=None, locals=None, fromlist=(), level=0):
        caller = (globals or {}).get("__name__") or ""
        if level == 0 and name.split(".")[0] in names and \
                caller.split(".")[0] in OUR_PACKAGES:
            raise ModuleNotFoundError(f"No module named {name!r} (simulated)", name=name)
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = importing


def simulate(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"not a simulated platform: {platform!r} (one of {PLATFORMS})")
    if platform == "windows":
        hide_from_us(WINDOWS_MISSING_MODULES)
    missing_os = WINDOWS_MISSING_OS if platform == "windows" else MACOS_MISSING_OS
    real_which = shutil.which

    def which(command, *args, **kwargs):
        if os.path.basename(str(command)) in MISSING_PROGRAMS[platform]:
            return None
        return real_which(command, *args, **kwargs)

    shutil.which = which
    for name in missing_os:
        if hasattr(os, name):
            delattr(os, name)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] not in ("-m", "-c"):
        raise SystemExit("usage: python tests/portability.py windows|macos "
                         "(-m MODULE [ARG ...] | -c CODE)")
    simulate(argv[0])
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    if argv[1] == "-c":
        exec(compile(argv[2], "<simulated>", "exec"), {"__name__": "__main__"})
        return
    sys.argv = [argv[2], *argv[3:]]
    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
