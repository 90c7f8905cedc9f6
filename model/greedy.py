"""Greedy decoding on the embedded engine's llama context: the model's own likeliest token at
every position, checked in batches together with prompt-lookup guesses (model/lookup.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from model.lookup import DRAFT_TOKENS, draft
from model.prompt_cache import LIVE_SEQ, PromptCache

# Candidates for a first token that does not start a new line are looked at this many at a
# time, likeliest first; the answer is nearly always among the first few.
FIRST_TOKEN_CANDIDATES = 64


class GreedyDecoder:
    def __init__(self, llm, cache: PromptCache, stop_ids: set[int],
                 counters: dict[str, float]) -> None:
        self._llm = llm
        self._cache = cache
        self._stop_ids = stop_ids
        self._counters = counters
        # Whether a token's text starts with a newline, filled in as tokens are asked about.
        self._starts_line: dict[int, bool] = {}

    def tokens(self, prompt: list[int], max_tokens: int, avoid_newline: bool = False
               ) -> Iterator[int]:
        """The greedy continuation of an evaluated `prompt` (its last token evaluated with
        logits), a token at a time. Each batch evaluates the next token together with a
        prompt-lookup guess of the ones after it and keeps the guessed tokens the model chose
        itself, so what comes out is the model's own greedy choice at every position, guessed
        or not. The KV cache and `input_ids` end up holding prompt and output, so the next
        prompt reuses them. With `avoid_newline`, the first token is the likeliest that is no
        stop token and does not start with a newline.
        """
        import llama_cpp

        llm = self._llm
        token = self._first_choice() if avoid_newline else self._choices(1)[0]
        history = [*prompt, token]  # ends with the token to evaluate next
        counters = self._counters
        try:
            for _ in range(max_tokens):
                yield token
                past = llm.n_tokens
                room = min(max_tokens - (len(history) - len(prompt)), llm.n_ctx() - past - 1)
                guess = draft(history, min(DRAFT_TOKENS, room)) if room > 0 else []
                self._cache.decode([token, *guess], logits="all")
                chosen = self._choices(1 + len(guess))
                kept = 0
                while kept < len(guess) and chosen[kept] == guess[kept]:
                    kept += 1
                llm.n_tokens = past + 1 + kept
                token = chosen[kept]
                history += [*guess[:kept], token]
                counters["lookup_guessed"] = counters.get("lookup_guessed", 0) + len(guess)
                counters["lookup_kept"] = counters.get("lookup_kept", 0) + kept
                yield from guess[:kept]
        finally:
            # What was guessed wrong, or evaluated past a stop, leaves the cache.
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), LIVE_SEQ,
                                          llm.n_tokens, -1)

    def _logits(self, row: int):
        import llama_cpp
        import numpy as np

        llm = self._llm
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, row),
                                     shape=(llm.n_vocab(),))

    def _choices(self, rows: int) -> list[int]:
        """The likeliest next token after each of the last `rows` tokens evaluated."""
        return [int(self._logits(row - rows).argmax()) for row in range(rows)]

    def _first_choice(self) -> int:
        """The likeliest next token that is no stop token and does not start with a newline.
        Candidates are looked at likeliest first and each one's text is looked up once, not
        the whole vocabulary's (151k tokens)."""
        import numpy as np

        logits = self._logits(-1)
        tried = 0
        while tried < len(logits):
            width = min(len(logits), max(FIRST_TOKEN_CANDIDATES, 4 * tried))
            top = np.argpartition(-logits, width - 1)[:width]
            for token in top[np.argsort(-logits[top], kind="stable")][tried:].tolist():
                if token not in self._stop_ids and not self._starts_line_at(token):
                    return token
            tried = width
        return self._choices(1)[0]

    def _starts_line_at(self, token: int) -> bool:
        known = self._starts_line.get(token)
        if known is None:
            known = self._llm.detokenize([token]).startswith((b"\n", b"\r"))
            self._starts_line[token] = known
        return known
