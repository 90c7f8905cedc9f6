"""The context packer: what it chooses, why, in which order, and that it keeps the budget."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from analyzers.index import WorkspaceIndex
from analyzers.jedi_resolver import jedi_resolver
from analyzers.packer import (
    MAX_BUDGET_TOKENS,
    Frame,
    RecentChunks,
    Target,
    pack,
    render,
)

SHAPES = '''import math


class Circle:
    """A round shape."""

    def __init__(self, radius: float) -> None:
        self.radius = radius

    def area(self) -> float:
        return math.pi * self.radius ** 2

    def scaled(self, factor: float) -> "Circle":
        return Circle(self.radius * factor)
'''

REPORT = '''import json

from pkg.shapes import Circle
from pkg.units import to_metres


def describe(radius):
    circle = Circle(to_metres(radius))
    return json.dumps({"area": circle.area()})


def main():
    print(describe(2.0))
'''

UNITS = '''FEET_PER_METRE = 3.28084


def to_metres(feet: float) -> float:
    """Feet to metres."""
    return feet / FEET_PER_METRE


def to_feet(metres: float) -> float:
    return metres * FEET_PER_METRE
'''

TEST_REPORT = '''from pkg.report import describe


def test_describe():
    assert describe(1.0) == "{}"
'''


def count_characters(text: str) -> int:
    """The fake engine's tokenizer: one token per character (honest for budgets)."""
    return len(text)


@pytest.fixture
def workspace(tmp_path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "shapes.py").write_text(SHAPES)
    (root / "pkg" / "report.py").write_text(REPORT)
    (root / "pkg" / "units.py").write_text(UNITS)
    (root / "tests" / "test_report.py").write_text(TEST_REPORT)
    return root


WHOLE_FILE = (0, 10_000)  # `Target.shown` when the prompt holds all of the file


def describe_target(kind: str = "function", **changes) -> Target:
    return Target("pkg/report.py", REPORT, REPORT.splitlines().index("    circle = Circle("
                                                                      "to_metres(radius))"),
                  kind=kind, **changes)


def kinds_and_places(result) -> list[tuple[str, str, int]]:
    return [(s.kind, s.path, s.start_line) for s in result.snippets]


def test_a_function_target_brings_what_it_uses_calls_and_imports(workspace):
    index = WorkspaceIndex.open(workspace)
    result = pack(describe_target(), 4000, count_characters, index=index)
    reasons = {(s.kind, s.path): s.reason for s in result.snippets}
    assert reasons[("target", "pkg/report.py")] == "the function target"
    assert reasons[("definition", "pkg/shapes.py")] == "the target uses `Circle`"
    assert reasons[("definition", "pkg/units.py")] == "the target uses `to_metres`"
    assert reasons[("caller", "pkg/report.py")] == "calls `describe` (line 13)"
    assert reasons[("caller", "tests/test_report.py")] == "calls `describe` (line 5)"
    assert reasons[("header", "pkg/report.py")] == "the file's imports"


def test_imported_names_come_as_signatures_per_file(workspace):
    far_below = "from pkg.units import to_feet, to_metres\n" + "\n" * 80 + "x = 1\n"
    result = pack(Target("pkg/far.py", far_below, 81, shown=WHOLE_FILE), 4000,
                  count_characters, index=WorkspaceIndex.open(workspace))
    [units] = [s for s in result.snippets if s.path == "pkg/units.py"]
    assert (units.kind, units.reason) == (
        "imported", "signatures of `to_feet`, `to_metres`, which the target imports")
    assert units.text == ('def to_metres(feet: float) -> float:\n    ...\n'
                          'def to_feet(metres: float) -> float:\n    ...')


def test_an_imported_class_is_mapped_by_its_constructor_alone(workspace):
    """The map of imports stays small enough to fit beside the definitions the code uses."""
    user = "from pkg.shapes import Circle\n" + "\n" * 80 + "x = 1\n"
    result = pack(Target("pkg/user.py", user, 81, shown=WHOLE_FILE), 4000,
                  count_characters, index=WorkspaceIndex.open(workspace))
    [shapes] = [s for s in result.snippets if s.path == "pkg/shapes.py"]
    assert shapes.text == ("class Circle:\n"
                           "    def __init__(self, radius: float) -> None: ...")


TOKENS = """class Token:
    pass


class Function(Token):
    pass


def _private_helper():
    pass


def group_tokens(tokens, start, end):
    pass


class Case(Token):
    pass
"""


@pytest.mark.parametrize("statement, alias", [("from pkg import sql", "sql"),
                                              ("from .. import sql as s", "s"),
                                              ("import pkg.sql as s", "s")])
def test_a_module_imported_whole_brings_the_names_it_offers(tmp_path, statement, alias):
    """`sql.` at the cursor: the model can only write `sql.Case` if it is told `Case` exists.
    The names the file uses come first; private ones it does not use stay out."""
    (tmp_path / "pkg" / "engine").mkdir(parents=True)
    (tmp_path / "pkg" / "sql.py").write_text(TOKENS)
    user = (f"{statement}\n\n\ndef group(tlist):\n    kinds = ({alias}.Function,)\n"
            f"    return {alias}.\n")
    result = pack(Target("pkg/engine/grouping.py", user, 5, shown=WHOLE_FILE), 4000,
                  count_characters, index=WorkspaceIndex.open(tmp_path))
    [names] = [s for s in result.snippets if s.reason.startswith("the names of module")]
    assert (names.kind, names.path) == ("imported", "pkg/sql.py")
    assert names.text.split("\n") == ["class Token: ...", "class Function(Token): ...",
                                       "def group_tokens(tokens, start, end): ...",
                                       "class Case(Token): ..."]


def test_only_modules_of_the_workspace_are_mapped(tmp_path):
    (tmp_path / "sql.py").write_text(TOKENS)
    user = "import os\nfrom json import decoder\nfrom sql import Case\n\nx = os.\n"
    result = pack(Target("user.py", user, 4, shown=WHOLE_FILE), 4000, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    assert not [s for s in result.snippets if s.reason.startswith("the names of module")]


def test_a_definition_too_long_for_the_budget_comes_as_its_head(tmp_path):
    """Its signature and docstring are what a caller needs; dropping it showed nothing."""
    body = "".join(f"    step_{n} = {n}\n" for n in range(30))
    (tmp_path / "long.py").write_text(
        f'def long_helper(value: int) -> int:\n    """Adds the steps."""\n{body}'
        f"    return value\n")
    user = "from long import long_helper\n\n\ndef use():\n    return long_helper(1)\n"
    result = pack(Target("use.py", user, 4, shown=WHOLE_FILE), 200, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    [head] = [s for s in result.snippets if s.kind == "definition"]
    assert head.text.startswith('def long_helper(value: int) -> int:\n    """Adds the steps."""')
    assert "(first " in head.reason and result.used_tokens <= 200


def test_for_a_cursor_the_names_used_next_to_it_win_a_tight_budget(tmp_path):
    (tmp_path / "far.py").write_text("def far_helper():\n    return 1\n")
    (tmp_path / "near.py").write_text("def near_helper_with_a_longer_name():\n    return 22\n")
    user = ("from far import far_helper\nfrom near import near_helper_with_a_longer_name\n\n\n"
            "def use():\n    a = far_helper()\n" + "    pass\n" * 20
            + "    b = near_helper_with_a_longer_name()\n    \n")
    cursor = user.count("\n") - 1
    result = pack(Target("use.py", user, cursor, shown=WHOLE_FILE), 80, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    assert [s.path for s in result.snippets if s.kind == "definition"] == ["near.py"]


def test_for_a_cursor_the_lines_elsewhere_most_like_those_just_typed_come_along(tmp_path):
    """How the project already writes what comes next: the lines in another file that share
    the names the user just typed, not the start of the function they sit in."""
    filler = "".join(f"    unrelated_{n} = {n}\n" for n in range(30))
    (tmp_path / "orders.py").write_text(
        f"def settle(ledger, invoice):\n{filler}    entry = ledger.open_entry(invoice)\n"
        "    entry.post(invoice.total, currency=invoice.currency)\n    return entry\n")
    user = "def refund(ledger, invoice):\n    entry = ledger.open_entry(invoice)\n    \n"
    result = pack(Target("refund.py", user, 2, shown=WHOLE_FILE), 400, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    [similar] = [s for s in result.snippets if s.kind == "similar" and "like those" in s.reason]
    assert "entry.post(invoice.total, currency=invoice.currency)" in similar.text
    assert "unrelated_0 " not in similar.text and similar.start_line > 20


def test_each_snippet_carries_its_exact_token_count(workspace):
    result = pack(describe_target(), 4000, count_characters,
                  index=WorkspaceIndex.open(workspace))
    assert all(s.tokens == len(render(s)) + 1 for s in result.snippets)
    assert result.used_tokens == sum(s.tokens for s in result.snippets)


@pytest.mark.parametrize("budget", [0, 1, 30, 64, 100, 150, 250, 400, 700, 1000, 1500, 2500,
                                    4096, MAX_BUDGET_TOKENS])
def test_the_budget_is_never_exceeded(workspace, budget):
    index = WorkspaceIndex.open(workspace)
    recent = RecentChunks()
    recent.note("pkg/units.py", UNITS, 4)
    for kind in ("cursor", "function", "tests"):
        result = pack(describe_target(kind), budget, count_characters, index=index,
                      recent=recent)
        assert result.used_tokens <= budget
        assert sum(s.tokens for s in result.snippets) <= budget


def test_a_target_too_large_for_the_budget_is_cut_to_its_first_lines(workspace):
    result = pack(describe_target(), 60, count_characters)
    [target] = result.snippets
    assert target.text == "def describe(radius):"
    assert "first 1 of 3 lines" in target.reason


def test_a_budget_beyond_8k_is_refused():
    with pytest.raises(ValueError, match="0…8192"):
        pack(describe_target(), MAX_BUDGET_TOKENS + 1, count_characters)


def test_packing_is_deterministic(workspace):
    index = WorkspaceIndex.open(workspace)
    first = pack(describe_target(), 1500, count_characters, index=index)
    again = pack(describe_target(), 1500, count_characters,
                 index=WorkspaceIndex.open(workspace))
    assert first == again


def test_stable_snippets_come_first_and_the_target_last(workspace):
    recent = RecentChunks()
    recent.note("notes.py", "todo = ['units']\n", 0)
    result = pack(describe_target(), 4000, count_characters,
                  index=WorkspaceIndex.open(workspace), recent=recent)
    kinds = [s.kind for s in result.snippets]
    assert kinds[0] == "definition"
    assert kinds[-2:] == ["recent", "target"]


def test_a_one_character_edit_keeps_the_order_of_the_other_snippets(workspace):
    index = WorkspaceIndex.open(workspace)
    before = pack(describe_target(), 4000, count_characters, index=index)
    edited = REPORT.replace("circle.area()", "circle.area( )")
    index.update_document(str(workspace / "pkg" / "report.py"), edited)
    after = pack(Target("pkg/report.py", edited, before.snippets[-1].start_line + 1,
                        kind="function"), 4000, count_characters, index=index)
    assert kinds_and_places(before) == kinds_and_places(after)
    unchanged = [s.text for s in before.snippets if s.path != "pkg/report.py"]
    assert unchanged == [s.text for s in after.snippets if s.path != "pkg/report.py"]


def test_overlapping_candidates_are_packed_once(workspace):
    index = WorkspaceIndex.open(workspace)
    recent = RecentChunks()
    recent.note("pkg/report.py", REPORT, 7)  # the target's own lines
    result = pack(describe_target(), 4000, count_characters, index=index, recent=recent)
    report = sorted((s.start_line, s.end_line) for s in result.snippets
                    if s.path == "pkg/report.py" and s.kind != "header")
    assert all(a[1] < b[0] for a, b in itertools.pairwise(report))


def test_failing_test_frames_bring_the_functions_on_the_traceback(workspace):
    index = WorkspaceIndex.open(workspace)
    target = Target("tests/test_report.py", TEST_REPORT, 4, kind="tests",
                    frames=(Frame("pkg/report.py", 8), Frame("pkg/units.py", 5)))
    result = pack(target, 4000, count_characters, index=index)
    frames = {(s.path, s.start_line) for s in result.snippets if s.kind == "frame"}
    assert frames == {("pkg/report.py", 6), ("pkg/units.py", 3)}


def test_a_target_whose_file_the_prompt_shows_whole_gets_only_other_files(workspace):
    target = describe_target("cursor", shown=WHOLE_FILE)
    result = pack(target, 4000, count_characters, index=WorkspaceIndex.open(workspace))
    assert result.snippets
    assert all(s.path != "pkg/report.py" for s in result.snippets)


def test_a_long_file_brings_what_the_prompt_window_leaves_out_of_it(tmp_path):
    """Far below its imports the cursor's own file is as unseen as another: the imports and the
    lines like those just typed come along, and nothing the window already holds is repeated."""
    filler = "".join(f"    unrelated_{n} = {n}\n" for n in range(40))
    text = ("import json\nfrom ledger import open_entry\n\n\n"
            "def settle(book, invoice):\n    entry = open_entry(book, invoice)\n"
            "    entry.post(invoice.total, currency=invoice.currency)\n    return entry\n\n\n"
            f"def audit(book):\n{filler}    return book\n\n\n"
            "def refund(book, invoice):\n    entry = open_entry(book, invoice)\n    \n")
    (tmp_path / "orders.py").write_text(text)
    (tmp_path / "ledger.py").write_text("def open_entry(book, invoice):\n    return book\n")
    cursor = text.count("\n") - 1
    shown = (cursor - 10, cursor)
    result = pack(Target("orders.py", text, cursor, shown=shown), 400, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    own = [s for s in result.snippets if s.path == "orders.py"]
    assert {s.kind for s in own} == {"header", "similar"}
    [header] = [s for s in own if s.kind == "header"]
    assert header.text == "import json\nfrom ledger import open_entry"
    assert any("entry.post(invoice.total, currency=invoice.currency)" in s.text for s in own)
    assert all(s.end_line < shown[0] for s in own if s.kind != "header")


def test_imports_the_prompt_window_holds_are_not_packed_again(tmp_path):
    text = "import json\n\n\ndef dump(value):\n    return json.dumps(value)\n"
    result = pack(Target("dump.py", text, 4, shown=(0, 4)), 400, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    assert [s for s in result.snippets if s.path == "dump.py"] == []


def test_the_ring_buffer_keeps_the_newest_chunks_and_replaces_overlaps():
    recent = RecentChunks(size=2)
    recent.note("a.py", "a = 1\n", 0)
    recent.note("b.py", "b = 1\n", 0)
    recent.note("a.py", "a = 2\n", 0)
    assert [(c.path, c.text) for c in recent.chunks()] == [("b.py", "b = 1\n"),
                                                           ("a.py", "a = 2\n")]


def test_jedi_resolves_definitions_into_installed_packages(workspace):
    result = pack(describe_target(), 8000, count_characters,
                  index=WorkspaceIndex.open(workspace), resolve=jedi_resolver(workspace))
    reasons = {s.path: s.reason for s in result.snippets}
    assert reasons["pkg/shapes.py"] == "the target uses `Circle` (jedi)"
    assert reasons["json/__init__.py"] == "the target uses `dumps` (jedi) (outline)"


def test_a_huge_definition_is_shown_as_an_outline(tmp_path):
    methods = "".join(f"    def method_{n}(self, value):\n        return value + {n}\n\n"
                      for n in range(40))
    (tmp_path / "big.py").write_text(f'class Big:\n    """Many methods."""\n\n{methods}')
    user = "from big import Big\n\n\ndef use():\n    return Big().method_3(1)\n"
    (tmp_path / "use.py").write_text(user)
    result = pack(Target("use.py", user, 4, kind="function"), 8000, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    [outline, method] = [s for s in result.snippets if s.path == "big.py"]
    assert method.text.startswith("    def method_3(self, value):")
    assert outline.reason.endswith("(outline)")
    assert outline.text.splitlines()[:3] == ['class Big:', '    """Many methods."""',
                                             "    def method_0(self, value): ..."]


def test_an_outline_lists_a_class_s_methods_not_the_functions_inside_them(tmp_path):
    methods = "".join(f"    def method_{n}(self, value):\n        def inner_{n}():\n"
                      f"            return {n}\n        return inner_{n}() + value\n\n"
                      for n in range(20))
    (tmp_path / "big.py").write_text(f"class Big:\n{methods}")
    user = "from big import Big\n\n\ndef use():\n    return Big()\n"
    result = pack(Target("use.py", user, 4, kind="function"), 8000, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    [outline] = [s for s in result.snippets if s.path == "big.py"]
    assert outline.text.splitlines() == ["class Big:", *(
        f"    def method_{n}(self, value): ..." for n in range(20))]


def test_a_python_outline_is_valid_python_the_model_can_read_as_a_stub(tmp_path):
    import ast

    methods = "".join(f"    def method_{n}(\n        self,\n        value: int,\n    ) -> int:\n"
                      f"        return value + {n}\n\n" for n in range(40))
    (tmp_path / "big.py").write_text(f'class Big:\n    """Many "parts" """\n\n{methods}')
    user = "from big import Big\n\n\ndef use():\n    return Big()\n"
    result = pack(Target("use.py", user, 4, kind="function"), 8000, count_characters,
                  index=WorkspaceIndex.open(tmp_path))
    [outline] = [s for s in result.snippets if s.path == "big.py"]
    ast.parse(outline.text)
    assert outline.text.splitlines()[2] == "    def method_0(self, value: int) -> int: ..."


def test_the_budget_holds_for_many_budgets_and_targets_over_real_code():
    """Property-style: seeded random targets in this repository's own analyzers."""
    import random

    from tests.conftest import REPO_ROOT

    index = WorkspaceIndex.open(REPO_ROOT / "analyzers")
    files = [entry for entry in index.files() if entry.language == "python"]
    rng = random.Random(4)
    recent = RecentChunks()
    for _ in range(60):
        entry = rng.choice(files)
        text = index.text_of(entry.path)
        line = rng.randrange(text.count("\n") + 1)
        recent.note(entry.path, text, line)
        budget = rng.randrange(MAX_BUDGET_TOKENS + 1)
        kind = rng.choice(["cursor", "function", "tests"])
        target = Target(entry.path, text, line, kind=kind,
                        frames=(Frame(entry.path, line),) if kind == "tests" else ())
        result = pack(target, budget, count_characters, index=index, recent=recent)
        assert result.used_tokens == sum(s.tokens for s in result.snippets) <= budget
        assert all(s.tokens == len(render(s)) + 1 for s in result.snippets)


@pytest.mark.model
def test_counts_are_exact_in_the_real_prompt(workspace, real_engine):
    """The chunks cost in the FIM prompt exactly the tokens the packer counted for them."""
    from model.prompts import ContextChunk, fim_prompt_tokens, fim_request_at

    result = pack(describe_target("cursor", shown=WHOLE_FILE), 600,
                  real_engine.count_tokens, index=WorkspaceIndex.open(workspace))
    assert result.snippets
    chunks = tuple(ContextChunk(s.path, s.text) for s in result.snippets)
    bare = fim_request_at(REPORT, 7, 4, repo_name="ws", path="pkg/report.py")
    with_context = fim_request_at(REPORT, 7, 4, repo_name="ws", path="pkg/report.py",
                                  context=chunks)
    added = (len(fim_prompt_tokens(with_context, real_engine))
             - len(fim_prompt_tokens(bare, real_engine)))
    assert added == result.used_tokens <= 600


def test_a_shown_suspect_of_failing_tests_brings_what_it_uses_and_its_callers_not_itself(
        workspace):
    """The agent shows its suspects whole itself: the packer adds around them, across files."""
    test = "from pkg.units import to_metres\n\n\ndef test_units():\n    assert to_metres(0)\n"
    target = Target("tests/test_units.py", test, 3, kind="tests", shown=(3, 4),
                    frames=(Frame("pkg/units.py", 5, shown=True),))
    result = pack(target, 4000, count_characters, index=WorkspaceIndex.open(workspace))
    assert not any("def to_metres" in s.text for s in result.snippets if not s.outline)
    assert any(s.kind == "definition" and "FEET_PER_METRE = " in s.text
               for s in result.snippets)
    assert any(s.kind == "caller" and s.path == "pkg/report.py" and "def describe" in s.text
               for s in result.snippets)


def test_failing_tests_get_no_lexically_similar_code(workspace):
    target = Target("tests/test_report.py", TEST_REPORT, 3, kind="tests")
    result = pack(target, 4000, count_characters, index=WorkspaceIndex.open(workspace))
    assert result.snippets and not any(s.kind == "similar" for s in result.snippets)
