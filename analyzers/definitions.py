"""Definitions, imports, identifier references and the enclosing scopes of a position, in every
language we parse (queries in `analyzers/queries/`). The workspace index and the packer build on
these. Rows and columns are 0-based; columns count UTF-8 bytes, as tree-sitter counts them.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from typing import NamedTuple

from tree_sitter import Node, QueryCursor

from analyzers.syntax import compiled_query, node_text, parsed, query, tree_sitter_language

# How deep in the tree an import query's match can start, where its pattern is anchored there:
# without a limit the query walks every node of the file.
IMPORT_DEPTHS = {"python": 0, "go": 1, "java": 1}

# Leaf node types that name something; those a grammar lacks are left out of its query.
IDENTIFIER_NODE_TYPES = (
    "identifier",
    "type_identifier",
    "field_identifier",
    "property_identifier",
    "shorthand_property_identifier",
    "package_identifier",
    "namespace_identifier",
)

# Node types holding a definition's body: its signature is the text before the body.
_BODY_FIELDS = ("body",)
_COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_CLASS_BODY_TYPES = frozenset({
    "class_definition", "class_declaration", "abstract_class_declaration", "class_body",
    "impl_item", "trait_item", "declaration_list", "field_declaration_list", "class_specifier",
    "struct_specifier", "interface_declaration", "interface_body", "enum_body",
})
SIGNATURE_MAX_CHARACTERS = 300


@dataclass(frozen=True)
class Definition:
    """A function, method or class (struct, interface, trait, enum, type) in one file."""

    name: str
    qualified_name: str
    kind: str  # "function" | "method" | "class"
    start_line: int
    end_line: int  # inclusive
    start_byte: int
    end_byte: int
    signature: str
    docstring: str | None


@dataclass(frozen=True)
class ImportStatement:
    """An import (include, `use`, `require`) statement and the lines it spans."""

    start_line: int  # 0-based, inclusive
    end_line: int
    text: str


class Reference(NamedTuple):
    """An identifier as it is used (or defined) at a 0-based (line, column); a tuple, since
    a big file has tens of thousands."""

    name: str
    line: int
    column: int


def definitions(text: str, language: str) -> list[Definition]:
    """Every definition in source order, outer before inner."""
    return definitions_in(*parsed(text, language), language)


def imports(text: str, language: str) -> list[str]:
    """Source text of the file's import statements (includes, `use`, `require`) in order."""
    return [statement.text for statement in import_statements(text, language)]


def import_statements(text: str, language: str) -> list[ImportStatement]:
    """`imports` with the lines each statement spans."""
    return _import_statements_in(*parsed(text, language), language)


def references(text: str, language: str,
               lines: tuple[int, int] | None = None) -> list[Reference]:
    """Every identifier in the file, or on its 0-based `lines` first…last, in source order
    (definitions' own names included)."""
    return references_in(*parsed(text, language), language, lines)


def enclosing_scopes(text: str, language: str, line: int) -> list[Definition]:
    """The definitions whose lines contain the 0-based `line`, outermost first."""
    return [definition for definition in definitions(text, language)
            if definition.start_line <= line <= definition.end_line]


def imports_in(root: Node, source: bytes, language: str) -> list[str]:
    """`imports` of an already parsed tree."""
    return [statement.text for statement in _import_statements_in(root, source, language)]


def _import_statements_in(root: Node, source: bytes, language: str) -> list[ImportStatement]:
    cursor = QueryCursor(query(language, "imports"))
    if language in IMPORT_DEPTHS:
        cursor.set_max_start_depth(IMPORT_DEPTHS[language])
    nodes = cursor.captures(root).get("import", [])
    by_start = sorted({node.start_byte: node for node in nodes}.items())
    return [ImportStatement(node.start_point.row, node.end_point.row,
                            node_text(source, node).rstrip()) for _, node in by_start]


def definitions_in(root: Node, source: bytes, language: str) -> list[Definition]:
    """`definitions` of an already parsed tree."""
    cursor = QueryCursor(query(language, "definitions"))
    found: dict[int, Definition] = {}
    for _, captures in cursor.matches(root):
        kind = next(kind for kind in ("function", "method", "class") if kind in captures)
        node = captures[kind][0]
        if node.start_byte in found and found[node.start_byte].end_byte >= node.end_byte:
            continue  # one definition matched by two patterns
        name = node_text(source, captures["name"][0])
        if kind == "function" and ("::" in name or _inside_class(node)):
            kind = "method"
        outer = _with_wrappers(node)
        found[node.start_byte] = Definition(
            name=name.split("::")[-1],
            qualified_name=".".join([*_scope_names(node, source), name.split("::")[-1]]),
            kind=kind,
            start_line=outer.start_point.row,
            end_line=outer.end_point.row,
            start_byte=outer.start_byte,
            end_byte=outer.end_byte,
            signature=_signature(node, source),
            docstring=_docstring(node, outer, source, language),
        )
    return sorted(found.values(), key=lambda d: (d.start_byte, -d.end_byte))


def references_in(root: Node, source: bytes, language: str,
                  lines: tuple[int, int] | None = None) -> list[Reference]:
    """`references` of an already parsed tree."""
    cursor = QueryCursor(compiled_query(language, _identifier_query(language)))
    if lines is not None:
        # A big module has tens of thousands of identifiers; a region, a few hundred.
        cursor.set_point_range((lines[0], 0), (lines[1] + 1, 0))
    nodes = cursor.captures(root).get("identifier", [])
    nodes.sort(key=lambda node: node.start_byte)
    first, last = lines if lines is not None else (0, float("inf"))
    return [Reference(node_text(source, node), node.start_point.row, node.start_point.column)
            for node in nodes if first <= node.start_point.row <= last]


@functools.cache
def _identifier_query(language: str) -> str:
    grammar = tree_sitter_language(language)
    kinds = [kind for kind in IDENTIFIER_NODE_TYPES if grammar.id_for_node_kind(kind, True)]
    return "[" + " ".join(f"({kind})" for kind in kinds) + "] @identifier"


def _with_wrappers(node: Node) -> Node:
    """The definition with decorators or `export`, and a Go `type` keyword, that belong to it."""
    parent = node.parent
    if parent is not None and parent.type in ("decorated_definition", "export_statement"):
        return parent
    if node.type == "variable_declarator" and parent is not None and parent.named_child_count == 1:
        return _with_wrappers(parent)
    if node.type == "type_spec" and parent is not None and parent.named_child_count == 1:
        return parent
    return node


def _inside_class(node: Node) -> bool:
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.type in _CLASS_BODY_TYPES:
            return True
        if ancestor.type in ("function_definition", "function_declaration", "function_item",
                             "method_definition", "arrow_function"):
            return False
        ancestor = ancestor.parent
    return False


def _scope_names(node: Node, source: bytes) -> list[str]:
    names = []
    ancestor = node.parent
    while ancestor is not None:
        name = None
        if ancestor.type == "impl_item":
            name = ancestor.child_by_field_name("type")
        elif ancestor.type.endswith(("_definition", "_declaration", "_specifier", "_item")):
            name = ancestor.child_by_field_name("name")
        if name is not None:
            names.append(node_text(source, name))
        ancestor = ancestor.parent
    return names[::-1]


def _signature(node: Node, source: bytes) -> str:
    """The definition's header: its text up to the body, whitespace folded."""
    body = next((child for field in _BODY_FIELDS
                 if (child := node.child_by_field_name(field)) is not None), None)
    if node.type == "variable_declarator":
        value = node.child_by_field_name("value")
        body = value.child_by_field_name("body") if value is not None else None
    end = body.start_byte if body is not None else node.end_byte
    header = source[node.start_byte:end].decode(errors="replace")
    header = " ".join(header.split()).rstrip(" {:=>")
    if len(header) > SIGNATURE_MAX_CHARACTERS:
        header = header[:SIGNATURE_MAX_CHARACTERS] + "…"
    return header


def _docstring(node: Node, outer: Node, source: bytes, language: str) -> str | None:
    if language == "python":
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        if first is not None and first.type == "expression_statement":
            string = first.named_children[0] if first.named_children else None
            if string is not None and string.type == "string":
                inner = [child for child in string.children if child.type == "string_content"]
                return inspect.cleandoc("".join(node_text(source, part) for part in inner))
        return None
    return comment_before(outer, source)


def comment_before(node: Node, source: bytes) -> str | None:
    """The comment block right above a definition (`/** … */`, `///`, `//`), cleaned."""
    lines: list[str] = []
    sibling, row = node.prev_named_sibling, node.start_point.row
    while sibling is not None and sibling.type in _COMMENT_TYPES and \
            sibling.end_point.row >= row - 1:
        lines[:0] = node_text(source, sibling).splitlines()
        row = sibling.start_point.row
        sibling = sibling.prev_named_sibling
    if not lines:
        return None
    cleaned = [re.sub(r"^\s*(/\*\*?|\*/|\*|///?|//!)\s?", "", line).rstrip() for line in lines]
    text = "\n".join(line.removesuffix("*/").rstrip() for line in cleaned).strip()
    return text or None
