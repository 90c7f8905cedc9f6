"""The server's workspace context: cross-file chunks for completion, related code for actions."""

from __future__ import annotations

from pathlib import Path

import pytest

from assist import actions, explain
from assist.completion import CompletionSettings, complete_in_workspace
from assist.workspace import WorkspaceContext, related_for
from model.prompts import FILE_SEP
from tests.fakes import ScriptedEngine

UNITS = '''def to_metres(feet: float) -> float:
    """Feet to metres."""
    return feet / 3.28084
'''

REPORT = '''from pkg.units import to_metres


def describe(feet):
    metres = to_metres(feet)
    return f"{metres:.1f} m"


def shout(text):
    return text.upper()
'''


@pytest.fixture
def workspace(tmp_path) -> tuple[WorkspaceContext, Path]:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "units.py").write_text(UNITS)
    (root / "pkg" / "report.py").write_text(REPORT)
    context = WorkspaceContext(home=tmp_path / "home")
    context.open_folder(root)
    return context, root


def complete(context: WorkspaceContext, engine: ScriptedEngine, path: Path, text: str,
             line: int, character: int, context_tokens: int = 1024) -> str:
    complete_in_workspace(context, engine, text, line, character, path=str(path),
                          repo_name="ws", settings=CompletionSettings(max_tokens=8),
                          context_tokens=context_tokens)
    return engine.detokenize(engine.prompts[-1])


def test_completion_prompt_carries_the_used_definition_from_another_file(workspace):
    context, root = workspace
    prompt = complete(context, ScriptedEngine(["x"]), root / "pkg" / "report.py", REPORT, 5, 4)
    assert f"{FILE_SEP}pkg/units.py\n{UNITS.rstrip()}\n" in prompt
    assert prompt.index("pkg/units.py") < prompt.index(f"{FILE_SEP}pkg/report.py\n")


def test_completion_context_respects_its_token_budget(workspace):
    context, root = workspace
    prompt = complete(context, ScriptedEngine(["x"]), root / "pkg" / "report.py", REPORT, 5, 4,
                      context_tokens=30)
    assert "pkg/units.py" not in prompt
    assert complete(context, ScriptedEngine(["x"]), root / "pkg" / "report.py", REPORT, 5, 4,
                    context_tokens=0).startswith("<|repo_name|>ws\n<|file_sep|>pkg/report.py")


def test_a_file_longer_than_the_prompt_window_brings_its_far_imports_once(workspace):
    """The FIM prefix holds the lines just above the cursor; the file's own imports, hundreds of
    lines up, come ahead of it as a chunk, and nothing the prefix shows is repeated."""
    context, root = workspace
    filler = "".join(f"def helper_{n}():\n    return {n}\n\n\n" for n in range(120))
    text = f"import json\nfrom pkg.units import to_metres\n\n\n{filler}def last(feet):\n    \n"
    path = root / "pkg" / "long.py"
    path.write_text(text)
    cursor = text.count("\n") - 1
    prompt = complete(context, ScriptedEngine(["x"]), path, text, cursor, 4)
    chunks, window = prompt.split(f"{FILE_SEP}pkg/long.py\n<|fim_prefix|>")
    assert f"{FILE_SEP}pkg/long.py\nimport json\nfrom pkg.units import to_metres\n" in chunks
    assert "import json" not in window and "def helper_0()" not in window
    assert "def helper_119()" in window and "def helper_119()" not in chunks


def test_typing_in_one_function_keeps_the_prompt_head(workspace):
    context, root = workspace
    engine = ScriptedEngine(["x"])
    path = root / "pkg" / "report.py"
    first = complete(context, engine, path, REPORT, 5, 4)
    typed = REPORT.replace("    return f", "    return  f")
    context.document_changed(str(path), typed, 5)
    second = complete(context, engine, path, typed, 5, 5)
    head = first.index("<|fim_prefix|>")
    assert second[:head] == first[:head]


def test_a_file_keeps_its_prompt_name_while_its_folder_is_still_being_indexed(tmp_path):
    """The first keystrokes after start-up come before the index is ready: naming the file
    differently then would move the prompt head and throw the KV cache away once it is."""
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    path = root / "pkg" / "report.py"
    path.write_text(REPORT)
    context = WorkspaceContext(home=tmp_path / "home")
    context.add_folder(root)
    before = complete(context, ScriptedEngine(["x"]), path, REPORT, 5, 4, context_tokens=0)
    context.open_folder(root)
    after = complete(context, ScriptedEngine(["x"]), path, REPORT, 5, 4, context_tokens=0)
    assert before.startswith(f"<|repo_name|>ws\n{FILE_SEP}pkg/report.py\n")
    assert before == after


def test_an_edit_in_another_file_reaches_the_next_completion_after_save(workspace):
    context, root = workspace
    units = root / "pkg" / "units.py"
    renamed = UNITS.replace("Feet to metres.", "Feet to metres (international foot).")
    context.document_changed(str(units), renamed, 1)
    context.document_saved(str(units), renamed)
    prompt = complete(context, ScriptedEngine(["x"]), root / "pkg" / "report.py", REPORT, 5, 4)
    assert "international foot" in prompt


def test_explain_shows_the_functions_callees_from_other_files(workspace):
    context, root = workspace
    engine = ScriptedEngine(["It converts feet."])
    path = root / "pkg" / "report.py"
    related = related_for(context, str(path), REPORT, 4, engine)
    explain.explain(actions.Run(engine), REPORT, "python", 4, 4, related=related)
    prompt = engine.detokenize(engine.prompts[-1])
    assert "`pkg/units.py` lines 1-3 (the target uses `to_metres` (jedi))" in prompt
    assert "return feet / 3.28084" in prompt


def test_a_file_outside_every_folder_completes_without_context(tmp_path, workspace):
    context, _ = workspace
    lone = tmp_path / "lone.py"
    prompt = complete(context, ScriptedEngine(["x"]), lone, "x = 1\n", 0, 5)
    assert prompt.startswith("<|repo_name|>ws\n<|file_sep|>lone.py\n")


def test_the_context_budget_is_a_client_setting():
    from server.settings import settings_from_client

    settings, warnings = settings_from_client({"inlineCompletions": {"contextTokens": 0}})
    assert (settings.inline_context_tokens, warnings) == (0, [])
