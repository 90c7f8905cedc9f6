"""What the model is shown about failing tests, within a token budget, in any language the
tree-sitter front end reads: the agent-specific part, localisation, around the context packer.

Localisation ranks the workspace functions that may hold the bug (`rank_suspects`): those on
the failing tests' tracebacks, those the failing tests ran (coverage, for pytest: the runner's
trace), and those the failing code calls or names, a step at a time (a failure whose assertion
sits in the test itself still leads to the code under test). The prompt shows the failure
messages, the failing test functions (or, for an anonymous test such as a `test('…', () => …)`
callback, the block around its failing line), the best few suspects whole, and the imports of
their files; the packer (`Target(kind="tests")`) fills the rest of the budget with what those
use and their callers, across files: callees, types, constants.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from agent.failures import Failure, failure_text
from agent.sandbox import SKIPPED_FOLDERS
from analyzers.definitions import imports
from analyzers.functions import FunctionSpan, enclosing_function, functions
from analyzers.index import WorkspaceIndex
from analyzers.packer import MAX_BUDGET_TOKENS, Frame, Snippet, Target, pack
from analyzers.rewrite import dedented
from analyzers.syntax import language_for_path, parse

CONTEXT_BUDGET_TOKENS = 8192
MAX_FAILURES_SHOWN = 5
# How many calls deep from the failing code functions are gathered (test → helper → helper).
CALL_DEPTH = 2
# Functions a step of the call walk adds at most, the best ranked (the budget may cut more).
MAX_CALLED_PER_STEP = 8
# Suspects shown whole (and offered for editing): the best few, not everything ranked. A small
# model asked to choose among many functions rewrites the wrong one.
MAX_SUSPECTS_SHOWN = 3
# Localisation scores: a function on a failing traceback (the innermost most), one the failing
# tests ran (times the share of them that ran it), one the failing code calls (step 1, then 2).
TRACEBACK_SCORE = 3.0
TRACEBACK_DEPTH_STEP = 0.5  # less per frame further out from the innermost workspace frame
COVERED_SCORE = 2.0
CALLED_SCORE = (1.0, 0.5)
CALLED_BY_MORE_BONUS = 0.1  # per further shown function calling it
# With coverage known, a function the failing tests never ran is hardly where they fail.
NOT_RUN_FACTOR = 0.2
MAX_SOURCE_FILE_BYTES = 500_000
MAX_SOURCE_FILES = 2000
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# A call: `name(`, Rust's `name!(`, and the method in `object.name(`.
CALL = re.compile(r"([A-Za-z_]\w*)\s*!?\(")
# Build output and dependencies in a project's tree: not the project's code.
BUILD_FOLDERS = frozenset({"target", "build", "dist", "out", "vendor", "coverage", "bin",
                           "obj", "cmake-build-debug"})
# A line that checks a result: the bug is in what it checks, not in the line.
CHECKING_LINE = re.compile(r"^\s*(?:assert\b|assert_\w*!|assert\w*\(|expect\(|t\.(?:Error|Fatal)"
                           r"|require\.)")
# Test files by name: JS/TS `*.test.ts`, `*.spec.js`; Go `*_test.go`; Java `*Test.java`.
TEST_FILE_STEM = re.compile(r"^test_|_test$|_tests$|\.(?:test|spec)$|^(?:test|tests|conftest)$"
                            r"|[a-z0-9]Tests?$")
TEST_FOLDERS = frozenset({"test", "tests", "__tests__", "spec", "testing"})
# Node types of a function without a name, as a test's body is: `() => {…}`, `|| {…}`.
ANONYMOUS_FUNCTIONS = frozenset({"arrow_function", "function_expression", "function",
                                 "closure_expression", "func_literal", "lambda_expression",
                                 "lambda"})
MAX_TEST_BLOCK_LINES = 60
# Of the packer's choice, what the prompt already holds its own way: each file's imports.
PACKED_KINDS_SHOWN_ELSEWHERE = frozenset({"header", "target"})

# The functions each test ran, by test id: (path relative to the root, 1-based first line, name).
Coverage = Mapping[str, tuple[tuple[str, int, str], ...]]
# Languages whose methods cannot stand outside their class: a method is shown in its class's
# declaration, with the class's fields (what its methods read), as the model knows such code.
CLASS_BOUND_LANGUAGES = frozenset({"java"})
CLASS_NODE_TYPES = frozenset({"class_declaration", "interface_declaration", "enum_declaration",
                              "record_declaration"})
FIELD_NODE_TYPES = frozenset({"field_declaration", "constant_declaration"})


@dataclass(frozen=True)
class ShownFunction:
    path: str  # relative to the workspace
    span: FunctionSpan
    editable: bool  # test code is shown, never edited
    # The declarations of the classes it stands in, outermost first, each from its line's
    # start to its `{` and then its fields; only in CLASS_BOUND_LANGUAGES.
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suspect:
    """A function that may hold the bug, how likely (higher is likelier) and why."""

    function: ShownFunction
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class FailureContext:
    failures: tuple[Failure, ...]
    functions: tuple[ShownFunction, ...]
    imports: dict[str, list[str]]  # path → import statements, for the files shown
    related: tuple[Snippet, ...] = ()  # the packer's: what the functions use, their callers
    suspects: tuple[Suspect, ...] = ()  # the whole ranking, best first

    @property
    def editable(self) -> tuple[ShownFunction, ...]:
        return tuple(shown for shown in self.functions if shown.editable)


def is_test_file(path: str) -> bool:
    """Test code by the usual conventions: tests/ folders, test_*.py, *_test.py, conftest.py,
    *.test.js, *.spec.ts, *_test.go, FooTest.java, src/test/."""
    pure = PurePosixPath(path)
    return bool(TEST_FILE_STEM.search(pure.stem)) or any(
        part in TEST_FOLDERS for part in pure.parts[:-1])


def is_test_code(path: str, span: FunctionSpan) -> bool:
    """In a test file, or in Rust's `mod tests` beside the code."""
    return is_test_file(path) or span.qualified_name.split(".")[0] in ("tests", "test")


def gather_context(root: Path, failures: tuple[Failure, ...],
                   count_tokens: Callable[[str], int],
                   budget_tokens: int = CONTEXT_BUDGET_TOKENS, *,
                   coverage: Coverage | None = None,
                   index: WorkspaceIndex | None = None) -> FailureContext:
    """The failures, the failing tests, the best suspects and what the packer adds around them,
    most relevant first, within the budget (the prompt's own words are left out of the count:
    keep a margin). `coverage` sharpens the ranking; `index` (of `root`, kept current by the
    caller) spares building one."""
    sources = _SourceFiles(root)
    shown_failures = failures[:MAX_FAILURES_SHOWN]
    suspects = rank_suspects(sources, shown_failures, coverage)
    tests: list[ShownFunction] = []
    for failure in shown_failures:
        tests += [item for item in _failure_functions(sources, failure) if not item.editable]
    candidates = tests + [suspect.function for suspect in suspects[:MAX_SUSPECTS_SHOWN]]
    spent = sum(count_tokens(failure_text(failure)) for failure in shown_failures)
    chosen: list[ShownFunction] = []
    shown_imports: dict[str, list[str]] = {}
    seen: set[tuple[str, int]] = set()
    shown_classes: set[str] = set()
    for shown in candidates:
        key = (shown.path, shown.span.start_byte)
        if key in seen:
            continue
        seen.add(key)
        new_imports = [] if shown.path in shown_imports else sources.imports(shown.path)
        shown = replace(shown, classes=sources.classes_around(shown.path, shown.span))
        new_classes = [header for header in shown.classes if header not in shown_classes]
        cost = (count_tokens(shown.span.text) + sum(count_tokens(line) for line in new_imports)
                + sum(count_tokens(header) for header in new_classes))
        if spent + cost > budget_tokens:
            continue
        spent += cost
        shown_classes.update(new_classes)
        chosen.append(shown)
        shown_imports.setdefault(shown.path, new_imports)
    functions_shown = _outermost(chosen)
    weights = {(s.function.path, s.function.span.start_byte): s.score for s in suspects}
    related = _packed_around(sources, functions_shown, weights, count_tokens,
                             budget_tokens - spent, index)
    return FailureContext(shown_failures, functions_shown, shown_imports, related,
                          tuple(suspects))


def rank_suspects(sources: _SourceFiles, failures: tuple[Failure, ...],
                  coverage: Coverage | None = None) -> list[Suspect]:
    """The editable workspace functions that may hold the bug, likeliest first: on the
    tracebacks (innermost first), run by the failing tests (when `coverage` says), called or
    named by the failing code. Ties keep the order in which they were found."""
    scores: dict[tuple[str, int], float] = {}
    reasons: dict[tuple[str, int], list[str]] = {}
    found: dict[tuple[str, int], ShownFunction] = {}

    def note(item: ShownFunction, score: float, reason: str) -> None:
        key = (item.path, item.span.start_byte)
        found.setdefault(key, item)
        scores[key] = scores.get(key, 0.0) + score
        reasons.setdefault(key, []).append(reason)

    shown: list[ShownFunction] = []
    for failure in failures:
        on_trace = _failure_functions(sources, failure)
        shown += on_trace
        editable_frames = [item for item in on_trace if item.editable]
        for depth, item in enumerate(editable_frames):
            note(item, max(TRACEBACK_SCORE - TRACEBACK_DEPTH_STEP * depth, CALLED_SCORE[0]),
                 f"on the traceback of {failure.test_id}")
    for step in range(CALL_DEPTH):
        called = _called_functions(sources, shown)
        for item, calls in called:
            if item.editable:
                note(item, CALLED_SCORE[min(step, len(CALLED_SCORE) - 1)]
                     + CALLED_BY_MORE_BONUS * max(0, calls - 1),
                     "called by the failing code" if calls else "named by the failing code")
        shown += [item for item, _ in called]
    traced = [failure.test_id for failure in failures if failure.test_id in (coverage or {})]
    if coverage and traced:
        ran: Counter[tuple[str, int]] = Counter()
        for test_id in traced:
            for item in {(s.path, s.span.start_byte): s for s in
                         _covered_functions(sources, coverage[test_id])}.values():
                ran[(item.path, item.span.start_byte)] += 1
                if item.editable:
                    found.setdefault((item.path, item.span.start_byte), item)
        for key in found:
            if ran[key]:
                scores[key] = scores.get(key, 0.0) + COVERED_SCORE * ran[key] / len(traced)
                reasons.setdefault(key, []).append(
                    f"run by {ran[key]} of {len(traced)} failing test(s)")
            else:
                scores[key] = scores.get(key, 0.0) * NOT_RUN_FACTOR
                reasons.setdefault(key, []).append("not run by the failing tests")
    order = list(found)
    ranked = sorted(order, key=lambda key: (-scores[key], order.index(key)))
    return [Suspect(found[key], round(scores[key], 3), tuple(reasons[key])) for key in ranked]


def _covered_functions(sources: _SourceFiles, ran: tuple[tuple[str, int, str], ...]
                       ) -> list[ShownFunction]:
    """The workspace functions a trace names, as spans (its lines are the code's first lines:
    a decorated function's span starts at its decorator)."""
    found = []
    for path, line, name in ran:
        for span in sources.functions(path):
            if span.name == name and span.start_point[0] + 1 <= line <= span.end_point[0] + 1:
                found.append(ShownFunction(path, span, editable=not is_test_code(path, span)))
                break
    return found


def _packed_around(sources: _SourceFiles, shown: tuple[ShownFunction, ...],
                   scores: dict[tuple[str, int], float], count_tokens: Callable[[str], int],
                   budget_tokens: int, index: WorkspaceIndex | None) -> tuple[Snippet, ...]:
    """The packer's choice for the failing tests: what the shown functions use (callees, types,
    constants, across files) and their callers, less what the prompt holds already."""
    if not shown or budget_tokens <= 0:
        return ()
    if index is None:
        index = WorkspaceIndex(sources.root)
        index.refresh()
        index.prepare_lookups()
    first = shown[0]
    text = sources.text(first.path) or ""
    best = max(scores.values(), default=1.0) or 1.0
    frames = tuple(Frame(item.path, item.span.start_point[0],
                         weight=scores.get((item.path, item.span.start_byte), best) / best,
                         shown=True) for item in shown[1:])
    target = Target(first.path, text, first.span.start_point[0], kind="tests", frames=frames,
                    shown=(first.span.start_point[0], first.span.end_point[0]))
    packed = pack(target, min(budget_tokens, MAX_BUDGET_TOKENS), count_tokens, index=index)
    return tuple(snippet for snippet in packed.snippets
                 if snippet.kind not in PACKED_KINDS_SHOWN_ELSEWHERE)


def _outermost(chosen: list[ShownFunction]) -> tuple[ShownFunction, ...]:
    """Drop functions nested in another one shown: the outer one is shown and edited whole."""
    return tuple(inner for inner in chosen if not any(
        outer is not inner and outer.path == inner.path
        and outer.span.start_byte <= inner.span.start_byte
        and inner.span.end_byte <= outer.span.end_byte for outer in chosen))


def _failure_functions(sources: _SourceFiles, failure: Failure) -> list[ShownFunction]:
    """The test function itself, then every workspace function on its traceback, innermost first."""
    found = []
    test_path, test_name = _test_path_and_name(failure.test_id)
    span = sources.function(test_path, test_name) if test_path else None
    if span is not None:
        found.append(ShownFunction(test_path, span, editable=False))
    elif test_name and (named := sources.test_function_named(test_name)) is not None:
        found.append(ShownFunction(*named, editable=False))
    for depth, frame in enumerate(reversed(failure.frames)):
        path = sources.relative(frame.file)
        if path is None or frame.function == "<module>" or frame.line < 1:
            continue
        text = sources.text(path)
        language = language_for_path(path)
        if text is None or language is None:
            continue
        span = enclosing_function(text, language, frame.line - 1, 0)
        if span is None and is_test_file(path):
            span = _enclosing_block(text, language, frame.line - 1, test_name)
        if span is None:
            continue
        # A function whose own check failed is checking the code, like a test: not the bug.
        lines = text.split("\n")
        line = lines[frame.line - 1] if frame.line <= len(lines) else ""
        checking = depth == 0 and bool(CHECKING_LINE.match(line))
        found.append(ShownFunction(path, span, editable=not is_test_code(path, span)
                                   and not checking and span.name != test_name))
    return found


def _test_path_and_name(test_id: str) -> tuple[str, str]:
    """The test's file when its id starts with one (pytest, node, vitest), and its own name:
    `tests/test_a.py::TestA::test_b[1]` → test_b, `tests::adds` → adds,
    `calc.CalcTest::meanOfThree` → meanOfThree, `file::suite > case` → case."""
    first, _, rest = test_id.partition("::")
    name = test_id.rsplit("::", 1)[-1].split("[")[0].split(" > ")[-1].strip()
    return (first if rest and PurePosixPath(first).suffix else ""), name


def _enclosing_block(text: str, language: str, line: int, name: str) -> FunctionSpan | None:
    """The anonymous function around a line, as a test's callback is, as a span to show."""
    source = text.encode()
    offset = len("\n".join(text.split("\n")[:line]).encode()) + (1 if line else 0)
    node = parse(text, language).root_node.descendant_for_byte_range(offset, offset)
    while node is not None and node.type not in ANONYMOUS_FUNCTIONS:
        node = node.parent
    if node is None or node.end_point[0] - node.start_point[0] > MAX_TEST_BLOCK_LINES:
        return None
    # From the start of its line, the call that names the test (`it('adds', () => {`), to the
    # end of that call's statement (`});`).
    start = source.rfind(b"\n", 0, node.start_byte) + 1
    end = node
    while end.parent is not None and end.parent.type in ("arguments", "call_expression",
                                                         "expression_statement"):
        end = end.parent
    block = source[start:end.end_byte].decode(errors="replace")
    return FunctionSpan(name or "test", name or "test", "arrow", start, end.end_byte,
                        (node.start_point[0], 0), end.end_point, block.split("\n")[0], start,
                        None, block)


def _called_functions(sources: _SourceFiles, shown: list[ShownFunction]
                      ) -> list[tuple[ShownFunction, int]]:
    """Workspace functions and methods that the functions already shown call (or name): the
    code under test is usually called from the test, not on the traceback. Ranked: code
    before tests, then called by more of the shown functions, then called rather than named."""
    called: Counter[str] = Counter()
    named: set[str] = set()
    for item in shown:
        body = item.span.text
        called.update(set(CALL.findall(body)) - {item.span.name})
        named.update(IDENTIFIER.findall(body))
    named -= {item.span.name for item in shown}
    known = {(item.path, item.span.start_byte) for item in shown}
    ranked = []
    for path in sources.code_files():
        for span in sources.functions(path):
            if (span.name in named and (path, span.start_byte) not in known
                    and ("." not in span.qualified_name or called[span.name])):
                test = is_test_code(path, span)
                ranked.append(((test, -called[span.name], span.name not in called),
                               ShownFunction(path, span, editable=not test), called[span.name]))
    ranked.sort(key=lambda entry: entry[0])
    return [(item, calls) for _, item, calls in ranked[:MAX_CALLED_PER_STEP]]


class _SourceFiles:
    """The workspace's source files, read once each, by path relative to the root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._texts: dict[str, str | None] = {}
        self._functions: dict[str, list[FunctionSpan]] = {}
        self._code_files: list[str] | None = None

    def relative(self, file: str) -> str | None:
        """The workspace path of a file a frame names: absolute, relative to the root, or the
        end of a path (a JVM frame says `calc/CalcTest.java`, under src/test/java)."""
        path = Path(file)
        path = (path if path.is_absolute() else self.root / path).resolve()
        try:
            relative = path.relative_to(self.root).as_posix()
        except ValueError:
            return None  # the standard library or an installed package: not ours to edit
        if (self.root / relative).is_file() or Path(file).is_absolute():
            return relative
        ending = "/" + PurePosixPath(file).as_posix().removeprefix("./")
        return next((known for known in self.code_files() if known.endswith(ending)), None)

    def text(self, path: str) -> str | None:
        if path not in self._texts:
            file = self.root / path
            try:
                too_big = file.stat().st_size > MAX_SOURCE_FILE_BYTES
                self._texts[path] = None if too_big else file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                self._texts[path] = None
        return self._texts[path]

    def functions(self, path: str) -> list[FunctionSpan]:
        if path not in self._functions:
            text, language = self.text(path), language_for_path(path)
            self._functions[path] = ([] if text is None or language is None
                                     else functions(text, language))
        return self._functions[path]

    def function(self, path: str, name: str) -> FunctionSpan | None:
        return next((span for span in self.functions(path)
                     if name in (span.qualified_name, span.name)), None)

    def test_function_named(self, name: str) -> tuple[str, FunctionSpan] | None:
        """The test function of this name (Go's TestAdd, Java's meanOfThree, Rust's adds)."""
        return next(((path, span) for path in self.code_files() for span in self.functions(path)
                     if span.name == name and is_test_code(path, span)), None)

    def classes_around(self, path: str, span: FunctionSpan) -> tuple[str, ...]:
        """The declarations (to the `{`, then the fields) of the classes `span` stands in, in
        the languages whose methods cannot stand alone."""
        text, language = self.text(path), language_for_path(path)
        if text is None or language not in CLASS_BOUND_LANGUAGES:
            return ()
        source = text.encode()
        node = parse(text, language).root_node.descendant_for_byte_range(span.body_start_byte,
                                                                         span.body_start_byte)
        found = []
        while node is not None:
            body = node.child_by_field_name("body") if node.type in CLASS_NODE_TYPES else None
            if body is not None:
                parts = [source[_line_start(source, node.start_byte):body.start_byte + 1]]
                parts += [source[_line_start(source, child.start_byte):child.end_byte]
                          for child in body.named_children if child.type in FIELD_NODE_TYPES]
                found.append(b"\n".join(parts).decode(errors="replace"))
            node = node.parent
        return tuple(reversed(found))

    def imports(self, path: str) -> list[str]:
        text, language = self.text(path), language_for_path(path)
        return [] if text is None or language is None else imports(text, language)

    def code_files(self) -> list[str]:
        """Source files of the workspace in the languages the front end reads, outside virtual
        environments, caches and build output, tests last. os.walk does not follow the copy's
        links to virtual environments and node_modules."""
        if self._code_files is None:
            found: list[str] = []
            for folder, subfolders, files in os.walk(self.root):
                subfolders[:] = sorted(name for name in subfolders
                                       if name not in SKIPPED_FOLDERS | BUILD_FOLDERS
                                       and not name.startswith("."))
                found += [Path(folder, name).relative_to(self.root).as_posix()
                          for name in sorted(files) if language_for_path(name) is not None]
                if len(found) > MAX_SOURCE_FILES:
                    break
            self._code_files = sorted(found[:MAX_SOURCE_FILES], key=is_test_file)
        return self._code_files


def _line_start(source: bytes, offset: int) -> int:
    return source.rfind(b"\n", 0, offset) + 1


def render_function(shown: ShownFunction) -> str:
    return dedented(shown.span)


def render_functions(shown: list[ShownFunction]) -> str:
    """Functions of one file as the model is shown them, in file order: each at column 0, or,
    in CLASS_BOUND_LANGUAGES, the methods of a class inside its declaration and fields."""
    groups: list[tuple[tuple[str, ...], list[str]]] = []
    for item in shown:
        if not groups or groups[-1][0] != item.classes:
            groups.append((item.classes, []))
        indent = _indent_of(item.classes[-1]) + "    " if item.classes else ""
        groups[-1][1].append(textwrap.indent(render_function(item), indent))
    texts = []
    for classes, functions_text in groups:
        body = "\n\n\n".join(functions_text) if not classes else "\n\n".join(functions_text)
        if classes:
            closing = "\n".join(f"{_indent_of(header)}}}" for header in reversed(classes))
            body = "\n".join(classes) + "\n\n" + body + "\n" + closing
        texts.append(body)
    return "\n\n\n".join(texts)


def _indent_of(text: str) -> str:
    return text[:len(text) - len(text.lstrip())]
