"""Prompt lookup: guesses of the next few tokens, copied from the tokens the prompt already holds.

Code repeats what is on screen: a name, a call written a few lines up, a line like one in a
packed snippet, most of a function being refactored. The tokens that followed the last few
tokens where they occurred before, in the prompt or in what was generated, are a cheap guess at
what comes next. The engine checks a guess in the same batch as the next token and keeps the
part the model would have chosen itself, so greedy output does not change; on a CPU a batch of
four costs about 1.5 decodes of one token, as the weights are read once for the whole batch.
This is "prompt lookup decoding" (Saxena, 2023), llama.cpp's lookup decoding without its
n-gram cache.
"""

from __future__ import annotations

from collections.abc import Sequence

# The longest and shortest run of last tokens looked for; a longer run that matches is a better
# guess, so it is tried first. A single token (a space, a newline) matches too much to guess
# from.
MAX_MATCH_TOKENS = 3
MIN_MATCH_TOKENS = 2
# Tokens guessed per batch: on this kind of CPU, a batch of 1 + 3 tokens costs about 1.45 times
# a batch of one (bench/engine.py measures it), so a guess pays when a third of it is kept.
DRAFT_TOKENS = 3
# How far back a match is looked for: the packed context and the FIM window, not a whole 8k
# prompt's every token, since the scan runs before every batch.
SEARCH_TOKENS = 4096


def draft(tokens: Sequence[int], limit: int = DRAFT_TOKENS) -> list[int]:
    """Up to `limit` tokens that followed the most recent earlier occurrence of the longest
    run of `tokens`' last tokens (MIN_MATCH_TOKENS…MAX_MATCH_TOKENS), or [] when none recurs."""
    if limit <= 0:
        return []
    window = list(tokens[-SEARCH_TOKENS:])
    for size in range(MAX_MATCH_TOKENS, MIN_MATCH_TOKENS - 1, -1):
        if len(window) <= size:
            continue
        tail = window[-size:]
        last = tail[-1]
        # Newest first: the nearest repetition is the likeliest to go on the same way.
        for end in range(len(window) - 2, size - 2, -1):
            if window[end] == last and window[end - size + 1:end + 1] == tail:
                return window[end + 1:end + 1 + limit]
    return []
