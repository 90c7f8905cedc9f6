"""The one tree-sitter front end: the grammars we ship, the language of every file extension and
VS Code language id, parsing, and the queries of each language (`analyzers/queries/*/*.scm`).

Byte offsets index the UTF-8 encoding of the text; points are 0-based (row, byte column).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

import tree_sitter_c
import tree_sitter_cpp
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_rust
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, Tree

QUERY_FOLDER = Path(__file__).with_name("queries")
# A query file may start with `; inherits: other` to begin with the same file of `other`
# (nvim-treesitter's convention): JavaScript and TypeScript share their patterns as "ecma".
INHERITS = "; inherits:"


@dataclass(frozen=True)
class Grammar:
    """A language we parse: its tree-sitter grammar and the files and editor documents in it."""

    name: str
    grammar: Callable[[], object]
    extensions: tuple[str, ...]
    vscode_ids: tuple[str, ...]
    # The folder of analyzers/queries that holds its queries, when not its name.
    queries_of: str | None = None
    # Languages of one family use each other's names (JavaScript and TypeScript, C and C++).
    family_of: str | None = None

    @property
    def queries(self) -> str:
        return self.queries_of or self.name

    @property
    def family(self) -> str:
        return self.family_of or self.name


LANGUAGES = (
    Grammar("python", tree_sitter_python.language, (".py", ".pyi"), ("python",)),
    Grammar("javascript", tree_sitter_javascript.language, (".js", ".mjs", ".cjs", ".jsx"),
            ("javascript", "javascriptreact")),
    Grammar("typescript", tree_sitter_typescript.language_typescript, (".ts", ".mts", ".cts"),
            ("typescript",), family_of="javascript"),
    Grammar("tsx", tree_sitter_typescript.language_tsx, (".tsx",), ("typescriptreact",),
            queries_of="typescript", family_of="javascript"),
    Grammar("go", tree_sitter_go.language, (".go",), ("go",)),
    Grammar("rust", tree_sitter_rust.language, (".rs",), ("rust",)),
    Grammar("java", tree_sitter_java.language, (".java",), ("java",)),
    Grammar("c", tree_sitter_c.language, (".c", ".h"), ("c",)),
    Grammar("cpp", tree_sitter_cpp.language, (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
            ("cpp",), family_of="c"),
)

_BY_NAME = {language.name: language for language in LANGUAGES}
_BY_EXTENSION = {extension: language.name
                 for language in LANGUAGES for extension in language.extensions}
_BY_VSCODE_ID = {language_id: language.name
                 for language in LANGUAGES for language_id in language.vscode_ids}


def language_for_path(path: str) -> str | None:
    """The language of a file by its extension, or None when we have no grammar for it."""
    return _BY_EXTENSION.get(PurePath(path).suffix.lower())


def language_for_id(language_id: str) -> str | None:
    """The language for a VS Code languageId, or None when we have no grammar for it."""
    return _BY_VSCODE_ID.get(language_id)


def language_family(language: str | None) -> str | None:
    """The family of a language (its own name for a language we do not know)."""
    known = _BY_NAME.get(language or "")
    return known.family if known is not None else language


def parse(text: str, language: str) -> Tree:
    """The syntax tree of `text`; its byte offsets index the UTF-8 encoding of `text`."""
    return _parser(language).parse(text.encode())


def has_syntax_errors(text: str, language: str) -> bool:
    """True when tree-sitter had to recover: an ERROR or MISSING node anywhere."""
    return parse(text, language).root_node.has_error


def first_syntax_error(text: str, language: str) -> tuple[int, int, str] | None:
    """Where tree-sitter first had to recover, as a 0-based (line, column) and what stands
    there (the line's text, or what is missing), or None when `text` parses."""
    node = parse(text, language).root_node
    if not node.has_error:
        return None
    while True:
        broken = next((child for child in node.children if child.has_error or child.is_missing
                       or child.type == "ERROR"), None)
        if broken is None or node.type == "ERROR" or node.is_missing:
            break
        node = broken
    row, column = node.start_point.row, node.start_point.column
    if node.is_missing:
        return row, column, f"missing `{node.type}`"
    return row, column, text.split("\n")[row].strip()[:80]


def parsed(text: str, language: str) -> tuple[Node, bytes]:
    """The syntax tree's root and the UTF-8 source of `text`, for the `…_in` functions.

    A keystroke's completion asks for the same text's scope, index entry, definitions, imports
    and identifiers one after another, and a big file takes tens of milliseconds to parse: the
    last few texts' trees are kept."""
    tree, source = _tree(text, language)
    return tree.root_node, source


def query(language: str, name: str) -> Query:
    """The compiled query `analyzers/queries/<language's folder>/<name>.scm`."""
    return compiled_query(language, _query_source(_grammar(language).queries, name))


@functools.cache
def _query_source(folder: str, name: str) -> str:
    """The text of a query file, after the files it inherits from."""
    text = (QUERY_FOLDER / folder / f"{name}.scm").read_text(encoding="utf-8")
    first_line = text.split("\n", 1)[0]
    if not first_line.startswith(INHERITS):
        return text
    parents = first_line.removeprefix(INHERITS).split(",")
    return "".join(_query_source(parent.strip(), name) for parent in parents) + text


@functools.cache
def compiled_query(language: str, source: str) -> Query:
    """A query over `language` from its text (compiled once)."""
    return Query(_language(language), source)


def tree_sitter_language(language: str) -> Language:
    """The grammar's tree-sitter Language (loaded once)."""
    return _language(language)


def node_text(source: bytes, node: Node) -> str:
    return source[node.start_byte:node.end_byte].decode(errors="replace")


@functools.lru_cache(maxsize=4)
def _tree(text: str, language: str) -> tuple[Tree, bytes]:
    return parse(text, language), text.encode()


class _ThreadParsers(threading.local):
    # A tree-sitter parser must not be used by two threads at once; the server parses in
    # worker threads, so each thread keeps its own.
    def __init__(self) -> None:
        self.by_language: dict[str, Parser] = {}


_thread_parsers = _ThreadParsers()


def _parser(language: str) -> Parser:
    parser = _thread_parsers.by_language.get(language)
    if parser is None:
        parser = _thread_parsers.by_language[language] = Parser(_language(language))
    return parser


def _grammar(language: str) -> Grammar:
    found = _BY_NAME.get(language)
    if found is None:
        raise ValueError(
            f"no grammar for language {language!r}: expected one of {', '.join(_BY_NAME)}"
        )
    return found


@functools.cache
def _language(language: str) -> Language:
    return Language(_grammar(language).grammar())
