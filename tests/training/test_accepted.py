"""Learning from accepted work: fixes from Solve with Agent and refactorings the user accepted
are kept privately, never with a secret, and flow into the next training run as examples."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.training.test_training import git, module_variant, write
from training.accepted import (
    ACCEPTED_EXAMPLE_WEIGHT,
    AcceptedChange,
    AcceptedWorkRefused,
    accepted_examples,
    changed_cut,
    load_accepted,
    record_accepted,
)

BUGGY = '''def total_cents(prices: list[int]) -> int:
    """Sum of the prices, in cents."""
    total = 0
    for price in prices:
        total = price
    return total


def describe(names: list[str]) -> str:
    return ", ".join(names)
'''
FIXED = BUGGY.replace("        total = price\n", "        total += price\n")


def fix(workspace: Path, path: str = "shop/totals.py", before: str = BUGGY,
        after: str = FIXED) -> AcceptedChange:
    return AcceptedChange("fix", str(workspace), path, before, after, {
        "test_command": "python -m pytest -q",
        "failing_before": ["tests/test_totals.py::test_total"], "passing_after": True})


def test_an_accepted_fix_is_kept_readable_by_the_user_alone(tmp_path):
    path = record_accepted(fix(tmp_path / "shop"), home=tmp_path / "home")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert record_accepted(fix(tmp_path / "shop"), home=tmp_path / "home") == path
    changes, skipped = load_accepted(tmp_path / "home")
    assert skipped == 0
    assert [(change.kind, change.path, change.after) for change in changes] == [
        ("fix", "shop/totals.py", FIXED)]
    assert changes[0].evidence["failing_before"] == ["tests/test_totals.py::test_total"]


def test_a_change_holding_a_secret_is_not_kept(tmp_path):
    leaky = FIXED + 'GITHUB_TOKEN = "ghp_' + "a1B2c3D4e5F6g7H8i9J0" * 2 + 'xyzw"\n'
    with pytest.raises(AcceptedWorkRefused, match="GitHub token"):
        record_accepted(fix(tmp_path, after=leaky), home=tmp_path / "home")
    assert load_accepted(tmp_path / "home") == ([], 0)


def test_a_kept_change_with_a_secret_the_filter_now_finds_is_skipped(tmp_path):
    folder = tmp_path / "home" / "accepted"
    folder.mkdir(parents=True)
    record = vars(fix(tmp_path)) | {"after": FIXED + 'password = "Tr0ub4dor&3xyz"\n'}
    (folder / "fix-planted.json").write_text(json.dumps(record))
    (folder / "fix-broken.json").write_text("{not json")
    assert load_accepted(tmp_path / "home") == ([], 2)


def test_the_middle_of_an_accepted_fix_is_the_statement_it_changed():
    cut = changed_cut(BUGGY, FIXED, "python")
    assert FIXED[cut.start:cut.end] == "total += price"
    assert changed_cut(FIXED, FIXED, "python") is None


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from tests.tiny_qwen import write_tiny_qwen_gguf

    return write_tiny_qwen_gguf(tmp_path_factory.mktemp("tiny-model") / "tiny-qwen2.gguf")


def test_accepted_examples_ask_for_the_accepted_code_and_weigh_more(tiny_model, tmp_path):
    from training.examples import IGNORE_INDEX, GgufTokenizer

    tokenizer = GgufTokenizer(tiny_model)
    changes = [fix(tmp_path / "shop"), fix(tmp_path / "shop", path="shop/held_out.py")]
    examples, used = accepted_examples(changes, tokenizer,
                                       held_out=[("shop", "shop/held_out.py")])
    assert used == 1 and len(examples) == ACCEPTED_EXAMPLE_WEIGHT
    middle = tokenizer.detokenize([label for label in examples[0].labels
                                   if label != IGNORE_INDEX])
    assert middle.lstrip() == "total += price<|endoftext|>"  # after the held-back blanks
    assert examples[0].kind == "accepted fix"


def test_a_recorded_fix_flows_into_the_next_training_run(tiny_model, tmp_path, monkeypatch):
    from training.pipeline import train_personal_adapter
    from training.train import TrainConfig

    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q")
    for index in range(8):
        write(repo, f"shop/helpers_{index}.py", module_variant(index))
    write(repo, "shop/totals.py", FIXED)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    write(repo, "shop/recent.py", module_variant(30))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "second", when="2026-06-01T00:00:00")
    monkeypatch.setenv("SMALLCODER_HOME", str(tmp_path / "home"))
    record_accepted(fix(repo))

    said = []
    config = TrainConfig(rank=4, alpha=8.0, max_steps=1, grad_accum=1, dtype="float32",
                         gradient_checkpointing=True, threads=1)
    result = train_personal_adapter([repo], tmp_path / "personal.gguf", model=str(tiny_model),
                                    config=config, accepted_work=True, eval_examples=1,
                                    guard_sample=1, say=said.append)
    assert any(line.startswith("accepted work: 1 of 1 kept changes give "
                               f"{ACCEPTED_EXAMPLE_WEIGHT} examples") for line in said)
    report = result.report.read_text()
    assert (f"- examples from your accepted work: {ACCEPTED_EXAMPLE_WEIGHT} "
            f"({ACCEPTED_EXAMPLE_WEIGHT} of fixes from Solve with Agent, 0 of refactorings"
            in report)
