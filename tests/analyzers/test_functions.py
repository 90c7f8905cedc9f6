"""Specification of analyzers.functions and the front end it parses with (analyzers.syntax):
functions, imports and syntax errors via tree-sitter."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from analyzers.definitions import imports
from analyzers.functions import (
    FunctionSpan,
    enclosing_function,
    find_function,
    functions,
    replace_span,
)
from analyzers.syntax import (
    has_syntax_errors,
    language_for_id,
    language_for_path,
    parse,
)

PYTHON_MODULE = '''import os
from pathlib import Path


def load(path: str) -> str:
    """Read a file.

    Returns its text.
    """
    return Path(path).read_text()


@cache
@other.decorator(1)
def cached(a, b=2) -> int:
    def helper(x):
        return x * 2

    return helper(a) + b


class Store:
    def __init__(self, root):
        self.root = root

    @property
    def size(self) -> int:
        return len(os.listdir(self.root))
'''

JAVASCRIPT_MODULE = """import { readFile } from "node:fs/promises";
const path = require("node:path");

/**
 * Sum two numbers.
 */
function add(a, b) {
  return a + b;
}

function* count(n) {
  for (let i = 0; i < n; i++) yield i;
}

const double = (x) => {
  return x * 2;
};

export const triple = (x) => x * 3;

const parse = function (text) {
  return JSON.parse(text);
};

class Cart {
  items = [];

  total() {
    return this.items.reduce((sum, item) => sum + item.price, 0);
  }

  onClick = (event) => this.total();
}
"""

TYPESCRIPT_MODULE = """import type { Item } from "./item";
import fs = require("fs");

export function price(item: Item, quantity: number): number {
  return item.price * quantity;
}

export class Basket {
  @logged()
  add(item: Item): void {
    this.items.push(item);
  }

  constructor(private readonly items: Item[] = []) {}
}

export const discount = (total: number, rate = 0.1): number => total * (1 - rate);
"""

TSX_MODULE = """import React from "react";

export const Greeting = ({ name }: { name: string }) => {
  return <h1 onClick={() => alert(name)}>Hello {name}</h1>;
};

export default function App(): JSX.Element {
  return <Greeting name="world" />;
}
"""


def line_of(text: str, needle: str) -> int:
    """0-based line number of the first line containing `needle`."""
    return next(number for number, line in enumerate(text.splitlines()) if needle in line)


def names(spans: list[FunctionSpan]) -> list[str]:
    return [span.qualified_name for span in spans]


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("src/app.py", "python"),
        ("stubs/app.pyi", "python"),
        ("web/index.js", "javascript"),
        ("web/index.mjs", "javascript"),
        ("web/index.cjs", "javascript"),
        ("web/App.jsx", "javascript"),
        ("web/index.ts", "typescript"),
        ("web/index.mts", "typescript"),
        ("web/index.cts", "typescript"),
        ("web/App.tsx", "tsx"),
        ("cmd/main.go", "go"),
        ("src/main.rs", "rust"),
        ("src/Main.java", "java"),
        ("src/main.c", "c"),
        ("include/main.h", "c"),
        ("src/main.cpp", "cpp"),
        ("src/main.cc", "cpp"),
        ("include/main.hpp", "cpp"),
    ],
)
def test_language_for_path_maps_extension(path: str, language: str) -> None:
    assert language_for_path(path) == language


def test_language_for_path_returns_none_for_unknown_extension() -> None:
    assert language_for_path("notes.txt") is None
    assert language_for_path("Makefile") is None


@pytest.mark.parametrize(
    ("language_id", "language"),
    [
        ("python", "python"),
        ("javascript", "javascript"),
        ("javascriptreact", "javascript"),
        ("typescript", "typescript"),
        ("typescriptreact", "tsx"),
        ("go", "go"),
        ("rust", "rust"),
        ("java", "java"),
        ("c", "c"),
        ("cpp", "cpp"),
    ],
)
def test_language_for_id_maps_vscode_language_id(language_id: str, language: str) -> None:
    assert language_for_id(language_id) == language


def test_language_for_id_returns_none_for_unknown_id() -> None:
    assert language_for_id("markdown") is None


def test_parse_returns_tree_of_the_language() -> None:
    assert parse(PYTHON_MODULE, "python").root_node.type == "module"
    assert parse(TSX_MODULE, "tsx").root_node.type == "program"


@pytest.mark.parametrize(
    "analysis", [parse, has_syntax_errors, functions, imports]
)
def test_analysis_rejects_unknown_language_naming_the_supported_ones(
    analysis: Callable[[str, str], object],
) -> None:
    with pytest.raises(ValueError, match="expected one of python, javascript, typescript, tsx"):
        analysis("fn main() {}", "cobol")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (PYTHON_MODULE, "python"),
        (JAVASCRIPT_MODULE, "javascript"),
        (TYPESCRIPT_MODULE, "typescript"),
        (TSX_MODULE, "tsx"),
    ],
)
def test_has_syntax_errors_is_false_for_valid_code(text: str, language: str) -> None:
    assert not has_syntax_errors(text, language)


def test_has_syntax_errors_is_true_for_error_node() -> None:
    assert has_syntax_errors("let x = (1 + 2", "javascript")


def test_has_syntax_errors_is_true_for_missing_node() -> None:
    text = "def f(:\n    pass\n"
    assert "MISSING" in str(parse(text, "python").root_node)
    assert has_syntax_errors(text, "python")


def test_has_syntax_errors_sees_jsx_as_error_in_plain_typescript() -> None:
    assert has_syntax_errors(TSX_MODULE, "typescript")


def test_functions_lists_python_functions_methods_and_nested_in_order() -> None:
    spans = functions(PYTHON_MODULE, "python")
    assert names(spans) == ["load", "cached", "cached.helper", "Store.__init__", "Store.size"]
    assert [span.kind for span in spans] == ["function", "function", "function", "method", "method"]


def test_python_span_includes_decorators() -> None:
    cached = find_function(PYTHON_MODULE, "python", "cached")
    assert cached is not None
    assert cached.text.startswith("@cache\n@other.decorator(1)\ndef cached(")
    assert cached.start_point == (line_of(PYTHON_MODULE, "@cache"), 0)
    assert cached.signature == "def cached(a, b=2) -> int:"


def test_python_signature_spans_multiline_header_without_trailing_comment() -> None:
    text = "async def fetch(url,\n                timeout=10):  # network\n    return url\n"
    (span,) = functions(text, "python")
    assert span.signature == "async def fetch(url,\n                timeout=10):"
    assert text.encode()[span.body_start_byte :].startswith(b"return url")


def test_python_docstring_is_cleaned_of_quotes_and_indentation() -> None:
    load = find_function(PYTHON_MODULE, "python", "load")
    assert load is not None
    assert load.docstring == "Read a file.\n\nReturns its text."


def test_python_string_after_first_statement_is_not_a_docstring() -> None:
    (span,) = functions('def f():\n    x = 1\n    "not a docstring"\n', "python")
    assert span.docstring is None


def test_functions_lists_javascript_declarations_generators_arrows_and_methods() -> None:
    spans = functions(JAVASCRIPT_MODULE, "javascript")
    assert [(span.qualified_name, span.kind) for span in spans] == [
        ("add", "function"),
        ("count", "generator"),
        ("double", "arrow"),
        ("triple", "arrow"),
        ("parse", "function"),
        ("Cart.total", "method"),
        ("Cart.onClick", "arrow"),
    ]


def test_javascript_arrow_span_covers_whole_declaration() -> None:
    double = find_function(JAVASCRIPT_MODULE, "javascript", "double")
    assert double is not None
    assert double.text == "const double = (x) => {\n  return x * 2;\n};"
    assert double.signature == "const double = (x) =>"


def test_javascript_exported_arrow_span_includes_export() -> None:
    triple = find_function(JAVASCRIPT_MODULE, "javascript", "triple")
    assert triple is not None
    assert triple.text == "export const triple = (x) => x * 3;"


def test_javascript_jsdoc_is_the_docstring() -> None:
    add = find_function(JAVASCRIPT_MODULE, "javascript", "add")
    assert add is not None
    assert add.docstring == "Sum two numbers."
    assert add.signature == "function add(a, b)"


def test_functions_lists_typescript_functions_methods_and_arrows() -> None:
    spans = functions(TYPESCRIPT_MODULE, "typescript")
    assert names(spans) == ["price", "Basket.add", "Basket.constructor", "discount"]


def test_typescript_signature_keeps_types() -> None:
    price = find_function(TYPESCRIPT_MODULE, "typescript", "price")
    assert price is not None
    assert price.signature == "function price(item: Item, quantity: number): number"
    discount = find_function(TYPESCRIPT_MODULE, "typescript", "discount")
    assert discount is not None
    assert discount.signature == "const discount = (total: number, rate = 0.1): number =>"


def test_typescript_method_span_includes_decorator() -> None:
    add = find_function(TYPESCRIPT_MODULE, "typescript", "Basket.add")
    assert add is not None
    assert add.text.startswith("@logged()\n  add(item: Item): void {")
    assert add.signature == "add(item: Item): void"


def test_functions_lists_tsx_components() -> None:
    spans = functions(TSX_MODULE, "tsx")
    assert [(span.name, span.kind) for span in spans] == [
        ("Greeting", "arrow"),
        ("App", "function"),
    ]


def test_span_points_are_rows_and_utf8_byte_columns() -> None:
    text = 'const label = "héllo"; function f() { return 1; }\n'
    (span,) = functions(text, "javascript")
    assert span.start_point == (0, len('const label = "héllo"; '.encode()))
    assert span.start_byte == span.start_point[1]


def test_enclosing_function_finds_method_in_class() -> None:
    line = line_of(PYTHON_MODULE, "self.root = root")
    span = enclosing_function(PYTHON_MODULE, "python", line, 8)
    assert span is not None
    assert span.qualified_name == "Store.__init__"


def test_enclosing_function_counts_the_def_line() -> None:
    span = enclosing_function(PYTHON_MODULE, "python", line_of(PYTHON_MODULE, "def load"), 0)
    assert span is not None
    assert span.name == "load"


def test_enclosing_function_counts_the_decorator_line() -> None:
    span = enclosing_function(PYTHON_MODULE, "python", line_of(PYTHON_MODULE, "@cache"), 2)
    assert span is not None
    assert span.name == "cached"


def test_enclosing_function_counts_the_end_of_the_last_line() -> None:
    line = line_of(PYTHON_MODULE, "return Path(path)")
    end_column = len(PYTHON_MODULE.splitlines()[line])
    span = enclosing_function(PYTHON_MODULE, "python", line, end_column)
    assert span is not None
    assert span.name == "load"


def test_enclosing_function_returns_innermost_nested_function() -> None:
    line = line_of(PYTHON_MODULE, "return x * 2")
    span = enclosing_function(PYTHON_MODULE, "python", line, 10)
    assert span is not None
    assert span.qualified_name == "cached.helper"


def test_enclosing_function_returns_outer_function_outside_the_nested_one() -> None:
    line = line_of(PYTHON_MODULE, "return helper(a) + b")
    span = enclosing_function(PYTHON_MODULE, "python", line, 10)
    assert span is not None
    assert span.qualified_name == "cached"


def test_enclosing_function_returns_none_between_functions() -> None:
    blank_line = line_of(PYTHON_MODULE, "@cache") - 1
    assert PYTHON_MODULE.splitlines()[blank_line] == ""
    assert enclosing_function(PYTHON_MODULE, "python", blank_line, 0) is None


def test_enclosing_function_returns_none_past_the_last_line() -> None:
    assert enclosing_function(PYTHON_MODULE, "python", 1000, 0) is None


def test_enclosing_function_finds_javascript_method_not_inner_callback() -> None:
    line = line_of(JAVASCRIPT_MODULE, "this.items.reduce")
    span = enclosing_function(JAVASCRIPT_MODULE, "javascript", line, 40)
    assert span is not None
    assert span.qualified_name == "Cart.total"


def test_enclosing_function_finds_typescript_arrow() -> None:
    line = line_of(TYPESCRIPT_MODULE, "export const discount")
    span = enclosing_function(TYPESCRIPT_MODULE, "typescript", line, 70)
    assert span is not None
    assert span.name == "discount"


def test_enclosing_function_counts_characters_not_bytes_after_non_ascii_lines() -> None:
    text = 'def first():\n    return "日本語の文字列です日本語"\n\n\ndef second():\n    return 2\n'
    span = enclosing_function(text, "python", line_of(text, "def second"), 0)
    assert span is not None
    assert span.name == "second"


def test_enclosing_function_counts_characters_not_bytes_before_cursor_on_same_line() -> None:
    text = 'const label = "ééééééééé😀"; function f() { return 1; }\n'
    column = text.index("function")
    span = enclosing_function(text, "javascript", 0, column)
    assert span is not None
    assert span.name == "f"
    assert enclosing_function(text, "javascript", 0, column - 2) is None


def test_enclosing_function_rejects_negative_position() -> None:
    with pytest.raises(ValueError, match="0-based"):
        enclosing_function(PYTHON_MODULE, "python", -1, 0)


def test_broken_python_still_yields_functions_that_parse() -> None:
    text = (
        "def first(a):\n    return a\n\n\n"
        "def editing(b):\n    total = b +\n\n\n"
        "def last(c):\n    return c\n"
    )
    assert has_syntax_errors(text, "python")
    assert names(functions(text, "python")) == ["first", "editing", "last"]
    span = enclosing_function(text, "python", line_of(text, "return c"), 4)
    assert span is not None
    assert span.name == "last"


def test_broken_javascript_still_yields_functions_that_parse() -> None:
    text = (
        "function first() { return 1; }\n"
        "function editing(x) {\n  if (x) {\n    return\n}\n"
        "const last = (x) => x * 2;\n"
    )
    assert has_syntax_errors(text, "javascript")
    assert names(functions(text, "javascript")) == ["first", "last"]


def test_find_function_accepts_qualified_class_method() -> None:
    span = find_function(PYTHON_MODULE, "python", "Store.size")
    assert span is not None
    assert span.signature == "def size(self) -> int:"


def test_find_function_prefers_top_level_name_over_nested_one() -> None:
    text = "def outer():\n    def run():\n        pass\n\n\ndef run():\n    pass\n"
    span = find_function(text, "python", "run")
    assert span is not None
    assert span.qualified_name == "run"


def test_find_function_finds_nested_function_by_plain_name() -> None:
    span = find_function(PYTHON_MODULE, "python", "helper")
    assert span is not None
    assert span.qualified_name == "cached.helper"


def test_find_function_returns_none_for_unknown_name() -> None:
    assert find_function(PYTHON_MODULE, "python", "missing") is None


def test_python_imports_are_top_level_only() -> None:
    text = "import os\nfrom a.b import (c,\n    d)\n\ndef f():\n    import json\n"
    assert imports(text, "python") == ["import os", "from a.b import (c,\n    d)"]


def test_javascript_imports_include_top_level_require() -> None:
    text = (
        'import x from "x";\nconst y = require("y");\nconst z = load("z");\n'
        'function f() { const w = require("w"); }\n'
    )
    assert imports(text, "javascript") == ['import x from "x";', 'const y = require("y");']


def test_typescript_imports_include_import_equals_require() -> None:
    assert imports(TYPESCRIPT_MODULE, "typescript") == [
        'import type { Item } from "./item";',
        'import fs = require("fs");',
    ]


def test_replace_span_round_trips_unchanged_text() -> None:
    span = find_function(PYTHON_MODULE, "python", "Store.size")
    assert span is not None
    assert replace_span(PYTHON_MODULE, span, span.text) == PYTHON_MODULE


def test_replace_span_replaces_function_after_non_ascii_text() -> None:
    text = '# Größe: 😀\ndef area(w, h):\n    return w * h\n\n\ndef other():\n    return "ü"\n'
    span = find_function(text, "python", "area")
    assert span is not None
    new_text = replace_span(text, span, 'def area(w, h):\n    """Fläche."""\n    return w*h')
    assert new_text == (
        '# Größe: 😀\ndef area(w, h):\n    """Fläche."""\n    return w*h\n\n\n'
        'def other():\n    return "ü"\n'
    )
    replaced = find_function(new_text, "python", "area")
    assert replaced is not None
    assert replaced.docstring == "Fläche."


def test_replace_span_refuses_span_from_other_text() -> None:
    span = find_function(PYTHON_MODULE, "python", "load")
    assert span is not None
    with pytest.raises(ValueError, match="find it again"):
        replace_span("x = 1\n" + PYTHON_MODULE, span, "def load(): pass")


def test_parsers_serve_several_threads_at_once() -> None:
    def count(language_and_text: tuple[str, str]) -> int:
        language, text = language_and_text
        return len(functions(text, language))

    work = [("python", PYTHON_MODULE), ("javascript", JAVASCRIPT_MODULE)] * 20
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(count, work)) == [5, 7] * 20


def test_huge_python_file_parses_and_finds_the_function_at_the_end() -> None:
    unit = 'def function_{i}(a, b="é"):\n    """Doc {i}."""\n    return a + {i}\n\n\n'
    text = "".join(unit.format(i=i) for i in range(80_000))
    assert len(text.encode()) > 5_000_000
    assert not has_syntax_errors(text, "python")
    span = enclosing_function(text, "python", line_of(text, "return a + 79999"), 4)
    assert span is not None
    assert span.name == "function_79999"


def test_rust_functions_in_an_impl_are_methods_of_its_type() -> None:
    text = "impl Store {\n    /// Its size.\n    pub fn size(&self) -> usize { 1 }\n}\n"
    (span,) = functions(text, "rust")
    assert (span.qualified_name, span.kind) == ("Store.size", "method")
    assert span.signature == "pub fn size(&self) -> usize"
    assert span.docstring == "Its size."


def test_cpp_method_defined_outside_its_class_is_named_by_its_last_part() -> None:
    (span,) = functions("int Store::size() {\n    return 1;\n}\n", "cpp")
    assert (span.name, span.kind, span.signature) == ("size", "method", "int Store::size()")
