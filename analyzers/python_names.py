"""Where the names a Python file uses come from: the workspace modules it imports (plain string
work on its import statements, fast enough for every keystroke), and jedi's resolution of the
names used in a region, across the workspace's files and into installed packages.

jedi is slow on first use of a module (it parses and caches it), so callers cap the names.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analyzers.bm25 import IDENTIFIER
from analyzers.definitions import Definition, import_statements, references
from analyzers.index import WorkspaceIndex
from analyzers.snippets import Snippet, cached_definitions, header_line
from analyzers.syntax import parse

# Names jedi resolves per call; each costs a goto, a few milliseconds once its cache is warm.
MAX_NAMES_PER_REGION = 40

# jedi is not thread-safe (its fast parser reuses modules): one resolution at a time.
_jedi_lock = threading.Lock()


def module_maps(text: str, own: str, index: WorkspaceIndex,
                max_names: int) -> list[tuple[str, Snippet]]:
    """For each workspace module the file `own` (posix, relative to the index's root) imports
    whole, the name it is imported as and one line per top-level definition: the names it offers
    (`sql.Function`), at most `max_names`, those the file uses from it first; unscored. The model
    cannot guess which of a module's names exist; a line each tells it for a few tokens."""
    found = []
    for alias, path in _imported_modules(text, own, index).items():
        entry, module_text = index.entry(path), index.text_of(path)
        if entry is None or module_text is None:
            continue
        top, end = [], -1
        for definition in sorted(entry.definitions, key=lambda d: d.start_line):
            if definition.start_line > end:
                top.append(definition)
                end = definition.end_line
        used = Counter(re.findall(rf"\b{re.escape(alias)}\.({IDENTIFIER.pattern})", text))
        chosen = sorted((d for d in top if d.name in used or not d.name.startswith("_")),
                        key=lambda d: (-used[d.name], d.start_line))[:max_names]
        if not chosen:
            continue
        body = "\n".join(f"{header_line(d, 'python')} ..."
                          for d in sorted(chosen, key=lambda d: d.start_line))
        found.append((alias, Snippet(
            path, chosen[0].start_line, max(d.end_line for d in chosen), body, "imported",
            f"the names of module `{alias}`, which the target imports", 0.0, outline=True)))
    return found


def _imported_modules(text: str, own: str, index: WorkspaceIndex) -> dict[str, str]:
    """The name each workspace module is imported whole as by the file `own` (posix, relative
    to the index's root), and its path in the index: `from . import utils`, `from pkg import
    fields as f`, `import pkg.sql as s`."""
    modules: dict[str, str] = {}
    for alias, level, parts in _module_imports(text):
        path = _module_path(own, parts, level, index)
        if path is not None:
            modules[alias] = path
    return modules


@functools.lru_cache(maxsize=16)
def _module_imports(text: str) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    """(name in the file, leading dots, dotted parts) of each name a Python file imports that
    may be a module: `from .. import sql as s` gives ("s", 2, ("sql",))."""
    found = []
    for statement in import_statements(text, "python"):
        node = parse(statement.text, "python").root_node.children[0]
        source, level, parts = node.child_by_field_name("module_name"), 0, []
        if node.type == "import_from_statement" and source is not None:
            dotted = source.text.decode()
            level = len(dotted) - len(dotted.lstrip("."))
            parts = [part for part in dotted.lstrip(".").split(".") if part]
        elif node.type != "import_statement":
            continue
        for name in node.children_by_field_name("name"):
            dotted, alias = _import_name(name)
            found.append((alias, level, (*parts, *dotted.split("."))))
    return tuple(found)


def _import_name(node) -> tuple[str, str]:
    """`a.b` → ("a.b", "a.b"); `a.b as c` → ("a.b", "c")."""
    if node.type == "aliased_import":
        name, alias = node.child_by_field_name("name"), node.child_by_field_name("alias")
        return name.text.decode(), alias.text.decode()
    return node.text.decode(), node.text.decode()


def _module_path(own: str, parts: Sequence[str], level: int,
                 index: WorkspaceIndex) -> str | None:
    """The indexed file of module `parts`: relative to the importing file `own` (posix, relative
    to the index's root) for `level` dots, else the longest tail of the dotted name found in a
    folder above it (the workspace need not start at the package's parent). Plain string work:
    a big test file imports hundreds of names, and this runs on every keystroke."""
    if own.startswith("/"):
        return None  # a file outside the workspace: no module it names is indexed
    folders = own.split("/")[:-1]
    if level:
        bases = ["/".join(folders[:len(folders) + 1 - level])] if level <= len(folders) + 1 else []
        tails = [parts]
    else:
        bases = ["/".join(folders[:count]) for count in range(len(folders), -1, -1)]
        tails = [parts[start:] for start in range(len(parts))]
    for tail in tails:
        module = "/".join(tail)
        for base in bases:
            stem = f"{base}/{module}" if base else module
            for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
                if index.entry(candidate) is not None:
                    return candidate
    return None


@dataclass(frozen=True)
class UsedDefinition:
    """A name a region uses and the module jedi found its definition in, as a prompt shows it."""

    name: str
    path: str  # relative to the project, or an installed module's from its top-level package
    text: str  # the module's text
    definition: Definition


def used_definitions(text: str, path: str, project_root: Path, start_line: int,
                     end_line: int) -> list[UsedDefinition]:
    """`resolve_region` for a file `path` (relative to `project_root`, or absolute), leaving out
    builtins and the standard library (the model knows them), modules it cannot read and
    definitions our queries do not find there."""
    relative = Path(path)
    absolute = relative if relative.is_absolute() else project_root / relative
    found = []
    for name in resolve_region(text, absolute, project_root, start_line, end_line):
        if name.module_path.suffix == ".pyi" and "typeshed" in name.module_path.parts:
            continue  # builtins and the standard library: the model knows them
        module_text = _read(name.module_path)
        if module_text is None:
            continue
        defined = [d for d in cached_definitions(module_text, "python")
                   if d.start_line == name.start_line]
        installed = {"site-packages", "dist-packages"} & set(name.module_path.parts)
        shown = (name.module_path.resolve().relative_to(project_root.resolve()).as_posix()
                 if name.in_workspace and not installed
                 else _package_path(name.module_path))
        if defined:
            found.append(UsedDefinition(name.name, shown, module_text, defined[0]))
    return found


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


def _package_path(module_path: Path) -> str:
    """An installed module named from its top-level package: `json/__init__.py`."""
    parts = Path(module_path).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1:])
    return "/".join(parts[-2:])


def _read(path: Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
