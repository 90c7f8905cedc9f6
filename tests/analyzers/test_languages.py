"""Every language of the table, end to end: a library file and a file that uses it are parsed,
their definitions and functions found, a completion is cut to what parses, and the packer brings
the library's definition into the user's context through the workspace index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzers.completion_cut import plan_for_request
from analyzers.definitions import definitions
from analyzers.functions import enclosing_function, functions
from analyzers.index import WorkspaceIndex
from analyzers.packer import Target, pack
from analyzers.syntax import (
    LANGUAGES,
    Grammar,
    has_syntax_errors,
    language_for_id,
    language_for_path,
    query,
)
from model.prompts import fim_request_at

CURSOR = "<cursor>"


@dataclass(frozen=True)
class Case:
    language: str
    extension: str
    library: str  # defines `area`
    user: str  # defines `report`, which calls `area`; CURSOR marks an empty line in its body
    good: str  # a line that parses where the cursor is
    broken: str  # a line that does not


CASES = [
    Case("python", ".py",
         'def area(width, height):\n    """The area of a rectangle."""\n'
         "    return width * height\n",
         "from lib import area\n\n\ndef report(width, height):\n"
         f"    total = area(width, height)\n{CURSOR}\n    return total\n",
         "    total += 1", "    doubled = (total"),
    Case("javascript", ".js",
         "/** The area of a rectangle. */\n"
         "export function area(width, height) {\n  return width * height;\n}\n",
         'import { area } from "./lib.js";\n\nexport function report(width, height) {\n'
         f"  const total = area(width, height);\n{CURSOR}\n  return total;\n}}\n",
         "  const doubled = total * 2;", "  const doubled = (total"),
    Case("typescript", ".ts",
         "/** The area of a rectangle. */\n"
         "export function area(width: number, height: number): number {\n"
         "  return width * height;\n}\n",
         'import { area } from "./lib";\n\n'
         "export function report(width: number, height: number): number {\n"
         f"  const total: number = area(width, height);\n{CURSOR}\n  return total;\n}}\n",
         "  const doubled: number = total * 2;", "  const doubled = (total"),
    Case("tsx", ".tsx",
         "/** The area of a rectangle. */\n"
         "export function area(width: number, height: number): number {\n"
         "  return width * height;\n}\n",
         'import { area } from "./lib";\n\n'
         "export function Report({ width, height }: { width: number; height: number }) {\n"
         f"  const total = area(width, height);\n{CURSOR}\n  return <p>{{total}}</p>;\n}}\n",
         "  const doubled = total * 2;", "  const doubled = (total"),
    Case("go", ".go",
         "package shapes\n\n// area of a rectangle\nfunc area(width int, height int) int {\n"
         "\treturn width * height\n}\n",
         "package shapes\n\nfunc report(width int, height int) int {\n"
         f"\ttotal := area(width, height)\n{CURSOR}\n\treturn total\n}}\n",
         "\ttotal += 1", "\tdoubled := (total"),
    Case("rust", ".rs",
         "/// The area of a rectangle.\npub fn area(width: u32, height: u32) -> u32 {\n"
         "    width * height\n}\n",
         "use crate::lib::area;\n\nfn report(width: u32, height: u32) -> u32 {\n"
         f"    let total = area(width, height);\n{CURSOR}\n    total\n}}\n",
         "    let doubled = total * 2;", "    let doubled = (total"),
    Case("java", ".java",
         "class Shapes {\n    /** The area of a rectangle. */\n"
         "    static int area(int width, int height) {\n        return width * height;\n"
         "    }\n}\n",
         "class Report {\n    int report(int width, int height) {\n"
         f"        int total = Shapes.area(width, height);\n{CURSOR}\n        return total;\n"
         "    }\n}\n",
         "        total += 1;", "        int doubled = (total"),
    Case("c", ".c",
         "/* The area of a rectangle. */\nint area(int width, int height) {\n"
         "    return width * height;\n}\n",
         '#include "lib.h"\n\nint report(int width, int height) {\n'
         f"    int total = area(width, height);\n{CURSOR}\n    return total;\n}}\n",
         "    total += 1;", "    int doubled = (total"),
    Case("cpp", ".cpp",
         "// The area of a rectangle.\nint area(int width, int height) {\n"
         "    return width * height;\n}\n",
         '#include "lib.hpp"\n\nint report(int width, int height) {\n'
         f"    auto total = area(width, height);\n{CURSOR}\n    return total;\n}}\n",
         "    total += 1;", "    auto doubled = (total"),
]
IDS = [case.language for case in CASES]


def user_text(case: Case) -> tuple[str, int]:
    """The user file without the cursor mark, and the cursor's offset."""
    return case.user.replace(CURSOR, ""), case.user.index(CURSOR)


def test_the_table_covers_every_language() -> None:
    assert sorted(case.language for case in CASES) == sorted(
        language.name for language in LANGUAGES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_extension_names_the_language(case: Case) -> None:
    assert language_for_path(f"src/lib{case.extension}") == case.language


@pytest.mark.parametrize("language", LANGUAGES, ids=[language.name for language in LANGUAGES])
def test_every_language_has_its_queries_and_editor_ids(language: Grammar) -> None:
    for name in ("definitions", "functions", "imports"):
        assert query(language.name, name).pattern_count > 0
    assert all(language_for_id(language_id) == language.name
               for language_id in language.vscode_ids)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_both_files_parse_and_their_definitions_are_found(case: Case) -> None:
    user, _ = user_text(case)
    assert not has_syntax_errors(case.library, case.language)
    assert not has_syntax_errors(user, case.language)
    (area,) = [d for d in definitions(case.library, case.language) if d.name == "area"]
    assert area.kind in ("function", "method")
    assert area.docstring is not None and "area of a rectangle" in area.docstring
    assert [span.name for span in functions(user, case.language)] == [
        "Report" if case.language == "tsx" else "report"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_function_at_the_cursor_is_found(case: Case) -> None:
    user, offset = user_text(case)
    line = user.count("\n", 0, offset)
    span = enclosing_function(user, case.language, line, 0)
    assert span is not None
    assert span.text.rstrip().endswith("}") or case.language == "python"
    assert span.body_start_byte > span.start_byte


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_completion_is_cut_to_the_lines_that_parse(case: Case) -> None:
    user, offset = user_text(case)
    line = user.count("\n", 0, offset)
    path = f"src/user{case.extension}"
    request = fim_request_at(user, line, 0, repo_name="shapes", path=path)
    plan = plan_for_request(request, document=user, offset=offset,
                            language=language_for_path(path))
    assert plan.finish(f"{case.good}\n{case.broken}\n", complete=True) == case.good


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_packer_brings_the_definition_from_the_other_file(case: Case,
                                                              tmp_path: Path) -> None:
    user, offset = user_text(case)
    (tmp_path / f"lib{case.extension}").write_text(case.library)
    (tmp_path / f"user{case.extension}").write_text(user)
    index = WorkspaceIndex.open(tmp_path)
    line = user.count("\n", 0, offset) - 1  # the line that calls `area`
    result = pack(Target(f"user{case.extension}", user, line, kind="function"), 1000,
                  lambda text: len(text.split()), index=index)
    from_library = [s for s in result.snippets if s.path == f"lib{case.extension}"]
    assert any("area(int width" in s.text or "area(width" in s.text for s in from_library), (
        result.snippets)
