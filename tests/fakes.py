"""A small honest fake engine for tests of logic that does not depend on the model's words.

It tokenizes by character, "generates" a scripted text one character per token (or, for a reply
given as a tuple of strings, one string per token, as a real model emits "\n\n" at once), and
honours stop strings, stop rules, budgets and cancellation exactly as the Engine protocol asks.
Its "KV cache" is the last prompt it saw: a prompt sharing a head with it, or prefilled, counts
only the rest as evaluated, as the real engine's live cache does (without saved states).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from model.engine import (
    CancelToken,
    GenerationParams,
    GenerationResult,
    PrefillResult,
    StopRule,
)
from model.kv_cache import common_prefix_length

SPECIAL_BASE = 1_000_000
# A prefill "evaluates" this many tokens between turns, as the real engine's slices.
PREFILL_SLICE_TOKENS = 32


class ScriptedEngine:
    name = "scripted"
    context_tokens = 8192
    # Unknown, as a real engine's is not: a test that sizes prompts by it sets one.
    prompt_tokens_per_second: float | None = None

    def __init__(self, replies: Sequence[str | tuple[str, ...]],
                 seconds_per_token: float = 0.0) -> None:
        self._replies = list(replies)
        self._seconds_per_token = seconds_per_token
        self.prompts: list[list[int]] = []
        self.prefilled: list[list[int]] = []
        self._specials: dict[str, int] = {}
        # The tokens the fake cache holds, in order.
        self._held: list[int] = []

    def tokenize(self, text: str) -> list[int]:
        return [ord(character) for character in text]

    def count_tokens(self, text: str) -> int:
        return len(text)

    def special_token(self, name: str) -> int:
        return self._specials.setdefault(name, SPECIAL_BASE + len(self._specials))

    def chat_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]:
        return self.tokenize("".join(f"{m['role']}: {m['content']}\n" for m in messages))

    def detokenize(self, tokens: Sequence[int]) -> str:
        names = {token: name for name, token in self._specials.items()}
        return "".join(names.get(token, chr(token) if token < SPECIAL_BASE else "?")
                       for token in tokens)

    def reply_for(self, prompt_text: str) -> str | tuple[str, ...]:
        """The next scripted reply; the last one repeats."""
        del prompt_text
        return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    def cached_prefix_tokens(self, prompt: Sequence[int]) -> int:
        return min(common_prefix_length(self._held, list(prompt)), max(0, len(prompt) - 1))

    def prefill(self, prompt: Sequence[int], *, cancel: CancelToken | None = None,
                yield_turn: Callable[[], None] | None = None) -> PrefillResult:
        """Hold `prompt` but its last token, a slice at a time, turns given between slices."""
        goal = list(prompt)[:-1]
        self.prefilled.append(list(prompt))
        if common_prefix_length(self._held, goal) == len(goal):
            return PrefillResult(0, len(goal), True)
        self._held = self._held[:common_prefix_length(self._held, goal)]
        reused, evaluated = len(self._held), 0
        while len(self._held) < len(goal):
            if yield_turn is not None:
                yield_turn()
            if cancel is not None and cancel.cancelled:
                return PrefillResult(evaluated, reused, False)
            piece = goal[len(self._held):len(self._held) + PREFILL_SLICE_TOKENS]
            # A real model evaluates a prompt slice in about the time it writes one token.
            time.sleep(self._seconds_per_token)
            self._held += piece
            evaluated += len(piece)
        return PrefillResult(evaluated, reused, True)

    def generate(
        self,
        prompt: Sequence[int],
        params: GenerationParams,
        *,
        cancel: CancelToken | None = None,
        on_text: Callable[[str], None] | None = None,
        stop_rule: StopRule | None = None,
        yield_turn: Callable[[], None] | None = None,
    ) -> GenerationResult:
        self.prompts.append(list(prompt))
        evaluated = len(prompt) - self.cached_prefix_tokens(prompt)
        self._held = list(prompt)
        reply = self.reply_for(self.detokenize(prompt))
        start = time.perf_counter()
        text, finish = "", "eos"
        for piece in reply:
            if cancel is not None and cancel.cancelled:
                finish = "cancelled"
                break
            if len(text) >= params.max_tokens:
                finish = "length"
                break
            if yield_turn is not None:
                yield_turn()
            time.sleep(self._seconds_per_token)
            text += piece
            cuts = [i for stop in params.stop if (i := text.find(stop)) >= 0]
            if stop_rule is not None and (cut := stop_rule(text)) is not None:
                cuts.append(cut)
            if cuts:
                text, finish = text[: min(cuts)], "stop"
                break
            if on_text is not None:
                on_text(piece)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return GenerationResult(text, finish, len(prompt), evaluated, len(text), 0.0,
                                elapsed_ms)
