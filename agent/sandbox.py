"""The scratch copy the agent works in, so that the user's files never change before they accept.

The copy holds tracked and untracked-not-ignored files (`git ls-files -co --exclude-standard`),
or, outside git, every file except caches; virtual environments and node_modules are linked.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Folders never copied when walking a workspace that is not a git repository.
SKIPPED_FOLDERS = frozenset({".git", ".hg", ".svn", "__pycache__", ".pytest_cache",
                             ".mypy_cache", ".ruff_cache", ".tox", "venv", ".venv", "env",
                             "node_modules"})
# Top-level folders reused by a symbolic link rather than copied: big, and read-only for tests.
LINKED_FOLDERS = ("node_modules",)
GIT_TIMEOUT_S = 30


class SandboxError(Exception):
    """The workspace cannot be copied; the message says why."""


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the workspace, with forward slashes
    old_text: str
    new_text: str


class Sandbox:
    """A private copy of `workspace` under the temporary folder; remove it with `close()`."""

    def __init__(self, workspace: Path) -> None:
        workspace = workspace.resolve()
        if not workspace.is_dir():
            raise SandboxError(f"workspace {workspace} is not a folder")
        self.workspace = workspace
        self.root = Path(tempfile.mkdtemp(prefix="smallcoder-agent-"))
        self._originals: dict[str, str] = {}
        try:
            for relative in workspace_files(workspace):
                target = self.root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(workspace / relative, target, follow_symlinks=False)
            for name in linked_folders(workspace):
                (self.root / name).symlink_to(workspace / name, target_is_directory=True)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def read(self, relative: str) -> str:
        return (self.root / relative).read_text(encoding="utf-8")

    def write(self, relative: str, text: str) -> None:
        """Replace a file of the copy; its first text is remembered for the diff."""
        if relative not in self._originals:
            self._originals[relative] = self.read(relative)
        (self.root / relative).write_text(text, encoding="utf-8")

    def changes(self) -> list[FileChange]:
        """The files whose text differs from the workspace's at the start, by path."""
        changed = []
        for relative, old_text in sorted(self._originals.items()):
            new_text = self.read(relative)
            if new_text != old_text:
                changed.append(FileChange(relative, old_text, new_text))
        return changed


def workspace_files(workspace: Path) -> list[str]:
    """Relative paths of the files to copy: git's view when it is a repository, else a walk."""
    listed = _git_files(workspace)
    if listed is None:
        listed = _walked_files(workspace)
    return [path for path in listed if (workspace / path).is_file() or
            (workspace / path).is_symlink()]


def linked_folders(workspace: Path) -> list[str]:
    """Top-level folders holding a virtual environment or node_modules: linked, not copied."""
    return sorted(entry.name for entry in workspace.iterdir()
                  if entry.is_dir() and not entry.is_symlink()
                  and (entry.name in LINKED_FOLDERS or (entry / "pyvenv.cfg").is_file()))


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
    # A virtual environment the project forgot to ignore is still linked, not copied.
    linked = tuple(f"{name}/" for name in linked_folders(workspace))
    return [path for path in paths if not path.startswith(linked)]


def _walked_files(workspace: Path) -> list[str]:
    found = []
    for folder, subfolders, files in os.walk(workspace):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_FOLDERS
                         and not (Path(folder, name) / "pyvenv.cfg").is_file()]
        for name in files:
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
