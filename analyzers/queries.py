"""Tree-sitter queries over every language we parse: definitions, imports, identifier references
and the enclosing scopes of a position. The workspace index and the context packer build on these.

Rows and columns are 0-based; columns are counted in UTF-8 bytes, as tree-sitter counts them.
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import NamedTuple

from tree_sitter import Node, Query, QueryCursor, Tree

from analyzers.syntax import _language, parse

# Each pattern captures a definition as @function, @method or @class and its name as @name.
# A @function nested in a class body is reported as a method.
_PYTHON_DEFINITIONS = """
(function_definition name: (identifier) @name) @function
(class_definition name: (identifier) @name) @class
"""

_JS_DEFINITIONS = """
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(method_definition name: (_) @name) @method
(class_declaration name: (_) @name) @class
(variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @function
"""

_TS_DEFINITIONS = _JS_DEFINITIONS + """
(abstract_class_declaration name: (_) @name) @class
(interface_declaration name: (_) @name) @class
(type_alias_declaration name: (_) @name) @class
(enum_declaration name: (_) @name) @class
"""

_GO_DEFINITIONS = """
(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name) @class
"""

_RUST_DEFINITIONS = """
(function_item name: (identifier) @name) @function
(function_signature_item name: (identifier) @name) @function
(struct_item name: (type_identifier) @name) @class
(enum_item name: (type_identifier) @name) @class
(union_item name: (type_identifier) @name) @class
(trait_item name: (type_identifier) @name) @class
(type_item name: (type_identifier) @name) @class
(impl_item type: (_) @name) @class
"""

_JAVA_DEFINITIONS = """
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
(class_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @class
(enum_declaration name: (identifier) @name) @class
(record_declaration name: (identifier) @name) @class
"""

_C_FUNCTION_NAME = """[
  (function_declarator declarator: (_) @name)
  (pointer_declarator declarator: (function_declarator declarator: (_) @name))
  (pointer_declarator declarator: (pointer_declarator
    declarator: (function_declarator declarator: (_) @name)))
]"""

_C_DEFINITIONS = f"""
(function_definition declarator: {_C_FUNCTION_NAME}) @function
(struct_specifier name: (type_identifier) @name body: (_)) @class
(union_specifier name: (type_identifier) @name body: (_)) @class
(enum_specifier name: (type_identifier) @name body: (_)) @class
(type_definition declarator: (type_identifier) @name) @class
"""

_CPP_FUNCTION_NAME = """[
  (function_declarator declarator: (_) @name)
  (pointer_declarator declarator: (function_declarator declarator: (_) @name))
  (reference_declarator (function_declarator declarator: (_) @name))
]"""

_CPP_DEFINITIONS = f"""
(function_definition declarator: {_CPP_FUNCTION_NAME}) @function
(class_specifier name: (_) @name body: (_)) @class
(struct_specifier name: (_) @name body: (_)) @class
(union_specifier name: (_) @name body: (_)) @class
(enum_specifier name: (_) @name body: (_)) @class
(type_definition declarator: (type_identifier) @name) @class
(alias_declaration name: (type_identifier) @name) @class
"""

DEFINITION_QUERIES = {
    "python": _PYTHON_DEFINITIONS,
    "javascript": _JS_DEFINITIONS,
    "typescript": _TS_DEFINITIONS,
    "tsx": _TS_DEFINITIONS,
    "go": _GO_DEFINITIONS,
    "rust": _RUST_DEFINITIONS,
    "java": _JAVA_DEFINITIONS,
    "c": _C_DEFINITIONS,
    "cpp": _CPP_DEFINITIONS,
}

_JS_IMPORTS = """
(program (import_statement) @import)
(program (lexical_declaration (variable_declarator
  value: (call_expression function: (identifier) @require (#eq? @require "require")))) @import)
(program (variable_declaration (variable_declarator
  value: (call_expression function: (identifier) @require (#eq? @require "require")))) @import)
"""

IMPORT_QUERIES = {
    "python": "(module [(import_statement) (import_from_statement) (future_import_statement)]"
              " @import)",
    "javascript": _JS_IMPORTS,
    "typescript": _JS_IMPORTS,
    "tsx": _JS_IMPORTS,
    "go": "(import_declaration) @import",
    "rust": "[(use_declaration) (extern_crate_declaration)] @import",
    "java": "[(package_declaration) (import_declaration)] @import",
    "c": "(preproc_include) @import",
    "cpp": "[(preproc_include) (using_declaration)] @import",
}
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

LANGUAGE_BY_EXTENSION = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
}


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


def language_for_path(path: str) -> str | None:
    """The language of a file by its extension, for every grammar we ship; None otherwise."""
    return LANGUAGE_BY_EXTENSION.get(PurePath(path).suffix.lower())


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


def parsed(text: str, language: str) -> tuple[Node, bytes]:
    """The syntax tree's root and the UTF-8 source of `text`, for the `…_in` functions.

    A keystroke's completion asks for the same text's scope, index entry, definitions, imports
    and identifiers one after another, and a big file takes tens of milliseconds to parse: the
    last few texts' trees are kept."""
    tree, source = _tree(text, language)
    return tree.root_node, source


@functools.lru_cache(maxsize=4)
def _tree(text: str, language: str) -> tuple[Tree, bytes]:
    return parse(text, language), text.encode()


def enclosing_scopes(text: str, language: str, line: int) -> list[Definition]:
    """The definitions whose lines contain the 0-based `line`, outermost first."""
    return [definition for definition in definitions(text, language)
            if definition.start_line <= line <= definition.end_line]


def imports_in(root: Node, source: bytes, language: str) -> list[str]:
    """`imports` of an already parsed tree."""
    return [statement.text for statement in _import_statements_in(root, source, language)]


def _import_statements_in(root: Node, source: bytes, language: str) -> list[ImportStatement]:
    cursor = QueryCursor(_query(language, IMPORT_QUERIES[language]))
    if language in IMPORT_DEPTHS:
        cursor.set_max_start_depth(IMPORT_DEPTHS[language])
    nodes = cursor.captures(root).get("import", [])
    by_start = sorted({node.start_byte: node for node in nodes}.items())
    return [ImportStatement(node.start_point.row, node.end_point.row, _text(source, node).rstrip())
            for _, node in by_start]


def definitions_in(root: Node, source: bytes, language: str) -> list[Definition]:
    """`definitions` of an already parsed tree."""
    cursor = QueryCursor(_query(language, DEFINITION_QUERIES[language]))
    found: dict[int, Definition] = {}
    for _, captures in cursor.matches(root):
        kind = next(kind for kind in ("function", "method", "class") if kind in captures)
        node = captures[kind][0]
        if node.start_byte in found and found[node.start_byte].end_byte >= node.end_byte:
            continue  # one definition matched by two patterns
        name = _text(source, captures["name"][0])
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
    cursor = QueryCursor(_query(language, _identifier_query(language)))
    if lines is not None:
        # A big module has tens of thousands of identifiers; a region, a few hundred.
        cursor.set_point_range((lines[0], 0), (lines[1] + 1, 0))
    nodes = cursor.captures(root).get("identifier", [])
    nodes.sort(key=lambda node: node.start_byte)
    first, last = lines if lines is not None else (0, float("inf"))
    return [Reference(_text(source, node), node.start_point.row, node.start_point.column)
            for node in nodes if first <= node.start_point.row <= last]


@functools.cache
def _identifier_query(language: str) -> str:
    grammar = _language(language)
    kinds = [kind for kind in IDENTIFIER_NODE_TYPES if grammar.id_for_node_kind(kind, True)]
    return "[" + " ".join(f"({kind})" for kind in kinds) + "] @identifier"


@functools.cache
def _query(language: str, source: str) -> Query:
    return Query(_language(language), source)


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
            names.append(_text(source, name))
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
                return inspect.cleandoc("".join(_text(source, part) for part in inner))
        return None
    return _comment_before(outer, source)


def _comment_before(node: Node, source: bytes) -> str | None:
    """The comment block right above a definition (`/** … */`, `///`, `//`), cleaned."""
    lines: list[str] = []
    sibling, row = node.prev_named_sibling, node.start_point.row
    while sibling is not None and sibling.type in _COMMENT_TYPES and \
            sibling.end_point.row >= row - 1:
        lines[:0] = _text(source, sibling).splitlines()
        row = sibling.start_point.row
        sibling = sibling.prev_named_sibling
    if not lines:
        return None
    cleaned = [re.sub(r"^\s*(/\*\*?|\*/|\*|///?|//!)\s?", "", line).rstrip() for line in lines]
    text = "\n".join(line.removesuffix("*/").rstrip() for line in cleaned).strip()
    return text or None


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte:node.end_byte].decode(errors="replace")
