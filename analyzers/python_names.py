"""Python name resolution with jedi: where the names used in a region of a file are defined,
across the workspace's files and into installed packages.

jedi is slow on first use of a module (it parses and caches it), so callers cap the names.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from analyzers.definitions import references

# Names resolved per call; each costs jedi a goto, a few milliseconds once its cache is warm.
MAX_NAMES_PER_REGION = 40

# jedi is not thread-safe (its fast parser reuses modules): one resolution at a time.
_jedi_lock = threading.Lock()


@dataclass(frozen=True)
class ResolvedName:
    """A name used in the region and the definition it resolves to (1-based `line`s as jedi's
    are turned into 0-based ones here)."""

    name: str
    module_path: Path
    start_line: int
    end_line: int  # inclusive
    kind: str  # jedi's type: "function", "class", "module", "statement", …
    in_workspace: bool


def resolve_region(text: str, path: Path, project_root: Path, start_line: int, end_line: int,
                   *, max_names: int = MAX_NAMES_PER_REGION) -> list[ResolvedName]:
    """Definitions of the distinct names used on 0-based lines start_line..end_line of `text`,
    in the order the names first appear; names defined inside the region itself are left out."""
    wanted, seen = [], set()
    for reference in references(text, "python", (start_line, end_line)):
        if reference.name not in seen:
            seen.add(reference.name)
            wanted.append(reference)
    import jedi  # imported on first use: it takes a moment, and completion never needs it

    lines = text.split("\n")
    resolved: list[ResolvedName] = []
    root = project_root.resolve()
    with _jedi_lock:
        script = jedi.Script(text, path=path, project=jedi.Project(root))
        for reference in wanted[:max_names]:
            # jedi's columns count characters; tree-sitter's count bytes.
            column = len(lines[reference.line].encode()[:reference.column].decode(
                errors="replace"))
            try:
                names = script.goto(reference.line + 1, column, follow_imports=True)
            except Exception:  # jedi raises assorted errors on code it cannot infer
                continue
            for name in names[:1]:
                found = _resolved(reference.name, name, path, root, start_line, end_line)
                if found is not None:
                    resolved.append(found)
    return resolved


def _resolved(used: str, name, path: Path, root: Path, start_line: int,
              end_line: int) -> ResolvedName | None:
    module_path = name.module_path
    if module_path is None or name.line is None or name.type == "param":
        return None
    module_path = Path(module_path)
    start = name.get_definition_start_position()
    end = name.get_definition_end_position()
    if start is None or end is None:
        return None
    first, last = start[0] - 1, end[0] - 1
    if module_path.resolve() == path.resolve() and start_line <= first <= end_line:
        return None  # defined in the region itself
    try:
        module_path.resolve().relative_to(root)
        in_workspace = True
    except ValueError:
        in_workspace = False
    return ResolvedName(used, module_path, first, last, name.type, in_workspace)
