"""`smallcoder/accepted`: the client says the user accepted a Solve fix or a refactoring it was
offered, and the server keeps that change for the next training run (training/accepted.py).

Only while `smallcoder.training.learnFromAccepted` is on: a solved fix or a refactoring is then
remembered under an `offerId` returned with it, and the notification names that id. The client
never sends the code itself: what is kept is what the server offered, with the tests' evidence
from the agent's transcript. A change with a secret in it is refused and said so in the log.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

from agent.solve import SolveResult
from server.protocol import optional_field, path_of
from training.accepted import AcceptedChange, AcceptedWorkRefused, record_accepted

ACCEPTED_METHOD = "smallcoder/accepted"
# Offers not yet accepted are forgotten past this many (the user discarded them, or moved on).
MAX_OFFERS = 16
# Failure messages kept as a fix's evidence, and how much of each.
EVIDENCE_MESSAGES = 5
EVIDENCE_MESSAGE_CHARS = 500


class AcceptedOffers:
    """Changes shown to the user for review, by offer id, until accepted or pushed out."""

    def __init__(self, limit: int = MAX_OFFERS) -> None:
        self._offers: OrderedDict[str, list[AcceptedChange]] = OrderedDict()
        self._limit = limit

    def offer(self, changes: list[AcceptedChange]) -> str | None:
        """An id for `changes`, or None when there is nothing to keep."""
        if not changes:
            return None
        offer_id = uuid.uuid4().hex
        self._offers[offer_id] = changes
        while len(self._offers) > self._limit:
            self._offers.popitem(last=False)
        return offer_id

    def take(self, offer_id: str) -> list[AcceptedChange]:
        return self._offers.pop(offer_id, [])


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


def refactor_change(folders: list[Path], uri: str, before: str, after: str, function: str,
                    instruction: str) -> list[AcceptedChange]:
    """The refactored file, relative to the workspace folder that holds it."""
    path = Path(path_of(uri))
    workspace = next((folder for folder in folders if path.is_relative_to(folder)), path.parent)
    return [AcceptedChange("refactor", str(workspace), path.relative_to(workspace).as_posix(),
                           before, after, {"function": function, "instruction": instruction})]


def register(server) -> None:
    @server.feature(ACCEPTED_METHOD)
    async def accepted(ls, params: Any) -> None:
        """Kept only while the setting is on: turning it off after an offer keeps nothing."""
        offer_id = optional_field(params, "offerId", str)
        changes = ls.accepted_offers.take(offer_id) if offer_id else []
        if not ls.settings.training_learn_from_accepted:
            return
        for change in changes:
            try:
                kept = await asyncio.to_thread(record_accepted, change)
            except (AcceptedWorkRefused, OSError) as error:
                ls.log("warning", f"accepted {change.kind} of {change.path}: {error}")
                continue
            ls.log("info", f"accepted {change.kind} of {change.path} kept for training: {kept}")
