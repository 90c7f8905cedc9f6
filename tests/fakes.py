"""A small honest fake engine for tests of logic that does not depend on the model's words.

It tokenizes by character, "generates" a scripted text one character per token (or, for a reply
given as a tuple of strings, one string per token, as a real model emits "\n\n" at once), and
honours stop strings, stop rules, budgets and cancellation exactly as the Engine protocol asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from model.engine import CancelToken, GenerationParams, GenerationResult, StopRule

SPECIAL_BASE = 1_000_000


class ScriptedEngine:
    name = "scripted"
    context_tokens = 8192

    def __init__(self, replies: Sequence[str | tuple[str, ...]],
                 seconds_per_token: float = 0.0) -> None:
        self._replies = list(replies)
        self._seconds_per_token = seconds_per_token
        self.prompts: list[list[int]] = []
        self._specials: dict[str, int] = {}

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
        return GenerationResult(text, finish, len(prompt), len(prompt), len(text), 0.0,
                                elapsed_ms)
