"""The scratch copy the agent works in, so that the user's files never change before they accept.

The copy holds tracked and untracked-not-ignored files (`git ls-files -co --exclude-standard`),
or, outside git, every file except caches. Nothing in it leads outside: a symbolic link to a
file outside the workspace becomes a copy of that file's content (which the agent never edits),
one to a folder outside, or to nothing, is left out, and links inside stay links inside the copy;
each such decision is listed in `notes`. Virtual environments and node_modules are not in the
copy: `shared_folders` names them for the runner, which mounts them read-only (bubblewrap) or
points the environment at them. The copy's total size is capped.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

# Folders never copied when walking a workspace that is not a git repository.
SKIPPED_FOLDERS = frozenset({".git", ".hg", ".svn", "__pycache__", ".pytest_cache",
                             ".mypy_cache", ".ruff_cache", ".tox", "venv", ".venv", "env",
                             "node_modules"})
# Top-level folders shared read-only rather than copied: big, and read-only for tests.
SHARED_FOLDERS = ("node_modules",)
GIT_TIMEOUT_S = 30
DEFAULT_MAX_COPY_BYTES = 512 * 1024**2
SCRATCH_PREFIX = "smallcoder-agent-"
# A scratch folder named without the pid of its owner (before this version) is stale after this.
UNOWNED_SCRATCH_AGE_S = 24 * 3600


class SandboxError(Exception):
    """The workspace cannot be copied; the message says why."""


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the workspace, with forward slashes
    old_text: str
    new_text: str


class Sandbox:
    """A private copy of `workspace` under the temporary folder; remove it with `close()`."""

    def __init__(self, workspace: Path, max_copy_bytes: int = DEFAULT_MAX_COPY_BYTES) -> None:
        workspace = workspace.resolve()
        if not workspace.is_dir():
            raise SandboxError(f"workspace {workspace} is not a folder")
        remove_stale_scratch()
        self.workspace = workspace
        plan = plan_copy(workspace, max_copy_bytes)
        self.notes = plan.notes
        self.shared_folders = {name: workspace / name for name in shared_folders(workspace)}
        self._read_only = frozenset(plan.outside_copies)
        # The pid in the name tells a later start whether the owner is still running.
        self.root = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")).resolve()
        self._originals: dict[str, str] = {}
        try:
            plan.carry_out(workspace, self.root)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _inside(self, relative: str) -> Path:
        """The copy's file at `relative`; an error when that leads outside the copy."""
        path = self.root / relative
        if not path.resolve().is_relative_to(self.root):
            raise SandboxError(f"{relative} leads outside the agent's copy: not touched")
        return path

    def read(self, relative: str) -> str:
        return self._inside(relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str) -> None:
        """Replace a file of the copy; its first text is remembered for the diff."""
        if relative in self._read_only:
            raise SandboxError(f"{relative} is a link to a file outside the workspace: "
                               f"the agent does not change it")
        if relative not in self._originals:
            self._originals[relative] = self.read(relative)
        self._inside(relative).write_text(text, encoding="utf-8")

    def changes(self) -> list[FileChange]:
        """The files whose text differs from the workspace's at the start, by path."""
        changed = []
        for relative, old_text in sorted(self._originals.items()):
            new_text = self.read(relative)
            if new_text != old_text:
                changed.append(FileChange(relative, old_text, new_text))
        return changed


@dataclass
class CopyPlan:
    """What goes into the copy: files, links kept inside it, outside files copied by content."""

    files: list[str]
    inside_links: dict[str, str]  # path → the link's new target, relative to its folder
    outside_copies: list[str]
    notes: list[str]
    total_bytes: int = 0

    def carry_out(self, workspace: Path, root: Path) -> None:
        for relative in [*self.files, *self.outside_copies]:
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            # Following links is right for both: files are not links, outside copies are.
            shutil.copyfile(workspace / relative, target)
            shutil.copymode(workspace / relative, target)
        for relative, link_target in self.inside_links.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).symlink_to(link_target)


def plan_copy(workspace: Path, max_copy_bytes: int) -> CopyPlan:
    """Decide each file's fate and check the size before anything is written."""
    plan = CopyPlan([], {}, [], [])
    for relative in workspace_files(workspace):
        source = workspace / relative
        if not source.parent.resolve().is_relative_to(workspace):
            plan.notes.append(f"{relative}: left out, its folder is a link to outside")
        elif source.is_symlink():
            _plan_link(workspace, relative, plan)
        elif stat.S_ISREG(source.lstat().st_mode):
            plan.files.append(relative)
            plan.total_bytes += source.lstat().st_size
        if plan.total_bytes > max_copy_bytes:
            raise SandboxError(
                f"the workspace's files come to more than {max_copy_bytes // 1024**2} MB, the "
                f"limit of the agent's copy: raise `smallcoder.agent.maxCopyMb`, or list big "
                f"data files in .gitignore")
    return plan


def _plan_link(workspace: Path, relative: str, plan: CopyPlan) -> None:
    link = workspace / relative
    target = link.resolve()
    shown = f"{relative} -> {os.readlink(link)}"
    if target.is_relative_to(workspace) and target.exists():
        plan.inside_links[relative] = os.path.relpath(target, link.parent.resolve())
    elif target.is_file():
        plan.outside_copies.append(relative)
        plan.total_bytes += target.stat().st_size
        plan.notes.append(f"{shown}: a link to a file outside the workspace; its content was "
                          f"copied, and the agent does not change it")
    else:
        what = "a folder outside the workspace" if target.is_dir() else "nothing"
        plan.notes.append(f"{shown}: a link to {what}; left out of the agent's copy")


def remove_stale_scratch() -> None:
    """Remove scratch folders (copies, report folders) left by agents that ended without
    cleaning up (killed, crashed): those named with a pid that no longer runs, and unnamed ones
    older than a day."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            # Only our own folders (Windows has no uids: every folder there is the user's).
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != getattr(os, "getuid", int)():
                continue
            owner = folder.name[len(SCRATCH_PREFIX):].split("-")[0]
            if owner.isdigit() and int(owner) != os.getpid():
                stale = not psutil.pid_exists(int(owner))
            else:
                stale = not owner.isdigit() and time.time() - info.st_mtime > UNOWNED_SCRATCH_AGE_S
            if stale:
                shutil.rmtree(folder, ignore_errors=True)


def link_leads_outside(workspace: Path, relative: str) -> bool:
    """True when writing `relative` in `workspace` would change a file outside it."""
    root = workspace.resolve()
    return not (root / relative).resolve().is_relative_to(root)


def workspace_files(workspace: Path) -> list[str]:
    """Relative paths of the files to copy: git's view when it is a repository, else a walk."""
    listed = _git_files(workspace)
    if listed is None:
        listed = _walked_files(workspace)
    return [path for path in listed if (workspace / path).is_file() or
            (workspace / path).is_symlink()]


def shared_folders(workspace: Path) -> list[str]:
    """Top-level folders holding a virtual environment or node_modules: shared, not copied."""
    return sorted(entry.name for entry in workspace.iterdir()
                  if entry.is_dir() and not entry.is_symlink()
                  and (entry.name in SHARED_FOLDERS or (entry / "pyvenv.cfg").is_file()))


def _git_files(workspace: Path) -> list[str] | None:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=workspace,
            capture_output=True, timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listing.returncode != 0:
        return None
    paths = [os.fsdecode(raw) for raw in listing.stdout.split(b"\0") if raw]
    # A virtual environment the project forgot to ignore is still shared, not copied.
    linked = tuple(f"{name}/" for name in shared_folders(workspace))
    return [path for path in paths if not path.startswith(linked)]


def _walked_files(workspace: Path) -> list[str]:
    found = []
    for folder, subfolders, files in os.walk(workspace):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS
                         and not (Path(folder, name) / "pyvenv.cfg").is_file()]
        # A link to a folder is listed like git lists it: as the link, not what it holds.
        links = [name for name in subfolders if Path(folder, name).is_symlink()]
        for name in [*files, *links]:
            if not name.endswith((".pyc", ".pyo")):
                found.append(Path(folder, name).relative_to(workspace).as_posix())
    return sorted(found)


def unified_diff(changes: list[FileChange]) -> str:
    """One unified diff of every change, with a/ and b/ prefixes like git's."""
    return "".join(
        "".join(difflib.unified_diff(change.old_text.splitlines(keepends=True),
                                     change.new_text.splitlines(keepends=True),
                                     f"a/{change.path}", f"b/{change.path}"))
        for change in changes)
