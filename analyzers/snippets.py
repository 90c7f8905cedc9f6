"""Code as it goes into a prompt: what it is for (`Target`), each piece with why it was chosen
(`Snippet`), a definition shown whole or as an outline, and the ring buffer of recent code.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from analyzers.definitions import (
    Definition,
    ImportStatement,
    Reference,
    definitions,
    import_statements,
    references,
)
from analyzers.index import SymbolLocation, WorkspaceIndex

MAX_FULL_DEFINITION_LINES = 40  # a longer definition is shown as an outline
RECENT_CHUNKS = 16  # size of the ring buffer
RECENT_CHUNK_LINES = 16  # lines around the cursor kept per ring-buffer chunk
MAX_CONSTANT_LINES = 12  # a module-level constant longer than this (a table) is cut
# A module-level constant or variable set at the start of an unindented line: `LIMIT = 3`,
# `RATES: dict = {`, `const LIMIT = 3;`, `export const`, Go's `const Limit =`, Rust's `const`.
CONSTANT_LINE = r"^(?:export\s+)?(?:(?:pub|const|let|var|static|final)\s+)*{name}\s*(?::[^=\n]*)?="


@dataclass(frozen=True)
class Frame:
    """One frame of a failing test's traceback, or a function localisation suspects: a file
    and a 0-based line. `weight` (0…1) scales its score by how likely it holds the bug; a
    `shown` frame's function is in the prompt already: only what it uses and its callers are
    packed."""

    path: str
    line: int
    weight: float = 1.0
    shown: bool = False


@dataclass(frozen=True)
class Target:
    """What the context is for: a cursor, a function, or failing tests (their frames).

    `path` is relative to the workspace index's root (or absolute outside it); `line` is 0-based.
    `shown` are the 0-based first and last lines of the file that the prompt holds already
    (inline completion's FIM prefix and suffix): nothing that overlaps them is packed, and the
    rest of the file is a candidate like any other file (its imports, the class around the
    cursor, the lines like those just typed). A file's far end is as unseen as another file.
    """

    path: str
    text: str
    line: int
    kind: str = "cursor"  # "cursor" | "function" | "tests"
    frames: tuple[Frame, ...] = ()
    shown: tuple[int, int] | None = None


@dataclass(frozen=True)
class Snippet:
    """A piece of code for the prompt, why it was chosen, and its exact cost in tokens."""

    path: str
    start_line: int  # 0-based, inclusive
    end_line: int
    text: str
    kind: str  # one of the packer's STABILITY_ORDER
    reason: str
    score: float
    tokens: int = 0
    outline: bool = False  # signatures only: goes along with full snippets of its lines


class RecentChunks:
    """A ring buffer of recently edited and viewed chunks, as llama.vscode keeps."""

    def __init__(self, size: int = RECENT_CHUNKS) -> None:
        self._chunks: deque[Snippet] = deque(maxlen=size)

    def note(self, path: str, text: str, line: int) -> None:
        """Remember the lines around `line` of `path`; a chunk overlapping it is replaced."""
        lines = text.split("\n")
        start = max(0, min(line, len(lines) - 1) - RECENT_CHUNK_LINES // 2)
        end = min(len(lines) - 1, start + RECENT_CHUNK_LINES - 1)
        chunk_text = "\n".join(lines[start:end + 1])
        if not chunk_text.strip():
            return
        for old in list(self._chunks):
            if old.path == path and old.start_line <= end and start <= old.end_line:
                self._chunks.remove(old)
        self._chunks.append(Snippet(path, start, end, chunk_text, "recent", "", 0.0))

    def chunks(self) -> list[Snippet]:
        """Oldest first."""
        return list(self._chunks)


def render(snippet: Snippet) -> str:
    """The snippet as it goes into the prompt after `<|file_sep|>` (Qwen's repo-level format)."""
    return f"{snippet.path}\n{snippet.text}\n"


def indexed_snippet(index: WorkspaceIndex, place: SymbolLocation, kind: str, reason: str,
                    score: float) -> Snippet | None:
    """`definition_snippet` of a definition the index knows, or None when its file is gone."""
    entry, text = index.entry(place.path), index.text_of(place.path)
    if entry is None or text is None:
        return None
    return definition_snippet(place.path, place.definition, text, entry.language, kind, reason,
                              score, entry.definitions)


def definition_snippet(path: str, definition: Definition, text: str, language: str | None,
                        kind: str, reason: str, score: float,
                        known: Sequence[Definition] | None = None) -> Snippet:
    """The definition's text, or its outline when long; `known` are the file's definitions
    when the index already has them (saves parsing the file again)."""
    lines = cached_lines(text)[definition.start_line:definition.end_line + 1]
    if len(lines) > MAX_FULL_DEFINITION_LINES and language is not None:
        return Snippet(path, definition.start_line, definition.end_line,
                       outline(definition, text, language, known), kind, reason + " (outline)",
                       score, outline=True)
    return Snippet(path, definition.start_line, definition.end_line, "\n".join(lines), kind,
                   reason, score)


def outline(definition: Definition, text: str, language: str,
             known: Sequence[Definition] | None = None,
             members: frozenset[str] | None = None) -> str:
    """A long definition in brief: its header and docstring, and its members' signatures. With
    `members`, a map entry: the header and only the members named there, no docstring."""
    lines = cached_lines(text)
    first = lines[definition.start_line]
    indent = first[:len(first) - len(first.lstrip())]
    # Python's outline is a valid stub (`...` bodies), as in a .pyi file the model has seen many
    # of; other languages mark an elided body with `…`.
    elided = "..." if language == "python" else "…"
    parts = [f"{indent}{header_line(definition, language)}"]
    if definition.docstring and members is None:
        summary = definition.docstring.strip().split("\n\n")[0]
        parts.append(f"{indent}    {_comment(language, summary)}")
    inner = [d for d in (known if known is not None else cached_definitions(text, language))
             if definition.start_line < d.start_line <= definition.end_line
             and d.kind != "class"]
    direct = [d for d in _outermost(inner) if members is None or d.name in members]
    for member in direct:
        member_line = lines[member.start_line]
        member_indent = member_line[:len(member_line) - len(member_line.lstrip())]
        parts.append(f"{member_indent}{header_line(member, language)} {elided}")
    if not direct:
        parts.append(f"{indent}    {elided}")
    return "\n".join(parts)


def _outermost(nested: Sequence[Definition]) -> list[Definition]:
    """Those of `nested` (in source order) that start on no line another one spans after its
    first: a class's methods, not the functions inside them. One pass: a class of hundreds of
    methods is outlined on every keystroke that shows it."""
    found: list[Definition] = []
    reach = -1  # the last line spanned by a definition that starts on an earlier line
    line_reach = -1  # … by those that start on the current line
    current = None
    for definition in nested:
        if definition.start_line != current:
            reach, line_reach, current = max(reach, line_reach), -1, definition.start_line
        if definition.start_line > reach:
            found.append(definition)
        line_reach = max(line_reach, definition.end_line)
    return found


def header_line(definition: Definition, language: str) -> str:
    """The signature on one line as a person would write it: `def f(a, b):`, not the folded
    `def f( a, b, ):` of a signature that spanned several lines."""
    header = re.sub(r"([(\[])\s+", r"\1", definition.signature)
    header = re.sub(r",?\s+([)\]])", r"\1", header)
    return header + (":" if language == "python" else "")


# Packing parses the same few files again and again (target, outlines): parse each text once.
@functools.lru_cache(maxsize=64)
def cached_definitions(text: str, language: str) -> list[Definition]:
    return definitions(text, language)


@functools.lru_cache(maxsize=64)
def cached_lines(text: str) -> list[str]:
    return text.split("\n")


@functools.lru_cache(maxsize=16)
def cached_references(text: str, language: str, first_line: int, last_line: int) -> list[Reference]:
    """The identifiers on lines first…last (0-based, inclusive)."""
    return references(text, language, (first_line, last_line))


@functools.lru_cache(maxsize=64)
def cached_import_statements(text: str, language: str) -> list[ImportStatement]:
    return import_statements(text, language)


def _comment(language: str, text: str) -> str:
    one_line = " ".join(text.split())
    if language != "python":
        return f"/** {one_line} */"
    return f'"""{one_line} """' if one_line.endswith('"') else f'"""{one_line}"""'


def constant_snippets(index: WorkspaceIndex, name: str, kind: str, reason: str,
                      score: float) -> list[Snippet]:
    """Where a module-level constant (or variable) `name` is set, in the files that mention it:
    the definitions the index keeps are functions and classes, and a wrong constant is a bug
    as often as a wrong line. A multi-line value runs to the next unindented line."""
    pattern = re.compile(CONSTANT_LINE.format(name=re.escape(name)))
    found = []
    for path, lines in index.references_to(name):
        text = index.text_of(path)
        all_lines = text.split("\n") if text is not None else []
        for line in lines:
            if line >= len(all_lines) or not pattern.match(all_lines[line]):
                continue
            end = line
            while (end + 1 < len(all_lines) and end - line + 1 < MAX_CONSTANT_LINES
                   and (all_lines[end + 1][:1] in (" ", "\t") or
                        all_lines[end + 1].strip()[:1] in (")", "]", "}"))):
                end += 1
            found.append(Snippet(path, line, end, "\n".join(all_lines[line:end + 1]), kind,
                                 reason, score))
    return found
