"""Work the user accepted: fixes from Solve with Agent that made failing tests pass, and
refactorings applied from the editor, kept to be learned from in the next training run.

Opt-in (`smallcoder.training.learnFromAccepted`, `smallcoder train --accepted-work`). Each
accepted file change is one JSON file under $SMALLCODER_HOME/accepted/ (0600, folder 0700),
refused when any of its text holds a secret (training/secrets.py, as for mined files). A run
turns each into an example whose middle is the accepted code, repeated ACCEPTED_EXAMPLE_WEIGHT
times: it is the user's own verified choice, worth more than a line mined from history.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from analyzers.syntax import language_for_path
from model.home import smallcoder_home
from model.prompts import Tokenizer
from training.examples import Cut, Example, example_for_cut, syntax_cuts
from training.mine import SourceFile
from training.secrets import find_secrets

ACCEPTED_FOLDER = "accepted"
ACCEPTED_EXAMPLE_WEIGHT = 4
PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700
KINDS = ("fix", "refactor")


class AcceptedWorkRefused(ValueError):
    """The change is not kept; the message says why (a secret in it, an unknown kind)."""


@dataclass(frozen=True)
class AcceptedChange:
    """One file as it was before and after a change the user accepted.

    `evidence` says why it is trusted: for a fix the test command, the tests that failed
    before and the run that passed after; for a refactor the function and the instruction.
    """

    kind: str  # "fix" | "refactor"
    workspace: str  # the folder the change was made in
    path: str  # relative to the workspace, with /
    before: str
    after: str
    evidence: dict = field(default_factory=dict)
    recorded_at: float = 0.0

    @property
    def repo(self) -> str:
        """The repository's name as the miner names it (the folder's name)."""
        return Path(self.workspace).name

    def texts(self) -> Iterable[tuple[str, str]]:
        """(text, file name) of everything kept, for the secrets check."""
        yield self.before, self.path
        yield self.after, self.path
        yield json.dumps(self.evidence), ""


def accepted_folder(home: Path | None = None) -> Path:
    return (home or smallcoder_home()) / ACCEPTED_FOLDER


def secret_in(change: AcceptedChange) -> str | None:
    """What kind of secret the change holds and where, or None."""
    for text, name in change.texts():
        findings = find_secrets(text, name)
        if findings:
            return f"{findings[0].kind} on line {findings[0].line} of {name or 'its evidence'}"
    return None


def record_accepted(change: AcceptedChange, home: Path | None = None) -> Path:
    """Keep `change` for the next training run; returns its file. The same change recorded twice
    is one file. Raises AcceptedWorkRefused for a change with a secret in it."""
    if change.kind not in KINDS:
        raise AcceptedWorkRefused(f"unknown kind of accepted work {change.kind!r}")
    if (secret := secret_in(change)) is not None:
        raise AcceptedWorkRefused(f"not kept for training: {change.path} holds a secret "
                                  f"({secret})")
    folder = accepted_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, PRIVATE_FOLDER_MODE)
    record = asdict(change) | {"recorded_at": change.recorded_at or time.time()}
    key = json.dumps({name: record[name] for name in ("kind", "workspace", "path", "before",
                                                      "after")}, sort_keys=True)
    path = folder / f"{change.kind}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with open(descriptor, "w", encoding="utf-8") as sink:
        json.dump(record, sink)
    return path


def load_accepted(home: Path | None = None) -> tuple[list[AcceptedChange], int]:
    """Every kept change, oldest first, and how many files were skipped (unreadable, or with
    a secret the filter now finds)."""
    changes, skipped = [], 0
    folder = accepted_folder(home)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            change = AcceptedChange(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            skipped += 1
            continue
        if change.kind not in KINDS or secret_in(change) is not None:
            skipped += 1
            continue
        changes.append(change)
    return sorted(changes, key=lambda change: change.recorded_at), skipped


def changed_cut(before: str, after: str, language: str) -> Cut | None:
    """Where `after` differs from `before`, widened to the smallest whole statement or block
    of `after` that holds it; None when nothing was added (a pure deletion)."""
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    changed = [(j1, j2) for tag, _, _, j1, j2 in difflib.SequenceMatcher(
        None, old_lines, new_lines, autojunk=False).get_opcodes() if tag != "equal" and j2 > j1]
    if not changed:
        return None
    offsets = [0]
    for line in new_lines:
        offsets.append(offsets[-1] + len(line))
    first = new_lines[changed[0][0]]
    # Statements start after their indentation and end before their newline.
    start = offsets[changed[0][0]] + len(first) - len(first.lstrip())
    end = max(start, len(after[:offsets[changed[-1][1]]].rstrip()))
    holding = [cut for cut in syntax_cuts(after, language) if cut.start <= start
               and cut.end >= end]
    if holding:
        return min(holding, key=lambda cut: cut.end - cut.start)
    return Cut(start, end, "statement")


def accepted_examples(changes: Iterable[AcceptedChange], tokenizer: Tokenizer,
                      held_out: Iterable[tuple[str, str]] = (),
                      weight: int = ACCEPTED_EXAMPLE_WEIGHT) -> tuple[list[Example], int]:
    """Training examples of the accepted changes, each repeated `weight` times, and how many
    changes they came from. A change to a file in `held_out` ((repo, path) pairs: the files the
    evaluation tests on) is left out, or the report would test on what was trained on."""
    excluded = set(held_out)
    examples, used = [], 0
    for change in changes:
        language = language_for_path(change.path)
        if language is None or (change.repo, change.path) in excluded:
            continue
        cut = changed_cut(change.before, change.after, language)
        if cut is None:
            continue
        source = SourceFile(change.repo, change.path, language, change.after, 0.0)
        example = example_for_cut(source, cut, tokenizer)
        if example is None:
            continue
        examples += [replace(example, kind=f"accepted {change.kind}")] * weight
        used += 1
    return examples, used
