"""The changes a user accepted, as training/accepted.py keeps them: a Solve fix with the tests
that failed before it as evidence, or a refactoring with its function and instruction. Both
front doors build them here: the server when the user applies an offer, the CLI with --learn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.solve import SolveResult
from training.accepted import AcceptedChange

# Failure messages kept as a fix's evidence, and how much of each.
EVIDENCE_MESSAGES = 5
EVIDENCE_MESSAGE_CHARS = 500


def fix_changes(workspace: Path, test_command: str, result: SolveResult) -> list[AcceptedChange]:
    """The files a solved run changed, with the tests it made pass as evidence; nothing for a
    run that did not end green (only a passing run verifies a fix)."""
    if result.status != "solved":
        return []
    evidence = {"test_command": test_command, "rounds": result.rounds,
                **failures_before(result.transcript), "passing_after": True}
    return [AcceptedChange("fix", str(workspace), change.path, change.old_text,
                           change.new_text, evidence) for change in result.changes]


def failures_before(transcript: Path) -> dict[str, Any]:
    """The failing tests and their first messages in the run before any change."""
    try:
        lines = transcript.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in lines:
        record = json.loads(line)
        if record.get("kind") == "tests" and record.get("round") == 0:
            return {"failing_before": record.get("failing", []),
                    "messages": [message[:EVIDENCE_MESSAGE_CHARS] for message
                                 in record.get("messages", [])[:EVIDENCE_MESSAGES]]}
    return {}


def refactor_change(folders: list[Path], path: Path, before: str, after: str, function: str,
                    instruction: str) -> list[AcceptedChange]:
    """The refactored file, relative to the first of `folders` that holds it (else its own
    folder)."""
    workspace = next((folder for folder in folders if path.is_relative_to(folder)), path.parent)
    return [AcceptedChange("refactor", str(workspace), path.relative_to(workspace).as_posix(),
                           before, after, {"function": function, "instruction": instruction})]
