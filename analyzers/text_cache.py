"""Caches of what is computed from a file's text, bounded by the characters they hold.

Parsing, splitting and scanning the same few texts again and again is what packing does, so
their results are kept; but the key is the whole text, and a cache bounded by its number of
entries keeps 64 versions of a 5 MB file that is being edited (or opened and closed) as readily
as 64 small ones. These are bounded by the characters of the texts they keep alive; a text
larger than the whole budget is computed each time and not kept.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from cachetools import LRUCache

# A few dozen source files of ordinary size; one huge file fits alone, a larger one is not kept.
TEXT_CACHE_CHARACTERS = 8_000_000
# Keyed by a text and a range of its lines: many entries share one text and each counts it in
# full, so the bound is looser for the same memory.
RANGE_CACHE_CHARACTERS = 64_000_000
# A syntax tree takes many times its text's size in native memory.
TREE_CACHE_CHARACTERS = 4_000_000

P = ParamSpec("P")
R = TypeVar("R")


def cached_by_text(max_characters: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """An LRU cache for a function of hashable arguments that keeps at most `max_characters`
    characters of the string arguments of the calls it remembers. Safe across threads."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        cache: LRUCache = LRUCache(maxsize=max_characters, getsizeof=lambda entry: entry[0])
        lock = threading.Lock()

        @functools.wraps(function)
        def cached(*args: P.args, **kwargs: P.kwargs) -> R:
            key = (args, tuple(sorted(kwargs.items())))
            with lock:
                entry = cache.get(key)
            if entry is not None:
                return entry[1]
            value = function(*args, **kwargs)
            size = 1 + sum(len(argument) for argument in (*args, *kwargs.values())
                           if isinstance(argument, str))
            if size <= max_characters:
                with lock:
                    cache[key] = (size, value)
            return value

        cached.cache_clear = cache.clear  # type: ignore[attr-defined]
        cached.cached_characters = lambda: cache.currsize  # type: ignore[attr-defined]
        return cached

    return decorate
