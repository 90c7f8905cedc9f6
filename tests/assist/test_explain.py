"""Explain: what the prompt carries, what the answer is checked against, with scripted replies
and a real index of a small workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers.index import WorkspaceIndex
from assist.actions import ActionError, Run
from assist.explain import (
    ALL_CONTRADICTED,
    EXPLAIN_CODE_MAX_TOKENS,
    MAX_CORRECTED_SENTENCES,
    NOTES_HEADING,
    REWRITING,
    code_within,
    explain,
)
from assist.grounding import flagged_sentences, grounding_for
from tests.fakes import ScriptedEngine

METHOD = ("import math\n\n\nclass Shape:\n    def area(self, radius: list[float]) -> float:\n"
          "        return math.pi * radius[0] ** 2\n\n\nx = 1\n")
STATS = ('"""Small statistics helpers for the shop\'s reports."""\n\n\n'
         "def mean(values: list[float]) -> float:\n"
         "    return sum(values) / len(values)\n\n\n"
         "def spread(values: list[float]) -> float:\n"
         "    centre = mean(values)\n"
         "    return max(abs(v - centre) for v in values)\n")
REPORT = ("from stats import mean\n\n\ndef weekly_report(sales: list[float]) -> str:\n"
          "    return f'average {mean(sales)}'\n")


@pytest.fixture
def shop(tmp_path: Path) -> WorkspaceIndex:
    (tmp_path / "stats.py").write_text(STATS)
    (tmp_path / "report.py").write_text(REPORT)
    index = WorkspaceIndex(tmp_path)
    index.refresh()
    return index


def _explain(reply: str | list[str], index: WorkspaceIndex | None, text: str = STATS,
             line: int = 4, path: str = "stats.py", **options):
    """Explain `text` at `line` with the scripted reply, or replies: the answer, then those to
    the follow-ups on sentences the index contradicts."""
    engine = ScriptedEngine([reply] if isinstance(reply, str) else reply)
    result = explain(Run(engine), text, "python", line, 4, path=path, grounding=lambda d, lines:
                     grounding_for(index, path, text, "python", d, lines, ""), **options)
    return result, engine.detokenize(engine.prompts[0])


def test_explain_sends_the_function_and_imports_and_titles_the_answer():
    engine = ScriptedEngine(["It computes the area of a circle."])
    result = explain(Run(engine), METHOD, "python", 5, 4)
    prompt = engine.detokenize(engine.prompts[0])
    assert "import math" in prompt
    assert "def area(self, radius: list[float]) -> float:" in prompt
    assert result.function_name == "Shape.area"
    assert result.markdown == "### `Shape.area`\n\nIt computes the area of a circle.\n"
    assert result.notes == ()


def test_explain_streams_markdown_that_always_begins_the_answer():
    engine = ScriptedEngine([("\n", " It", " computes", " the area", ".", "\n\n", "Done", ".\n")])
    shown: list[str] = []
    result = explain(Run(engine, on_text=lambda piece: shown.append(
        (shown[-1] if shown else "") + piece)), METHOD, "python", 5, 4)
    assert shown[0] == "### `Shape.area`\n\nIt"
    assert all(result.markdown.startswith(markdown) for markdown in shown)
    assert shown[-1] == result.markdown.rstrip()


def test_the_prompt_names_the_real_callers_the_module_docstring_and_the_return_type(shop):
    _, prompt = _explain("It averages.", shop)
    assert "`mean` is called by:" in prompt
    assert "`spread` (stats.py)" in prompt and "`weekly_report` (report.py)" in prompt
    assert "Small statistics helpers for the shop's reports." in prompt
    assert "annotated to return `float`" in prompt


def test_the_grounded_prompt_does_not_call_the_related_code_its_callers(shop):
    _, grounded = _explain("It averages.", shop, related="```python\ndef near(): ...\n```")
    assert "its callers are only those the facts below list" in grounded
    assert "and its callers" not in grounded
    assert grounded.index("Related code") < grounded.index("`mean` is called by:")


def test_the_prompt_says_when_nothing_calls_the_function(shop):
    _, prompt = _explain("It measures spread.", shop, line=8)
    assert "Nothing in the workspace calls `spread`: do not name any caller." in prompt


def test_a_caller_that_does_not_call_the_function_is_flagged(shop):
    result, _ = _explain("It is used by `apply_discount` and called by `weekly_report`.", shop)
    claims = [note for note in result.notes if note.startswith("“called by")]
    assert claims == ["“called by `apply_discount`”: the index finds no call of `mean` in "
                      "`apply_discount`; it is called by `spread`, `weekly_report`."]


def test_a_name_that_exists_nowhere_is_flagged_and_real_ones_are_not(shop):
    reply = ("It averages. Calls `sum` and `len` on `values`, like `weekly_report`; see "
             "`compute_median()` and `safe_divide` helpers.")
    result, _ = _explain([reply, "DROP"], shop)
    flagged = [note.split("`")[1] for note in result.notes if "not defined" in note]
    assert flagged == ["compute_median", "safe_divide"]
    assert result.markdown == (
        f"### `mean`\n\nIt averages.\n\n---\n{NOTES_HEADING}\n- `compute_median` is not "
        f"defined or used anywhere in the workspace. `safe_divide` is not defined or used "
        f"anywhere in the workspace. Removed: “Calls `sum` and `len` on `values`, like "
        f"`weekly_report`; see `compute_median()` and `safe_divide` helpers.”\n")


def test_a_name_the_answers_own_example_defines_is_not_flagged(shop):
    # The 1.5B on pathspec's `deprecated`: an example defined `old_function` and the prose
    # then said "when `old_function` is called"; a name only mentioned in the example is not.
    reply = ("Use it as a decorator:\n\n```python\n@deprecated('gone')\ndef old_function():\n"
             "    helper_missing()\n```\n\nWhen `old_function` is called it warns; "
             "`helper_missing` is never defined.")
    result, _ = _explain(reply, shop)
    assert result.notes == ("`helper_missing` is not defined or used anywhere in the workspace.",)


def test_a_snake_case_name_in_prose_is_checked_too(shop):
    result, _ = _explain("The mean feeds normalize_scores later.", shop)
    assert result.notes == ("`normalize_scores` is not defined or used anywhere in the "
                            "workspace.",)


def test_a_file_that_is_not_in_the_workspace_is_flagged(shop):
    result, _ = _explain("Defined in `stats.py`, used in report.py and in `helpers/math_utils.py`.",
                         shop)
    assert result.notes == ("`helpers/math_utils.py` is not a file of the workspace.",)


def test_a_file_named_with_the_workspace_folder_in_front_is_a_file_of_the_workspace(shop):
    """A workspace opened at a package: the model writes click/core.py for core.py (the 1.5B
    bench on click was flagged for it); another folder in front still is not."""
    folder = shop.root.name
    result, _ = _explain(f"See `{folder}/report.py` and `elsewhere/report.py`.", shop)
    assert result.notes == ("`elsewhere/report.py` is not a file of the workspace.",)


def test_a_return_type_against_the_annotation_is_flagged(shop):
    result, _ = _explain("It returns an integer, the mean of the values.", shop)
    assert result.notes == ("“returns int”: the function is annotated to return `float`.",)
    agreeing, _ = _explain("It returns a float: the mean.", shop)
    assert agreeing.notes == ()


def test_a_caller_claim_said_of_another_function_is_not_checked_against_this_one(shop):
    other, _ = _explain(["It averages. The `spread` function is called by `audit` only.", "DROP"],
                        shop)
    assert not [note for note in other.notes if note.startswith("“called by")]
    own, _ = _explain(["`mean` is called by `audit`.", "DROP"], shop)
    assert [note for note in own.notes if note.startswith("“called by")] == [
        "“called by `audit`”: the index finds no call of `mean` in `audit`; it is called by "
        "`spread`, `weekly_report`."]


def test_a_return_type_said_of_another_function_is_not_checked_against_this_one(shop):
    # The 1.5B on click's `_write_opts`: "The `join_options` function returns a tuple" was
    # taken for a claim about `_write_opts` and the true sentence removed.
    other, _ = _explain(["The `spread` function returns a tuple of both ends. `sum`, which "
                         "returns an int, adds them.", "DROP"], shop)
    assert other.notes == ()
    own, _ = _explain(["`mean` returns an integer.", "DROP"], shop)
    assert own.notes == ("“returns int”: the function is annotated to return `float`.",)


@pytest.mark.parametrize("annotation", ["t.Any", "object", "T", "list[t.Any]"])
def test_a_return_type_that_admits_any_claim_is_not_flagged_and_a_container_of_any_is(annotation):
    # The 1.5B on click said `_resolve_lazy_default` "returns a tuple"; it is annotated
    # `-> t.Any`, which no claim contradicts.
    text = f"import typing as t\n\n\ndef pick(value) -> {annotation}:\n    return value\n"
    result, _ = _explain("It returns a tuple of the values.", None, text=text, line=4,
                         path="pick.py")
    assert [n for n in result.notes if n.startswith("“returns")] == (
        [] if annotation != "list[t.Any]"
        else ["“returns tuple”: the function is annotated to return `list[t.Any]`."])


def test_a_typed_dict_return_is_a_dict_and_not_a_list():
    # The 1.5B on click: "`to_info_dict` returns a dictionary" was flagged against
    # `-> PathInfoDict`, a TypedDict.
    text = "def info(self) -> PathInfoDict:\n    return {}\n"
    result, _ = _explain("It returns a dictionary of fields.", None, text=text, line=1,
                         path="info.py")
    assert result.notes == ()
    result, _ = _explain("It returns a list of fields.", None, text=text, line=1,
                         path="info.py")
    assert result.notes == ("“returns list”: the function is annotated to return "
                            "`PathInfoDict`.",)


def test_a_denied_return_type_is_not_a_claim(shop):
    # The 1.5B on pathspec: "when a pattern's match returns a non-`None` value, it sets
    # `matched`" was flagged as "returns None" against `-> bool`.
    text = "def matches(path: str) -> bool:\n    return bool(path)\n"
    result, _ = _explain("If the check returns a non-`None` value it returns `True`; it "
                         "returns a string otherwise.", None, text=text, line=1,
                         path="match.py")
    assert result.notes == ("“returns str”: the function is annotated to return `bool`.",)


def test_without_an_index_the_file_itself_grounds_the_check():
    result, _ = _explain("Used by `spread`; also by `ghost`.", None)
    assert [note.split("`")[1] for note in result.notes] == ["ghost"]


def test_explain_a_class_a_selection_and_a_whole_file():
    klass, prompt = _explain("A shape.", None, text=METHOD, line=3, path="shapes.py",
                             scope="class")
    assert klass.function_name == "Shape" and "Explain this Python class" in prompt
    selected, prompt = _explain("Squares.", None, text=METHOD, line=5, path="shapes.py",
                                scope="selection", selection=(5, 5))
    assert selected.function_name == "lines 6-6"
    assert "```python\nreturn math.pi * radius[0] ** 2\n```" in prompt
    whole, prompt = _explain("Shapes.", None, text=METHOD, line=0, path="pkg/shapes.py",
                             scope="file")
    assert whole.function_name == "shapes.py" and "x = 1" in prompt


def test_a_class_is_asked_for_outside_any_class():
    with pytest.raises(ActionError, match="no class at the cursor"):
        _explain("x", None, text=METHOD, line=9, path="shapes.py", scope="class")


def test_a_function_too_long_for_the_budget_is_explained_from_its_outline_with_a_note():
    body = "".join(f"    if n == {i}:\n        total += {i} * weight\n        log(total)\n"
                   for i in range(400))
    text = f"def score(n, weight):\n    total = 0\n{body}    return total\n"
    result, prompt = _explain("It scores.", None, text=text, line=1, path="s.py")
    assert result.outline
    assert "explained from its outline" in result.markdown.split("It scores.")[0]
    assert "        log(total)" not in prompt and "    if n == 0:\n        ...\n" in prompt
    assert len(prompt) < EXPLAIN_CODE_MAX_TOKENS + 2000


def test_code_within_the_budget_is_shown_whole():
    code = "def f():\n    if x:\n        return 1\n"
    assert code_within(code, len, 100) == (code, False)
    outline, outlined = code_within(code, len, 30)
    assert outlined and outline == "def f():\n    if x:\n        ..."


def test_called_from_a_file_holding_a_caller_is_not_flagged(shop):
    result, _ = _explain("It is called from `report.py` and used in `checkout.py`.", shop)
    claims = [note for note in result.notes if note.startswith("“called by")]
    assert claims == ["“called by `checkout.py`”: the index finds no call of `mean` in "
                      "`checkout.py`; it is called by `spread`, `weekly_report`."]


def test_a_class_or_module_holding_a_caller_is_not_flagged_and_another_class_is(tmp_path):
    # The 1.5B on click: "`finish` is called by the `ProgressBar` class" (ProgressBar.generator
    # calls it) was flagged as a wrong caller; a false flag teaches users to skip the real ones.
    (tmp_path / "stats.py").write_text(STATS)
    (tmp_path / "ledger.py").write_text(
        "from stats import mean\n\n\nclass Ledger:\n    def average(self, rows):\n"
        "        return mean(rows)\n\n\nclass Audit:\n    def check(self, rows):\n"
        "        return sorted(rows)\n")
    index = WorkspaceIndex(tmp_path)
    index.refresh()
    result, _ = _explain("It is called by the `Ledger` class, used in the `ledger` module and "
                         "called by `Audit`.", index)
    assert result.notes == ("“called by `Audit`”: the index finds no call of `mean` in "
                            "`Audit`; it is called by `Ledger.average`, `spread`.",)


def test_a_hyphenated_word_after_used_in_is_not_taken_for_a_caller(shop):
    # The 1.5B on click: "a pattern used in command-line parsing" was read as a claim that
    # click's `command` calls the function.
    result, _ = _explain("A formula used in mean-field models, called by `spread`.", shop)
    assert result.notes == ()
    result, _ = _explain("A formula used in mean to scale.", shop)
    assert [note.split("”")[0] for note in result.notes] == ["“called by `mean`"]


def test_a_keyword_after_used_in_is_not_taken_for_a_caller(shop):
    result, _ = _explain("It is used in `with` blocks and called by `self` methods.", shop)
    assert result.notes == ()


# ---------------------------------------------------------------- sentences the index contradicts


def test_a_contradicted_sentence_is_rewritten_in_a_follow_up_and_the_note_says_what_it_read(shop):
    draft = "It averages `values`. It is used by `apply_discount` at checkout.\n\n- Input: a list."
    engine = ScriptedEngine([draft, "“It is called by `spread` and `weekly_report`.”"])
    result = explain(Run(engine), STATS, "python", 4, 4, path="stats.py", grounding=lambda d, lines:
                     grounding_for(shop, "stats.py", STATS, "python", d, lines, ""))
    body, notes = result.markdown.split(f"\n---\n{NOTES_HEADING}\n")
    assert body == ("### `mean`\n\nIt averages `values`. It is called by `spread` and "
                    "`weekly_report`.\n\n- Input: a list.\n")
    assert notes == ("- `apply_discount` is not defined or used anywhere in the workspace. "
                     "“called by `apply_discount`”: the index finds no call of `mean` in "
                     "`apply_discount`; it is called by `spread`, `weekly_report`. Rewritten; it "
                     "read: “It is used by `apply_discount` at checkout.”\n")
    assert result.draft == draft
    assert result.notes[1].startswith("“called by `apply_discount`”")
    # The follow-up continues the conversation: its head is the explain prompt, which the
    # engine's cache holds, then the draft and the question with the index's reason.
    first, follow_up = (engine.detokenize(prompt) for prompt in engine.prompts)
    assert follow_up.startswith(first)
    assert f"assistant: {draft}\n" in follow_up
    assert "It is used by `apply_discount` at checkout.\n\n`apply_discount` is not defined " \
           "or used anywhere in the workspace. “called by `apply_discount`”: the index finds " \
           "no call" in follow_up


def test_a_rewrite_the_index_still_contradicts_removes_the_sentence_and_its_list_item(shop):
    draft = "It averages.\n\n- Used by `apply_discount`.\n- Returns a float."
    result, _ = _explain([draft, "Used by `apply_discount` (checkout)."], shop)
    assert result.markdown.startswith("### `mean`\n\nIt averages.\n\n- Returns a float.\n\n---\n")
    assert result.markdown.endswith("Removed: “Used by `apply_discount`.”\n")


def test_an_answer_the_index_does_not_contradict_asks_no_follow_up(shop):
    engine = ScriptedEngine(["It averages `values`; `spread` and `weekly_report` call it."])
    result = explain(Run(engine), STATS, "python", 4, 4, path="stats.py", grounding=lambda d, lines:
                     grounding_for(shop, "stats.py", STATS, "python", d, lines, ""))
    assert len(engine.prompts) == 1
    assert NOTES_HEADING not in result.markdown


def test_sentences_beyond_the_rewrite_limit_are_kept_and_noted(shop):
    draft = " ".join(f"It feeds `missing_{n}`." for n in range(MAX_CORRECTED_SENTENCES + 1))
    result, _ = _explain([draft, "DROP"], shop)
    last = f"It feeds `missing_{MAX_CORRECTED_SENTENCES}`."
    assert result.markdown.startswith(f"### `mean`\n\n{last}\n\n---\n")
    assert result.markdown.count("Removed: “") == MAX_CORRECTED_SENTENCES
    assert result.markdown.endswith(f"- `missing_{MAX_CORRECTED_SENTENCES}` is not defined or "
                                    f"used anywhere in the workspace.\n")


def test_when_every_sentence_is_removed_the_panel_says_so(shop):
    result, _ = _explain(["It is used by `apply_discount`.", "DROP"], shop)
    assert result.markdown.startswith(f"### `mean`\n\n{ALL_CONTRADICTED}\n\n---\n")


def test_sentences_split_after_their_end_outside_code_spans_and_blocks(shop):
    draft = ("It reads `values.count`. See e.g. `spread` and `no_such_name`! Why?\n\n```python\n"
             "no_block_name([1.0])  # not. prose\n```\n\n1. **Inputs:** a list. Calls "
             "`nowhere_fn`.")
    flagged = flagged_sentences(draft, grounding_for(shop, "stats.py", STATS, "python", None,
                                                     (3, 4), ""))
    assert [sentence.text for sentence in flagged] == [
        "See e.g. `spread` and `no_such_name`!", "Calls `nowhere_fn`."]
    assert [draft[s.start:s.end] for s in flagged] == [s.text for s in flagged]
    assert flagged[1].notes == ("`nowhere_fn` is not defined or used anywhere in the workspace.",)


def test_while_sentences_are_rewritten_the_reader_is_told_and_the_answer_replaces_it(shop):
    engine = ScriptedEngine(["It averages. It is used by `apply_discount`.", "DROP"])
    shown: list[str] = []
    result = explain(Run(engine, on_text=shown.append), STATS, "python", 4, 4, path="stats.py",
                     grounding=lambda d, lines: grounding_for(shop, "stats.py", STATS, "python",
                                                              d, lines, ""))
    assert "".join(shown) == ("### `mean`\n\nIt averages. It is used by `apply_discount`.\n\n"
                              f"_{REWRITING}…_")
    assert result.markdown.startswith("### `mean`\n\nIt averages.\n\n---\n")


def test_a_caller_claim_in_the_active_voice_is_checked_too(shop):
    # The 1.5B on pathspec's `enumerate_patterns`: "The `PathSpec` class uses this function",
    # where only the backends' constructors call it.
    result, _ = _explain(["The `Report` class uses this function; `weekly_report` calls `mean` "
                          "too, and `spread` uses this function.", "DROP"], shop)
    assert [note.split("”")[0] for note in result.notes if note.startswith("“called by")] == [
        "“called by `Report`"]
    plain, _ = _explain("It uses `sum` and `len`; `spread` calls it.", shop)
    assert plain.notes == ()


def test_a_claim_in_a_relative_clause_about_something_else_is_not_checked(shop):
    # The 1.5B on pathspec's `_make_db`: "… calls `_make_db` to create the Hyperscan database,
    # which is then used by the `PathSpec` class": the database is, not the function.
    about_other, _ = _explain(["`spread` calls `mean` to get the centre, which is then used by "
                               "`audit` to rank values.", "DROP"], shop)
    assert not [note for note in about_other.notes if note.startswith("“called by")]
    about_it, _ = _explain(["`mean` is a small helper, which is used by `audit`.", "DROP"], shop)
    assert [note.split("”")[0] for note in about_it.notes if note.startswith("“called by")] == [
        "“called by `audit`"]


def test_callers_listed_after_several_are_checked_one_by_one(shop):
    # The 1.5B on click's `get_error_hint`: "called by several other methods in the `core.py`
    # file, including `Argument.get_error_hint`, …", a method that does not call it.
    result, _ = _explain(["It is called by several functions in `report.py`, including "
                          "`weekly_report`, `spread` and `audit_totals`. It averages.\n\n"
                          "- Used by various helpers\n- Used by many, such as `audit_totals`",
                          "DROP"], shop)
    assert [note.split("”")[0] for note in result.notes if note.startswith("“called by")] == [
        "“called by `audit_totals`"]  # once: the same note for two sentences


def test_a_list_item_that_opens_with_used_by_is_a_caller_claim(shop):
    result, _ = _explain(["It averages.\n\n- Used by `audit` to rank values.", "DROP"], shop)
    assert [note.split("”")[0] for note in result.notes if note.startswith("“called by")] == [
        "“called by `audit`"]


@pytest.mark.parametrize("sentence", [
    "It assumes a method `spread` that returns a list of parameters.",
    "If it returns None, it then calls `spread`.",
    "When the division returns an integer, it is converted."])
def test_a_return_said_of_something_else_is_not_a_claim_about_the_function(shop, sentence):
    # The 1.5B on click's `make_parser` and `get_text_stdin`: true sentences were removed.
    result, _ = _explain([f"It averages. {sentence}", "DROP"], shop)
    assert result.notes == ()


@pytest.mark.parametrize("answer", [
    "Returns an integer.", "- Returns an integer", "The function then returns an integer.",
    "The mean. `mean()` returns an integer."])
def test_a_return_said_of_the_function_is_checked(shop, answer):
    result, _ = _explain([answer, "DROP"], shop)
    assert result.notes == ("“returns int”: the function is annotated to return `float`.",)


def test_a_caller_with_a_builtins_name_said_to_be_a_method_is_checked(shop):
    # The 1.5B on click's `_wrap_io_open`: "used in the `open` method of the `File` class",
    # where only `open_stream` calls it; `open` was taken for the builtin and let pass.
    method, _ = _explain(["It averages. It is used in the `open` method of `Report`.", "DROP"],
                         shop)
    assert [note.split("”")[0] for note in method.notes if note.startswith("“called by")] == [
        "“called by `open`"]
    statement, _ = _explain("It is used in `with` statements and called by `self`.", shop)
    assert statement.notes == ()


def test_phrases_that_name_no_caller_or_no_returned_type_are_not_flagged(shop):
    # The 1.5B on click: "`Context.invoke`: This method is called when a command is invoked
    # from the command line" (click defines `command`), and `Tuple.to_info_dict` "returns
    # `None` for the `types` key" of the dict it returns.
    result, _ = _explain(["It averages. It runs when invoked from the command line. It returns "
                          "`None` for the `values` key when empty.", "DROP"], shop)
    assert result.notes == ()
    whole, _ = _explain(["It returns `None` when empty.", "DROP"], shop)
    assert whole.notes == ("“returns None”: the function is annotated to return `float`.",)
