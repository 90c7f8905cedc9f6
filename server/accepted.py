"""`smallcoder/accepted`: the client says the user accepted a Solve fix or a refactoring it was
offered, and the server keeps that change for the next training run (training/accepted.py).

Only while `smallcoder.training.learnFromAccepted` is on: a solved fix or a refactoring is then
remembered under an `offerId` returned with it, and the notification names that id. The client
never sends the code itself: what is kept is what the server offered, with the tests' evidence
from the agent's transcript (assist/accepted.py builds them). A change with a secret in it is
refused and said so in the log.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from typing import Any

from server.protocol import optional_field
from training.accepted import AcceptedChange, AcceptedWorkRefused, record_accepted

ACCEPTED_METHOD = "smallcoder/accepted"
# Offers not yet accepted are forgotten past this many (the user discarded them, or moved on).
MAX_OFFERS = 16


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
