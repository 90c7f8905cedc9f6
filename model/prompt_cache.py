"""The embedded engine's KV cache on a llama context: brings sequence 0 to hold a prompt, a
slice at a time, keeping what it can (model/kv_cache.py plans it) and timing what it evaluates.

Invariant between calls: `llm.input_ids[:llm.n_tokens]` are the tokens sequence 0 holds, at
positions 0… in that order (prompt lookup and llama-cpp-python rely on it). Chunks waiting to
be shifted into place sit in sequence 1 at their new positions ("parked") until the tokens
before them are evaluated: llama.cpp only appends to a sequence right after its last position.
"""

from __future__ import annotations

import ctypes
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from model.errors import ModelError
from model.kv_cache import (
    REUSE_MIN_TOKENS,
    SavedState,
    SavedStates,
    SyncPlan,
    common_prefix_length,
    plan_sync,
)

LIVE_SEQ = 0
PARKED_SEQ = 1
# Prompt-speed samples: evaluations of fewer tokens say more about overhead than speed.
SPEED_MIN_TOKENS = 16
SPEED_WEIGHT = 0.3
# Tokens timed at load (after a few that page the weights in, too few to count).
SPEED_PROBE_TOKENS = 64


@dataclass(frozen=True)
class SyncStep:
    """One step toward a prompt: tokens evaluated, restored from a saved state, shifted."""

    evaluated: int
    restored: int
    shifted: int
    done: bool


class PromptSpeed:
    """Prompt evaluation speed, smoothed over recent evaluations (EWMA)."""

    def __init__(self) -> None:
        self.tokens_per_second: float | None = None

    def note(self, tokens: int, seconds: float) -> None:
        if tokens < SPEED_MIN_TOKENS or seconds <= 0:
            return
        rate = tokens / seconds
        previous = self.tokens_per_second
        self.tokens_per_second = rate if previous is None else (
            (1 - SPEED_WEIGHT) * previous + SPEED_WEIGHT * rate)

    def tokens_within(self, seconds: float, fewest: int, most: int) -> int:
        """How many tokens evaluate in `seconds` at the recent speed, from `fewest` to `most`
        (`most` while the speed is unknown)."""
        if self.tokens_per_second is None:
            return most
        return max(fewest, min(most, int(self.tokens_per_second * seconds)))


class PromptCache:
    """Sequence 0 of one llama context, with saved states and parked chunks; not thread-safe:
    the engine's lock serialises every call but `cached_tokens`."""

    def __init__(self, llm, *, state_cache_bytes: int, reuse_chunks: bool,
                 batch_tokens: int) -> None:
        import llama_cpp

        self._llm = llm
        self._memory = llama_cpp.llama_get_memory(llm.ctx)
        self.can_shift = bool(llama_cpp.llama_memory_can_shift(self._memory))
        self.reuse_chunks = reuse_chunks
        self.states = SavedStates(state_cache_bytes)
        self.speed = PromptSpeed()
        # (target position, tokens) of each chunk in PARKED_SEQ, in position order.
        self._parked: tuple[tuple[int, tuple[int, ...]], ...] = ()
        # Shifted cells are rotated at the next decode; a state saved before then is wrong.
        self._shift_pending = False
        # How many of the live tokens a prompt asked for; generated tokens follow them.
        self._prompt_tokens = 0
        self._batch_tokens = batch_tokens
        self._batch = llama_cpp.llama_batch_init(batch_tokens, 0, 1)
        weakref.finalize(self, llama_cpp.llama_batch_free, self._batch)

    # ------------------------------------------------------------ reading

    def live_tokens(self) -> list[int]:
        llm = self._llm
        return llm.input_ids[:llm.n_tokens].tolist()

    def cached_tokens(self, goal: Sequence[int]) -> int:
        """How many tokens of `goal` the next steps would not evaluate; list work only, safe
        to call while another thread steps (the answer is then approximate)."""
        live = self.live_tokens()
        parked = self._parked
        if parked and self._fits(parked, live, goal):
            return len(live) + sum(len(tokens) for _, tokens in parked)
        return self._plan(live, goal).cached_tokens

    def _plan(self, live: Sequence[int], goal: Sequence[int]) -> SyncPlan:
        reuse = REUSE_MIN_TOKENS if self.reuse_chunks and self.can_shift else None
        return plan_sync(live, goal, self.states.snapshot(), reuse, self._prompt_tokens)

    @staticmethod
    def _fits(parked, live: Sequence[int], goal: Sequence[int]) -> bool:
        return (common_prefix_length(live, goal) == len(live)
                and all(tuple(goal[target:target + len(tokens)]) == tokens
                        for target, tokens in parked))

    # ------------------------------------------------------------ stepping

    def step(self, goal: Sequence[int], max_tokens: int, *, keep_longer: bool = False
             ) -> SyncStep:
        """Bring sequence 0 closer to holding exactly `goal` (or, with `keep_longer`, at
        least `goal`), evaluating at most `max_tokens` tokens."""
        restored = shifted = 0
        if not self._parked_fit(goal):
            self._unpark()
            plan = self._plan(self.live_tokens(), goal)
            if keep_longer and plan.restore is None and plan.kept == len(goal):
                return SyncStep(0, 0, 0, True)
            self._apply(plan, goal)
            restored = plan.kept if plan.restore is not None else 0
            shifted = plan.shifted_tokens
        evaluated = self._evaluate_toward(goal, max_tokens)
        self._prompt_tokens = self._llm.n_tokens
        return SyncStep(evaluated, restored, shifted, self._llm.n_tokens == len(goal))

    def _parked_fit(self, goal: Sequence[int]) -> bool:
        import llama_cpp

        parked = self._parked
        if not parked or not self._fits(parked, self.live_tokens(), goal):
            return False
        # Something that used the llama context directly may have dropped the cells.
        first, (last, tokens) = parked[0][0], parked[-1]
        return (llama_cpp.llama_memory_seq_pos_min(self._memory, PARKED_SEQ) == first
                and llama_cpp.llama_memory_seq_pos_max(self._memory, PARKED_SEQ)
                == last + len(tokens) - 1)

    def _apply(self, plan: SyncPlan, goal: Sequence[int]) -> None:
        import llama_cpp

        if plan.save_live and not self._shift_pending:
            self.save_live()
        if plan.restore is not None:
            self._restore(plan.restore)
        memory = self._memory
        for chunk in plan.chunks:
            llama_cpp.llama_memory_seq_cp(memory, LIVE_SEQ, PARKED_SEQ, chunk.source,
                                          chunk.source + chunk.length)
        llama_cpp.llama_memory_seq_rm(memory, LIVE_SEQ, plan.kept, -1)
        self._llm.n_tokens = plan.kept
        if not plan.chunks:
            return
        # Out of the way first, so that no chunk lands on cells still to be moved.
        away = self._llm.n_ctx()
        llama_cpp.llama_memory_seq_add(memory, PARKED_SEQ, -1, -1, away)
        for chunk in plan.chunks:
            start = chunk.source + away
            llama_cpp.llama_memory_seq_add(memory, PARKED_SEQ, start, start + chunk.length,
                                           chunk.target - start)
        self._shift_pending = True
        self._parked = tuple((chunk.target, tuple(goal[chunk.target:chunk.target
                                                        + chunk.length]))
                             for chunk in plan.chunks)

    def _evaluate_toward(self, goal: Sequence[int], max_tokens: int) -> int:
        evaluated = 0
        llm = self._llm
        while llm.n_tokens < len(goal):
            here = llm.n_tokens
            if self._parked and self._parked[0][0] == here:
                self._attach()
                continue
            if evaluated >= max_tokens:
                break
            end = min(len(goal), here + max_tokens - evaluated,
                      self._parked[0][0] if self._parked else len(goal))
            self.decode(goal[here:end])
            evaluated += end - here
        return evaluated

    def _attach(self) -> None:
        import llama_cpp

        (target, tokens), self._parked = self._parked[0], self._parked[1:]
        end = target + len(tokens)
        llama_cpp.llama_memory_seq_cp(self._memory, PARKED_SEQ, LIVE_SEQ, target, end)
        llama_cpp.llama_memory_seq_rm(self._memory, PARKED_SEQ, target, end)
        self._llm.input_ids[target:end] = tokens
        self._llm.n_tokens = end

    def _unpark(self) -> None:
        import llama_cpp

        if self._parked:
            llama_cpp.llama_memory_seq_rm(self._memory, PARKED_SEQ, -1, -1)
            self._parked = ()

    # ------------------------------------------------------------ evaluating

    def decode(self, tokens: Sequence[int], *, logits: str = "none") -> None:
        """Evaluate `tokens` after what sequence 0 holds; `logits` is "none", "last" (for the
        last token) or "all" (for each, in one batch: then len(tokens) ≤ the batch size)."""
        import llama_cpp

        llm, batch = self._llm, self._batch
        llama_cpp.llama_memory_seq_rm(self._memory, LIVE_SEQ, llm.n_tokens, -1)
        for begin in range(0, len(tokens), self._batch_tokens):
            part = tokens[begin:begin + self._batch_tokens]
            past = llm.n_tokens
            batch.n_tokens = len(part)
            for i, token in enumerate(part):
                batch.token[i] = token
                batch.pos[i] = past + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = LIVE_SEQ
                batch.logits[i] = logits == "all" or (
                    logits == "last" and begin + i == len(tokens) - 1)
            started = time.perf_counter()
            if llama_cpp.llama_decode(llm.ctx, batch) != 0:
                raise ModelError(f"llama.cpp could not evaluate token {past} of the context")
            self.speed.note(len(part), time.perf_counter() - started)
            llm.input_ids[past:past + len(part)] = part
            llm.n_tokens = past + len(part)
            self._shift_pending = False

    # ------------------------------------------------------------ saved states

    def save_live(self) -> None:
        """Save sequence 0's state and tokens (llama.cpp's per-sequence state: the KV cells
        only, not the logits of the whole context that Llama.save_state copies)."""
        import llama_cpp

        ctx = self._llm.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, LIVE_SEQ)
        if size == 0 or size > self.states.limit_bytes:
            return
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, data, size, LIVE_SEQ)
        if written == 0:
            raise ModelError("llama.cpp could not save the KV cache state")
        self.states.add(SavedState(tuple(self.live_tokens()), data, written))

    def _restore(self, state: SavedState) -> None:
        import llama_cpp

        llm = self._llm
        llama_cpp.llama_memory_seq_rm(self._memory, LIVE_SEQ, -1, -1)
        llm.n_tokens = 0
        if llama_cpp.llama_state_seq_set_data(llm.ctx, state.data, state.size_bytes,
                                              LIVE_SEQ) == 0:
            raise ModelError("llama.cpp could not restore a saved KV cache state")
        llm.input_ids[:len(state.tokens)] = state.tokens
        llm.n_tokens = len(state.tokens)
        self.states.used(state)

    def measure_speed(self, sample: Sequence[int]) -> None:
        """Seed the prompt speed by evaluating `sample`, repeated to SPEED_PROBE_TOKENS, once;
        the cache is emptied afterwards."""
        probe = (list(sample) * (SPEED_PROBE_TOKENS // max(1, len(sample)) + 1))
        self.decode(probe[:SPEED_MIN_TOKENS // 2])
        self.decode(probe[:SPEED_PROBE_TOKENS])
        self.forget()

    def forget(self) -> None:
        """Empty the KV cache and drop every saved state (after new weights, or on request)."""
        import llama_cpp

        self._parked = ()
        self._shift_pending = False
        self._prompt_tokens = 0
        self.states.clear()
        llama_cpp.llama_memory_clear(self._memory, True)
        self._llm.n_tokens = 0
