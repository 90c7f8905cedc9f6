"""Generated text on its way to the caller: cut at stop strings or a stop rule, streamed in
pieces, holding back what could still turn out to be the start of a stop string.
"""

from __future__ import annotations

from collections.abc import Callable

# Given all text generated so far, return where to cut it and stop, or None to go on.
StopRule = Callable[[str], int | None]


class TextStream:
    """Accumulates generated text, cuts it at stop strings or a stop rule, and streams it.

    Text that could be the start of a stop string is held back until it is known not to be.
    """

    def __init__(self, stops: tuple[str, ...], rule: StopRule | None,
                 on_text: Callable[[str], None] | None) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._rule = rule
        self._on_text = on_text
        self._text = ""
        self._emitted = 0
        self._hold = max((len(stop) - 1 for stop in self._stops), default=0)

    def feed(self, piece: str) -> bool:
        """Add a piece; True when the text is complete and generation should stop."""
        self._text += piece
        cut = self._cut_position()
        if cut is not None:
            self._text = self._text[:cut]
            self._emit(len(self._text))
            return True
        self._emit(len(self._text) - self._hold)
        return False

    def finish(self, tail: str) -> str:
        self._text += tail
        cut = self._cut_position()
        if cut is not None:
            self._text = self._text[:cut]
        self._emit(len(self._text))
        return self._text

    def _cut_position(self) -> int | None:
        cuts = [index for stop in self._stops if (index := self._text.find(stop)) >= 0]
        if self._rule is not None and (ruled := self._rule(self._text)) is not None:
            cuts.append(ruled)
        return min(cuts) if cuts else None

    def _emit(self, upto: int) -> None:
        if self._on_text is None or upto <= self._emitted:
            return
        self._on_text(self._text[self._emitted:upto])
        self._emitted = upto
