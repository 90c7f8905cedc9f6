"""Tree-sitter parsing of Python, JavaScript, TypeScript and TSX source for the assistant.

Finds functions (the one under the cursor, or one by name), top-level imports and syntax errors.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

import tree_sitter_c
import tree_sitter_cpp
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_rust
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, QueryCursor, Tree

PYTHON_FUNCTIONS_QUERY = """
(function_definition
  name: (identifier) @name
  body: (block . (expression_statement . (string) @docstring .)?) @body) @function
"""

# A function-valued initializer; the capture name on the value is the span's kind.
_JS_FUNCTION_VALUE = """[
    (arrow_function body: (_) @body) @arrow
    (function_expression body: (_) @body) @function
    (generator_function body: (_) @body) @generator
  ]"""

_JS_FUNCTION_PATTERNS = f"""
(function_declaration name: (identifier) @name body: (_) @body) @function
(generator_function_declaration name: (identifier) @name body: (_) @body) @generator
((decorator)* @decorator . (method_definition name: (_) @name body: (_) @body) @method)
(variable_declarator name: (identifier) @name value: {_JS_FUNCTION_VALUE})
"""

JAVASCRIPT_FUNCTIONS_QUERY = (
    _JS_FUNCTION_PATTERNS + f"(field_definition property: (_) @name value: {_JS_FUNCTION_VALUE})"
)

TYPESCRIPT_FUNCTIONS_QUERY = (
    _JS_FUNCTION_PATTERNS + f"(public_field_definition name: (_) @name value: {_JS_FUNCTION_VALUE})"
)

PYTHON_IMPORTS_QUERY = """
(module [(import_statement) (import_from_statement) (future_import_statement)] @import)
"""

_REQUIRE_CALL = '(call_expression function: (identifier) @require (#eq? @require "require"))'

# Also serves TypeScript and TSX, whose `import x = require("x")` is an import_statement.
JAVASCRIPT_IMPORTS_QUERY = f"""
(program (import_statement) @import)
(program (lexical_declaration (variable_declarator value: {_REQUIRE_CALL})) @import)
(program (variable_declaration (variable_declarator value: {_REQUIRE_CALL})) @import)
"""

_GRAMMARS: dict[str, Callable[[], object]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    # Parsed for the workspace index and the packer (analyzers.queries); the function-level
    # API below (functions, imports, enclosing_function) covers the four languages above.
    "go": tree_sitter_go.language,
    "rust": tree_sitter_rust.language,
    "java": tree_sitter_java.language,
    "c": tree_sitter_c.language,
    "cpp": tree_sitter_cpp.language,
}

_FUNCTIONS_QUERIES = {
    "python": PYTHON_FUNCTIONS_QUERY,
    "javascript": JAVASCRIPT_FUNCTIONS_QUERY,
    "typescript": TYPESCRIPT_FUNCTIONS_QUERY,
    "tsx": TYPESCRIPT_FUNCTIONS_QUERY,
}

_IMPORTS_QUERIES = {
    "python": PYTHON_IMPORTS_QUERY,
    "javascript": JAVASCRIPT_IMPORTS_QUERY,
    "typescript": JAVASCRIPT_IMPORTS_QUERY,
    "tsx": JAVASCRIPT_IMPORTS_QUERY,
}

_LANGUAGE_BY_EXTENSION = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
}

_LANGUAGE_BY_VSCODE_ID = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
}

_KIND_CAPTURES = ("function", "method", "generator", "arrow")

# Nodes whose name becomes part of a function's qualified name (`Class.method`, `outer.inner`).
_SCOPE_NODE_TYPES = frozenset(
    {
        "class_definition",
        "function_definition",
        "class_declaration",
        "abstract_class_declaration",
        "class",
        "internal_module",
        "function_declaration",
        "generator_function_declaration",
        "method_definition",
        "variable_declarator",
        "field_definition",
        "public_field_definition",
    }
)


@dataclass(frozen=True)
class FunctionSpan:
    """One function as it stands in the source.

    Byte offsets index the UTF-8 encoding of the text. Points are tree-sitter's
    0-based (row, column), the column counted in UTF-8 bytes, not characters.
    The span covers the whole definition: decorators, `export`, `const f =`.
    """

    name: str
    qualified_name: str
    kind: str  # "function" | "method" | "generator" | "arrow"
    start_byte: int
    end_byte: int
    start_point: tuple[int, int]
    end_point: tuple[int, int]
    signature: str
    body_start_byte: int
    docstring: str | None
    text: str


def language_for_path(path: str) -> str | None:
    """The language of a file by its extension, or None when we have no grammar for it."""
    return _LANGUAGE_BY_EXTENSION.get(PurePath(path).suffix.lower())


def language_for_id(language_id: str) -> str | None:
    """The language for a VS Code languageId, or None when we have no grammar for it."""
    return _LANGUAGE_BY_VSCODE_ID.get(language_id)


def parse(text: str, language: str) -> Tree:
    """The syntax tree of `text`; its byte offsets index the UTF-8 encoding of `text`."""
    return _parser(language).parse(text.encode())


def has_syntax_errors(text: str, language: str) -> bool:
    """True when tree-sitter had to recover: an ERROR or MISSING node anywhere."""
    return parse(text, language).root_node.has_error


def functions(text: str, language: str) -> list[FunctionSpan]:
    """Every function in source order, outer before inner; broken regions are skipped."""
    source = text.encode()
    return _function_spans(parse(text, language).root_node, source, language)


def find_function(text: str, language: str, name: str) -> FunctionSpan | None:
    """The function called `name`, or qualified `Class.method` / `outer.inner`.

    An exact qualified name wins over a plain name that also matches a nested function.
    """
    spans = functions(text, language)
    for matches in (
        lambda span: span.qualified_name == name,
        lambda span: span.qualified_name.endswith("." + name),
        lambda span: span.name == name,
    ):
        found = next((span for span in spans if matches(span)), None)
        if found is not None:
            return found
    return None


def enclosing_function(text: str, language: str, line: int, column: int) -> FunctionSpan | None:
    """The innermost function containing the 0-based (line, column); column counts characters.

    The whole definition counts, decorators and header included; a blank line after a
    function's last statement is outside it.
    """
    if line < 0 or column < 0:
        raise ValueError(f"line and column are 0-based, got line {line}, column {column}")
    offset = _byte_offset(text, line, column)
    if offset is None:
        return None
    source = text.encode()
    root = parse(text, language).root_node
    # Only the top-level statements touching the cursor can hold the function: query just those.
    statements = [node for node in root.children if node.start_byte <= offset <= node.end_byte]
    spans = [span for node in statements for span in _function_spans(node, source, language)]
    containing = [span for span in spans if span.start_byte <= offset <= span.end_byte]
    return max(containing, key=lambda span: span.start_byte, default=None)


def imports(text: str, language: str) -> list[str]:
    """Source text of the top-level import statements (and `const x = require(...)`)."""
    source = text.encode()
    root = parse(text, language).root_node
    cursor = QueryCursor(_query(language, _queries_for(_IMPORTS_QUERIES, language)))
    nodes = cursor.captures(root).get("import", [])
    starts = sorted({node.start_byte: node for node in nodes}.items())
    return [_text(source, node) for _, node in starts]


def replace_span(text: str, span: FunctionSpan, new_text: str) -> str:
    """`text` with the function `span` replaced by `new_text`."""
    source = text.encode()
    current = source[span.start_byte : span.end_byte].decode()
    if current != span.text:
        raise ValueError(
            f"function {span.qualified_name!r} is no longer at bytes "
            f"{span.start_byte}-{span.end_byte}: find it again in the current text"
        )
    return (source[: span.start_byte] + new_text.encode() + source[span.end_byte :]).decode()


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


@functools.cache
def _language(language: str) -> Language:
    grammar = _GRAMMARS.get(language)
    if grammar is None:
        raise ValueError(
            f"no grammar for language {language!r}: expected one of {', '.join(_GRAMMARS)}"
        )
    return Language(grammar())


@functools.cache
def _query(language: str, query_source: str) -> Query:
    return Query(_language(language), query_source)


def _queries_for(queries: dict[str, str], language: str) -> str:
    _language(language)  # an unknown language fails here, naming the ones we parse
    if language not in queries:
        raise ValueError(f"functions and imports of {language} come from analyzers.queries; "
                         f"this module covers {', '.join(queries)}")
    return queries[language]


def _function_spans(node: Node, source: bytes, language: str) -> list[FunctionSpan]:
    cursor = QueryCursor(_query(language, _queries_for(_FUNCTIONS_QUERIES, language)))
    spans = [_function_span(captures, source) for _, captures in cursor.matches(node)]
    return sorted(spans, key=lambda span: (span.start_byte, -span.end_byte))


def _function_span(captures: dict[str, list[Node]], source: bytes) -> FunctionSpan:
    kind = next(capture for capture in _KIND_CAPTURES if capture in captures)
    function = captures[kind][0]
    body = captures["body"][0]
    definition = _definition(function)
    outer = _with_wrappers(definition)
    first = captures["decorator"][0] if "decorator" in captures else outer
    if function.type == "function_definition":  # Python
        docstring = (
            _python_docstring(captures["docstring"][0], source) if "docstring" in captures else None
        )
        if _is_in_python_class(outer):
            kind = "method"
    else:
        docstring = _jsdoc_before(first, source)
    name = _text(source, captures["name"][0])
    return FunctionSpan(
        name=name,
        qualified_name=".".join([*_enclosing_scope_names(outer, source), name]),
        kind=kind,
        start_byte=first.start_byte,
        end_byte=outer.end_byte,
        start_point=(first.start_point.row, first.start_point.column),
        end_point=(outer.end_point.row, outer.end_point.column),
        signature=source[_header_start(definition) : _header_end(function, body)].decode(),
        body_start_byte=body.start_byte,
        docstring=docstring,
        text=source[first.start_byte : outer.end_byte].decode(),
    )


def _definition(function: Node) -> Node:
    """The statement that defines `function`: itself, or the `const f = …` / field holding it."""
    holder = function.parent
    if holder is None or holder.type not in (
        "variable_declarator",
        "field_definition",
        "public_field_definition",
    ):
        return function
    declaration = holder.parent
    if (
        holder.type == "variable_declarator"
        and declaration is not None
        and declaration.named_child_count == 1
    ):
        return declaration
    return holder


def _with_wrappers(definition: Node) -> Node:
    """The definition with what belongs to it: Python decorators, a JS/TS `export`."""
    parent = definition.parent
    if parent is not None and parent.type in ("decorated_definition", "export_statement"):
        return parent
    return definition


def _header_start(definition: Node) -> int:
    for child in definition.children:
        if child.type not in ("decorator", "comment"):
            return child.start_byte
    return definition.start_byte


def _header_end(function: Node, body: Node) -> int:
    header = [
        child
        for child in function.children
        if child.end_byte <= body.start_byte and child.type != "comment"
    ]
    return header[-1].end_byte if header else body.start_byte


def _is_in_python_class(outer: Node) -> bool:
    body = outer.parent
    owner = body.parent if body is not None else None
    return owner is not None and owner.type == "class_definition"


def _enclosing_scope_names(node: Node, source: bytes) -> list[str]:
    names = []
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.type in _SCOPE_NODE_TYPES:
            name = ancestor.child_by_field_name("name") or ancestor.child_by_field_name("property")
            if name is not None:
                names.append(_text(source, name))
        ancestor = ancestor.parent
    return names[::-1]


def _python_docstring(string: Node, source: bytes) -> str:
    opening, closing = string.children[0], string.children[-1]
    return inspect.cleandoc(source[opening.end_byte : closing.start_byte].decode())


def _jsdoc_before(node: Node, source: bytes) -> str | None:
    comment = node.prev_named_sibling
    if comment is None or comment.type != "comment":
        return None
    if comment.end_point.row < node.start_point.row - 1:
        return None
    raw = _text(source, comment)
    if not raw.startswith("/**"):
        return None
    lines = [re.sub(r"^\s*\* ?", "", line) for line in raw[3:-2].splitlines()]
    return "\n".join(lines).strip()


def _byte_offset(text: str, line: int, column: int) -> int | None:
    """UTF-8 byte offset of a 0-based (line, character column), clamped to the line's end."""
    line_start = 0
    for _ in range(line):
        newline = text.find("\n", line_start)
        if newline == -1:
            return None
        line_start = newline + 1
    line_end = text.find("\n", line_start)
    if line_end == -1:
        line_end = len(text)
    return len(text[: min(line_start + column, line_end)].encode())


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte : node.end_byte].decode()
