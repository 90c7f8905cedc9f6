"""Functions as they stand in the source, to explain, rewrite in place or cut for training: the
one under the cursor, one by name, and the text that replaces one.

A `FunctionSpan` is a function's exact text and bytes, for editing; `definitions.Definition` is
the index's record of any definition (lines, a folded one-line signature, for prompts).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

from tree_sitter import Node, QueryCursor

from analyzers.definitions import comment_before
from analyzers.syntax import node_text, parse, query

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
        # Rust, Java, C++
        "impl_item",
        "trait_item",
        "mod_item",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "class_specifier",
        "struct_specifier",
        "namespace_definition",
    }
)
# A function whose definition stands in the body of one of these is a method.
_METHOD_OWNERS = frozenset(
    {"class_definition", "impl_item", "trait_item", "class_specifier", "struct_specifier"}
)
_JSDOC_LANGUAGES = frozenset({"javascript", "typescript", "tsx"})


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


def _function_spans(node: Node, source: bytes, language: str) -> list[FunctionSpan]:
    cursor = QueryCursor(query(language, "functions"))
    spans = [_function_span(captures, source, language) for _, captures in cursor.matches(node)]
    return sorted(spans, key=lambda span: (span.start_byte, -span.end_byte))


def _function_span(captures: dict[str, list[Node]], source: bytes,
                   language: str) -> FunctionSpan:
    kind = next(capture for capture in _KIND_CAPTURES if capture in captures)
    function = captures[kind][0]
    body = captures["body"][0]
    definition = _definition(function)
    outer = _with_wrappers(definition)
    first = captures["decorator"][0] if "decorator" in captures else outer
    name = node_text(source, captures["name"][0])
    if kind == "function" and ("::" in name or _is_in_class_body(outer)):
        kind = "method"
    name = name.split("::")[-1]  # C++'s `void Store::size()` is `size`
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
        docstring=_docstring(captures, first, source, language),
        text=source[first.start_byte : outer.end_byte].decode(),
    )


def _docstring(captures: dict[str, list[Node]], first: Node, source: bytes,
               language: str) -> str | None:
    if language == "python":
        string = captures.get("docstring")
        return _python_docstring(string[0], source) if string else None
    if language in _JSDOC_LANGUAGES:
        return _jsdoc_before(first, source)
    return comment_before(first, source)


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


def _is_in_class_body(outer: Node) -> bool:
    body = outer.parent
    owner = body.parent if body is not None else None
    return owner is not None and owner.type in _METHOD_OWNERS


def _enclosing_scope_names(node: Node, source: bytes) -> list[str]:
    names = []
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.type in _SCOPE_NODE_TYPES:
            name = ancestor.child_by_field_name("name") or ancestor.child_by_field_name(
                "type" if ancestor.type == "impl_item" else "property")
            if name is not None:
                names.append(node_text(source, name))
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
    raw = node_text(source, comment)
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
