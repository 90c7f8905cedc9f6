"""Definitions, imports, references and enclosing scopes on a small real snippet per language."""

from __future__ import annotations

import pytest

from analyzers.definitions import definitions, enclosing_scopes, imports, references
from analyzers.syntax import language_for_path

PYTHON = '''import os
from shapes.base import Base

class Square(Base):
    """A square."""

    def area(self) -> float:
        """Its area."""
        return self.side * self.side

@register
def helper(y):
    return os.path.join(y)
'''

GO = '''package geo

import "math"

// Point is a point in the plane.
type Point struct{ X, Y float64 }

// Dist is the distance to q.
func (p Point) Dist(q Point) float64 {
\treturn math.Hypot(p.X-q.X, p.Y-q.Y)
}
'''

RUST = '''use std::collections::HashMap;

/// Counts words.
pub struct Counter { counts: HashMap<String, u32> }

impl Counter {
    /// Adds one.
    pub fn add(&mut self, word: &str) -> u32 { 0 }
}
'''

JAVA = '''package demo;

import java.util.List;

/** Greets people. */
public class Greeter {
    /** Says hello. */
    public String greet(List<String> others) { return "hi"; }
}
'''

C = '''#include <stdio.h>

/* A pair of ints. */
struct pair { int a; int b; };

// Adds them.
static int add(struct pair p) { return p.a + p.b; }
'''

CPP = '''#include <vector>

/// A box.
class Box {
 public:
  int area() const { return w * h; }
  int w, h;
};

int total(const std::vector<Box>& boxes) { return 0; }
'''

TYPESCRIPT = '''import { Shape } from "./shape";

/** A square. */
export class Square implements Shape {
  area(): number { return 1; }
}

export const double = (n: number): number => n * 2;
'''

JAVASCRIPT = '''const fs = require("fs");

/** Reads a file. */
export function read(path) { return fs.readFileSync(path); }
'''

CASES = [
    # language, text, expected imports, expected (kind, qualified name, signature, docstring)
    ("python", PYTHON, ["import os", "from shapes.base import Base"], [
        ("class", "Square", "class Square(Base)", "A square."),
        ("method", "Square.area", "def area(self) -> float", "Its area."),
        ("function", "helper", "def helper(y)", None),
    ]),
    ("go", GO, ['import "math"'], [
        ("class", "Point", "Point struct{ X, Y float64 }", "Point is a point in the plane."),
        ("method", "Dist", "func (p Point) Dist(q Point) float64", "Dist is the distance to q."),
    ]),
    ("rust", RUST, ["use std::collections::HashMap;"], [
        ("class", "Counter", "pub struct Counter", "Counts words."),
        ("class", "Counter", "impl Counter", None),
        ("method", "Counter.add", "pub fn add(&mut self, word: &str) -> u32", "Adds one."),
    ]),
    ("java", JAVA, ["package demo;", "import java.util.List;"], [
        ("class", "Greeter", "public class Greeter", "Greets people."),
        ("method", "Greeter.greet", "public String greet(List<String> others)", "Says hello."),
    ]),
    ("c", C, ["#include <stdio.h>"], [
        ("class", "pair", "struct pair", "A pair of ints."),
        ("function", "add", "static int add(struct pair p)", "Adds them."),
    ]),
    ("cpp", CPP, ["#include <vector>"], [
        ("class", "Box", "class Box", "A box."),
        ("method", "Box.area", "int area() const", None),
        ("function", "total", "int total(const std::vector<Box>& boxes)", None),
    ]),
    ("typescript", TYPESCRIPT, ['import { Shape } from "./shape";'], [
        ("class", "Square", "class Square implements Shape", "A square."),
        ("method", "Square.area", "area(): number", None),
        ("function", "double", "double = (n: number): number", None),
    ]),
    ("javascript", JAVASCRIPT, ['const fs = require("fs");'], [
        ("function", "read", "function read(path)", "Reads a file."),
    ]),
]


@pytest.mark.parametrize(("language", "text", "expected_imports", "expected"), CASES,
                         ids=[case[0] for case in CASES])
def test_definitions_and_imports_per_language(language, text, expected_imports, expected):
    found = [(d.kind, d.qualified_name, d.signature, d.docstring)
             for d in definitions(text, language)]
    assert found == expected
    assert imports(text, language) == expected_imports


def test_definition_range_includes_decorators_and_docstring_lines():
    helper = next(d for d in definitions(PYTHON, "python") if d.name == "helper")
    assert PYTHON.splitlines()[helper.start_line] == "@register"
    assert helper.end_line == len(PYTHON.splitlines()) - 1


@pytest.mark.parametrize(("language", "text", "name"), [
    ("python", PYTHON, "join"), ("go", GO, "Hypot"), ("rust", RUST, "HashMap"),
    ("java", JAVA, "List"), ("c", C, "pair"), ("cpp", CPP, "vector"),
    ("typescript", TYPESCRIPT, "Shape"), ("javascript", JAVASCRIPT, "readFileSync"),
])
def test_references_find_used_identifiers(language, text, name):
    found = [reference for reference in references(text, language) if reference.name == name]
    assert found
    line = text.splitlines()[found[0].line]
    assert line.encode()[found[0].column:].startswith(name.encode())


@pytest.mark.parametrize(("language", "text"), [
    ("python", PYTHON), ("go", GO), ("rust", RUST), ("java", JAVA), ("c", C), ("cpp", CPP),
    ("typescript", TYPESCRIPT), ("javascript", JAVASCRIPT),
])
def test_references_on_some_lines_are_the_files_references_on_those_lines(language, text):
    """The packer asks for the few lines around the cursor, not a big file's every name."""
    everywhere = references(text, language)
    last_line = text.count("\n")
    for first, last in [(0, 0), (2, 5), (last_line // 2, last_line), (last_line, last_line)]:
        expected = [r for r in everywhere if first <= r.line <= last]
        assert references(text, language, (first, last)) == expected


def test_enclosing_scopes_run_outermost_first():
    line = PYTHON.splitlines().index("        return self.side * self.side")
    assert [d.qualified_name for d in enclosing_scopes(PYTHON, "python", line)] == [
        "Square", "Square.area"]
    assert enclosing_scopes(PYTHON, "python", 0) == []


def test_broken_source_still_yields_the_intact_definitions():
    broken = "def good():\n    return 1\n\ndef bad(:\n    pass\n"
    assert "good" in [d.name for d in definitions(broken, "python")]


def test_language_for_path_covers_every_grammar():
    assert [language_for_path(name) for name in ("a.go", "b.rs", "C.java", "d.h", "e.cpp",
                                                  "f.tsx", "g.py", "h.txt")] == [
        "go", "rust", "java", "c", "cpp", "tsx", "python", None]
