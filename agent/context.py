"""What the model is shown about failing tests, within a token budget.

Until the context packer lands: the failure messages, the failing test functions, the functions
of the workspace's own files in their tracebacks, the functions those call, and their imports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.failures import Failure, failure_text
from agent.sandbox import SKIPPED_FOLDERS
from analyzers.definitions import imports
from analyzers.functions import FunctionSpan, enclosing_function, find_function, functions
from analyzers.rewrite import dedented
from analyzers.syntax import language_for_path

CONTEXT_BUDGET_TOKENS = 8192
MAX_FAILURES_SHOWN = 5
# How many calls deep from the failing code functions are gathered (test → helper → helper).
CALL_DEPTH = 2
MAX_SOURCE_FILE_BYTES = 500_000
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class ShownFunction:
    path: str  # relative to the workspace
    span: FunctionSpan
    editable: bool  # test code is shown, never edited


@dataclass(frozen=True)
class FailureContext:
    failures: tuple[Failure, ...]
    functions: tuple[ShownFunction, ...]
    imports: dict[str, list[str]]  # path → import statements, for the files shown

    @property
    def editable(self) -> tuple[ShownFunction, ...]:
        return tuple(shown for shown in self.functions if shown.editable)


def is_test_file(path: str) -> bool:
    """Test code by the usual conventions: tests/ folders, test_*.py, *_test.py, conftest.py."""
    pure = PurePosixPath(path)
    stem = pure.stem
    return (stem.startswith("test_") or stem.endswith("_test") or stem in ("test", "tests",
            "conftest") or any(part in ("test", "tests") for part in pure.parts[:-1]))


def gather_context(root: Path, failures: tuple[Failure, ...],
                   count_tokens: Callable[[str], int],
                   budget_tokens: int = CONTEXT_BUDGET_TOKENS) -> FailureContext:
    """The failures and the functions around them, most relevant first, within the budget
    (the prompt's own words are left out of the count: keep a margin)."""
    sources = _SourceFiles(root)
    candidates: list[ShownFunction] = []
    for failure in failures[:MAX_FAILURES_SHOWN]:
        candidates += _failure_functions(sources, failure)
    for _ in range(CALL_DEPTH):
        candidates += _called_functions(sources, candidates)
    spent = sum(count_tokens(failure_text(failure)) for failure in failures[:MAX_FAILURES_SHOWN])
    chosen: list[ShownFunction] = []
    shown_imports: dict[str, list[str]] = {}
    seen: set[tuple[str, int]] = set()
    for shown in candidates:
        key = (shown.path, shown.span.start_byte)
        if key in seen:
            continue
        seen.add(key)
        new_imports = [] if shown.path in shown_imports else sources.imports(shown.path)
        cost = count_tokens(shown.span.text) + sum(count_tokens(line) for line in new_imports)
        if spent + cost > budget_tokens:
            continue
        spent += cost
        chosen.append(shown)
        shown_imports.setdefault(shown.path, new_imports)
    return FailureContext(failures[:MAX_FAILURES_SHOWN], _outermost(chosen), shown_imports)


def _outermost(chosen: list[ShownFunction]) -> tuple[ShownFunction, ...]:
    """Drop functions nested in another one shown: the outer one is shown and edited whole."""
    return tuple(inner for inner in chosen if not any(
        outer is not inner and outer.path == inner.path
        and outer.span.start_byte <= inner.span.start_byte
        and inner.span.end_byte <= outer.span.end_byte for outer in chosen))


def _failure_functions(sources: _SourceFiles, failure: Failure) -> list[ShownFunction]:
    """The test function itself, then every workspace function on its traceback, innermost first."""
    found = []
    test_path, _, test_name = failure.test_id.partition("::")
    if test_name and (span := sources.function(test_path, test_name.split("::")[-1]
                                               .split("[")[0])):
        found.append(ShownFunction(test_path, span, editable=False))
    for depth, frame in enumerate(reversed(failure.frames)):
        path = sources.relative(frame.file)
        if path is None or frame.function == "<module>":
            continue
        text = sources.text(path)
        language = language_for_path(path)
        if text is None or language is None:
            continue
        span = enclosing_function(text, language, frame.line - 1, 0)
        if span is None:
            continue
        # A function whose own `assert` failed is checking the code, like a test: not the bug.
        line = text.split("\n")[frame.line - 1].strip() if frame.line <= text.count("\n") else ""
        checking = depth == 0 and line.startswith("assert ")
        found.append(ShownFunction(path, span,
                                   editable=not is_test_file(path) and not checking))
    return found


def _called_functions(sources: _SourceFiles, shown: list[ShownFunction]) -> list[ShownFunction]:
    """Functions of the workspace's code files named in the functions already shown: the code
    under test is usually called from the test, not on the traceback."""
    names = {name for item in shown for name in IDENTIFIER.findall(item.span.text)}
    names -= {item.span.name for item in shown}
    known = {(item.path, item.span.start_byte) for item in shown}
    found = []
    for path in sources.code_files():
        text = sources.text(path)
        language = language_for_path(path)
        if text is None or language is None:
            continue
        for span in functions(text, language):
            if (span.name in names and "." not in span.qualified_name
                    and (path, span.start_byte) not in known):
                found.append(ShownFunction(path, span, editable=not is_test_file(path)))
    return found


class _SourceFiles:
    """The workspace's source files, read once each, by path relative to the root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._texts: dict[str, str | None] = {}

    def relative(self, file: str) -> str | None:
        path = Path(file)
        path = (path if path.is_absolute() else self.root / path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return None  # the standard library or an installed package: not ours to edit

    def text(self, path: str) -> str | None:
        if path not in self._texts:
            file = self.root / path
            try:
                too_big = file.stat().st_size > MAX_SOURCE_FILE_BYTES
                self._texts[path] = None if too_big else file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                self._texts[path] = None
        return self._texts[path]

    def function(self, path: str, name: str) -> FunctionSpan | None:
        text, language = self.text(path), language_for_path(path)
        if text is None or language is None:
            return None
        return find_function(text, language, name)

    def imports(self, path: str) -> list[str]:
        text, language = self.text(path), language_for_path(path)
        return [] if text is None or language is None else imports(text, language)

    def code_files(self) -> list[str]:
        """Python files of the workspace outside virtual environments and caches, tests last.
        os.walk does not follow the copy's links to virtual environments."""
        found = []
        for folder, subfolders, files in os.walk(self.root):
            subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS
                                   and not name.startswith("."))
            found += [Path(folder, name).relative_to(self.root).as_posix()
                      for name in sorted(files) if name.endswith(".py")]
        return sorted(found, key=is_test_file)


def render_function(shown: ShownFunction) -> str:
    return dedented(shown.span)
