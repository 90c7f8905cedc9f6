"""What a new prompt can keep of what the engine's KV cache already holds: the common head,
chunks found elsewhere in the cache that can be shifted into place, or a saved state to restore.

Pure list work, no llama.cpp: model/prompt_cache.py carries the plans out on a llama context.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# A live sequence that would lose at least this many tokens is saved first, and a saved state
# is worth keeping only if it holds this many tokens no newer state holds. A lean first answer's
# prompt is short (70-90 tokens) and is asked for again at every keystroke while the editor's
# own prompt warms between them: on a slow CPU (36 prompt tokens/s in bench/session.py) that
# evaluated 55-70 tokens again each time, 2-4 s, where a restore copies 2 MB.
SAVE_MIN_TOKENS = 32
# A saved state is restored when it serves at least this many more tokens than the live cache:
# a restore copies the whole state (tens of ms), a few tokens cost about that to evaluate.
RESTORE_MIN_GAIN_TOKENS = 8
# The shortest run of tokens shifted into a new place (see bench/reuse.py). A shifted chunk's
# cells saw other tokens before them, so a short one is more likely to mislead than to pay.
REUSE_MIN_TOKENS = 64
# Chunks are found by runs of this many tokens; a chunk is at least this long.
ANCHOR_TOKENS = 8
# Places a run may recur in the cache that are tried (the nearest to where it is wanted):
# repetitive code would otherwise make the planner quadratic.
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Chunk:
    """`length` tokens held at positions `source`… of the cache, wanted at `target`…"""

    source: int
    target: int
    length: int


@dataclass(frozen=True)
class SavedState:
    """A sequence's KV state as llama.cpp wrote it (opaque here), and the tokens it holds."""

    tokens: tuple[int, ...]
    data: object
    size_bytes: int


@dataclass(frozen=True)
class SyncPlan:
    """How to bring the cache to hold a prompt: optionally restore a saved state first, keep
    the first `kept` tokens of what is then held, and shift `chunks` into place."""

    restore: SavedState | None
    kept: int
    chunks: tuple[Chunk, ...]
    save_live: bool

    @property
    def shifted_tokens(self) -> int:
        return sum(chunk.length for chunk in self.chunks)

    @property
    def cached_tokens(self) -> int:
        return self.kept + self.shifted_tokens


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    return match_length(a, 0, b, 0)


def match_length(a: Sequence[int], i: int, b: Sequence[int], j: int) -> int:
    """How many tokens `a[i:]` and `b[j:]` share from their start."""
    limit = min(len(a) - i, len(b) - j)
    # Compare in blocks: a slice comparison runs in C, a Python loop per token does not.
    done, block = 0, 64
    while done < limit:
        end = min(limit, done + block)
        if a[i + done:i + end] != b[j + done:j + end]:
            break
        done = end
    while done < limit and a[i + done] == b[j + done]:
        done += 1
    return done


def plan_chunks(cached: Sequence[int], prompt: Sequence[int], start: int,
                min_tokens: int = REUSE_MIN_TOKENS) -> tuple[Chunk, ...]:
    """Runs of at least `min_tokens` tokens of `prompt[start:]` that `cached[start:]` holds,
    in the same order in both. Longer runs are taken first, so that a short run that happens
    to match cannot keep a long one out. Positions before `start` are the common head."""
    min_tokens = max(min_tokens, ANCHOR_TOKENS)
    runs = sorted(_maximal_runs(cached, prompt, start, min_tokens),
                  key=lambda run: (-run.length, run.target))
    chosen: list[Chunk] = []
    for run in runs:
        if all(_in_order(run, other) for other in chosen):
            chosen.append(run)
    return tuple(sorted(chosen, key=lambda chunk: chunk.target))


def _in_order(a: Chunk, b: Chunk) -> bool:
    """Whether `a` lies wholly before or wholly after `b`, in the cache and in the prompt."""
    return ((a.target + a.length <= b.target and a.source + a.length <= b.source)
            or (b.target + b.length <= a.target and b.source + b.length <= a.source))


def _maximal_runs(cached: Sequence[int], prompt: Sequence[int], start: int,
                  min_tokens: int) -> Iterator[Chunk]:
    """Shared runs of at least `min_tokens` tokens that cannot be extended backwards."""
    places = _anchor_places(cached, start)
    for here in range(start, len(prompt) - min_tokens + 1):
        found = places.get(tuple(prompt[here:here + ANCHOR_TOKENS]))
        if not found:
            continue
        for source in _nearest(found, here):
            if here > start and source > start and prompt[here - 1] == cached[source - 1]:
                continue
            length = match_length(cached, source, prompt, here)
            if length >= min_tokens:
                yield Chunk(source, here, length)


def _anchor_places(cached: Sequence[int], start: int) -> dict[tuple[int, ...], list[int]]:
    places: dict[tuple[int, ...], list[int]] = {}
    for position in range(start, len(cached) - ANCHOR_TOKENS + 1):
        places.setdefault(tuple(cached[position:position + ANCHOR_TOKENS]), []).append(position)
    return places


def _nearest(places: list[int], position: int) -> list[int]:
    """The MAX_CANDIDATES places nearest `position`: a moved chunk moved by little."""
    if len(places) <= MAX_CANDIDATES:
        return places
    middle = bisect.bisect_left(places, position)
    window = places[max(0, middle - MAX_CANDIDATES):middle + MAX_CANDIDATES]
    return sorted(window, key=lambda place: abs(place - position))[:MAX_CANDIDATES]


def plan_sync(live: Sequence[int], goal: Sequence[int], saved: Sequence[SavedState],
              reuse_min_tokens: int | None, live_prompt_tokens: int | None = None) -> SyncPlan:
    """The cheapest way to make the cache hold `goal`, from the `live` tokens it holds or from
    the saved state sharing the longest head with `goal`; chunks are shifted when
    `reuse_min_tokens` is set. `save_live` says the live sequence is about to lose enough of
    its first `live_prompt_tokens` (all by default) that it should be saved first: the tokens
    after them were generated, and no prompt asks for those at their place again."""
    kept = common_prefix_length(live, goal)
    chunks = _chunks(live, goal, kept, reuse_min_tokens)
    plan = SyncPlan(None, kept, chunks, False)
    best = max(saved, key=lambda state: common_prefix_length(state.tokens, goal), default=None)
    if best is not None:
        head = common_prefix_length(best.tokens, goal)
        if head >= plan.cached_tokens + RESTORE_MIN_GAIN_TOKENS:
            plan = SyncPlan(best, head, _chunks(best.tokens, goal, head, reuse_min_tokens),
                            False)
    reused_live = plan.cached_tokens if plan.restore is None else 0
    prompt = live[:live_prompt_tokens]
    lost = len(prompt) - reused_live
    if lost >= SAVE_MIN_TOKENS and not any(_covers(state.tokens, prompt) for state in saved):
        plan = SyncPlan(plan.restore, plan.kept, plan.chunks, True)
    return plan


def _chunks(cached: Sequence[int], goal: Sequence[int], kept: int,
            reuse_min_tokens: int | None) -> tuple[Chunk, ...]:
    if reuse_min_tokens is None or kept >= len(goal):
        return ()
    return plan_chunks(cached, goal, kept, reuse_min_tokens)


def _covers(saved: Sequence[int], tokens: Sequence[int]) -> bool:
    """Whether `saved` holds all but fewer than SAVE_MIN_TOKENS of `tokens`' head."""
    return common_prefix_length(saved, tokens) > len(tokens) - SAVE_MIN_TOKENS


class SavedStates:
    """Saved sequence states, least recently used first, within a size in bytes."""

    def __init__(self, limit_bytes: int) -> None:
        self._lock = threading.Lock()
        self._states: OrderedDict[int, SavedState] = OrderedDict()
        self._next_key = 0
        self.limit_bytes = limit_bytes
        self.saves = 0
        self.restores = 0

    def snapshot(self) -> list[SavedState]:
        with self._lock:
            return list(self._states.values())

    def add(self, state: SavedState) -> None:
        """Keep `state` as the most recent; states it covers go, then the least recent ones
        until the total fits. A state larger than the whole limit is not kept."""
        with self._lock:
            self.saves += 1
            for key, old in list(self._states.items()):
                if _covers(state.tokens, old.tokens):
                    del self._states[key]
            if state.size_bytes > self.limit_bytes:
                return
            self._states[self._next_key] = state
            self._next_key += 1
            self._evict()

    def used(self, state: SavedState) -> None:
        """`state` was restored: it becomes the most recent."""
        with self._lock:
            self.restores += 1
            for key, held in self._states.items():
                if held is state:
                    self._states.move_to_end(key)
                    break

    def set_limit(self, limit_bytes: int) -> None:
        with self._lock:
            self.limit_bytes = max(0, limit_bytes)
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._states.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"entries": len(self._states), "bytes": self._bytes(),
                    "limit_bytes": self.limit_bytes, "saves": self.saves,
                    "restores": self.restores}

    def _bytes(self) -> int:
        return sum(state.size_bytes for state in self._states.values())

    def _evict(self) -> None:
        while self._states and self._bytes() > self.limit_bytes:
            self._states.popitem(last=False)
