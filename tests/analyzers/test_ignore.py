"""The user's ignore rules: `.smallcoderignore` (gitignore syntax) and `smallcoder.exclude`,
honoured by the index, the packer and training."""

from __future__ import annotations

from pathlib import Path

from analyzers.ignore import rules_from_patterns, workspace_rules
from analyzers.index import WorkspaceIndex
from assist.workspace import WorkspaceContext
from training.mine import mine

SOURCE = "def area(radius):\n    return 3.14 * radius * radius\n"


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_ignore_file_speaks_gitignore(tmp_path):
    root = folder_with(tmp_path, {".smallcoderignore": "# local only\nsecrets/\n*.gen.py\n"
                                                      "!keep.gen.py\n"})
    rules = workspace_rules(root)
    assert rules.ignores("secrets/keys.py")
    assert rules.ignores("deep/down/api.gen.py")
    assert not rules.ignores("keep.gen.py")
    assert not rules.ignores("app.py")
    assert rules.problems == ()


def test_a_malformed_line_is_skipped_and_named_and_the_rest_holds(tmp_path):
    root = folder_with(tmp_path, {".smallcoderignore": "broken\\\nsecrets/\n"})
    rules = workspace_rules(root, exclude=("[z-a]", "*.log.py"))
    assert rules.ignores("secrets/keys.py") and rules.ignores("server.log.py")
    (file_problem, setting_problem) = rules.problems
    assert ".smallcoderignore:1" in file_problem and "broken" in file_problem
    assert "smallcoder.exclude" in setting_problem and "[z-a]" in setting_problem


def test_no_rules_ignore_nothing():
    assert not rules_from_patterns([]).ignores("anything.py")


def test_the_index_leaves_ignored_files_out_and_takes_them_back(tmp_path):
    root = folder_with(tmp_path, {"app.py": SOURCE, "secrets/keys.py": SOURCE})
    index = WorkspaceIndex.open(root, rules=workspace_rules(root, exclude=("secrets/",)))
    assert [entry.path for entry in index.files()] == ["app.py"]
    index.file_changed(str(root / "secrets" / "keys.py"))
    index.update_document(str(root / "secrets" / "keys.py"), SOURCE)
    assert [entry.path for entry in index.files()] == ["app.py"]
    index.set_rules(workspace_rules(root))
    assert [entry.path for entry in index.files()] == ["app.py", "secrets/keys.py"]


def test_context_never_packs_an_ignored_file(tmp_path):
    root = folder_with(tmp_path, {"geometry.py": SOURCE, ".smallcoderignore": "geometry.py\n"})
    context = WorkspaceContext(home=tmp_path / "home")
    context.open_folder(root)
    user = "from geometry import area\n\n\ndef report(r):\n    return area(r)\n"
    context.document_changed(str(root / "report.py"), user, 4)
    context.document_changed(str(root / "geometry.py"), SOURCE, 1)
    chunks = context.completion_context(str(root / "report.py"), user, 4, 2000, len)
    assert not any("3.14" in chunk.text for chunk in chunks)
    assert context.ignored(str(root / "geometry.py"))
    assert not context.ignored(str(root / "report.py"))


def test_the_next_pack_sees_a_file_changed_on_disk(tmp_path):
    root = folder_with(tmp_path, {"geometry.py": SOURCE})
    context = WorkspaceContext(home=tmp_path / "home")
    context.open_folder(root)
    user = "from geometry import volume\n\n\ndef report(r):\n    return volume(r)\n"
    path = str(root / "report.py")
    before = context.completion_context(path, user, 4, 2000, len)
    assert not any("def volume" in chunk.text for chunk in before)
    (root / "geometry.py").write_text(SOURCE + "\n\ndef volume(radius):\n    return 4.19 * "
                                               "radius ** 3\n")
    context.files_changed([str(root / "geometry.py")])
    after = context.completion_context(path, user, 4, 2000, len)
    assert any("def volume" in chunk.text for chunk in after)


def test_an_exclude_setting_change_reaches_the_index(tmp_path):
    root = folder_with(tmp_path, {"app.py": SOURCE, "gen/api.py": SOURCE})
    context = WorkspaceContext(home=tmp_path / "home")
    index = context.open_folder(root)
    assert len(index.files()) == 2
    context.set_exclude(("gen/",))
    assert context.ignored(str(root / "gen" / "api.py"))
    context.refresh_indexes()
    assert [entry.path for entry in index.files()] == ["app.py"]


def test_training_skips_what_the_ignore_file_names(tmp_path):
    root = folder_with(tmp_path, {"app.py": SOURCE, "private/notes.py": SOURCE.replace(
        "area", "secret_area"), ".smallcoderignore": "private/\n"})
    dataset = mine([root])
    paths = {source.path for source in (*dataset.train, *dataset.held_out, *dataset.validation)}
    assert "private/notes.py" not in paths
    assert dataset.stats.dropped["named by .smallcoderignore"] == 1
