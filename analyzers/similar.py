"""Code like the target's, found with the index's BM25: the definitions most like it and, for a
cursor, the run of lines in each that is most like the lines just typed, with what follows them
(how the project writes what comes next: RepoCoder and CrossCodeEval retrieve the same way).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Set

from analyzers.bm25 import IDENTIFIER
from analyzers.index import SymbolLocation, WorkspaceIndex
from analyzers.snippets import Snippet, Target, cached_lines

WINDOW_LINES = 8  # a run of similar lines: half that match them, half that follow
WINDOW_STRIDE = 2
LINE_NAMES_CACHE_ENTRIES = 256  # definitions whose lines' names are kept


def similar_places(target: Target, index: WorkspaceIndex, terms: Counter[str],
                   limit: int) -> list[tuple[float, SymbolLocation]]:
    """The `limit` definitions most like `terms` (BM25), best first: in other files, and in the
    target's own file too when the prompt shows only part of it (but not those it shows)."""
    own = index.relative(target.path) or target.path
    if target.shown is None:
        return index.similar_definitions(terms, limit, exclude_path=own)
    first, last = target.shown
    ranked = index.similar_definitions(terms, 2 * limit)
    return [(similarity, place) for similarity, place in ranked
            if not (place.path == own and first <= place.definition.start_line
                    and place.definition.end_line <= last)][:limit]


def similar_windows(target: Target, index: WorkspaceIndex, query: Set[str],
                    places: list[tuple[float, SymbolLocation]]) -> list[tuple[int, Snippet]]:
    """In each of `places`, the run of lines whose first half shares most names with `query`
    (and is not shown already), with the number of names shared; unscored."""
    own = index.relative(target.path) or target.path
    windows = []
    for _, place in places:
        text = index.text_of(place.path)
        if text is None:
            continue
        first, last = place.definition.start_line, place.definition.end_line
        names = [query & row for row in _line_names(text, first, last)]
        like = WINDOW_LINES // 2
        offsets = range(0, max(1, len(names) - like + 1), WINDOW_STRIDE)
        if place.path == own and target.shown is not None:
            shown_first, shown_last = target.shown
            offsets = [offset for offset in offsets
                       if first + offset + WINDOW_LINES - 1 < shown_first
                       or first + offset > shown_last]
        if not offsets:
            continue
        shared, start = max((len(set().union(*names[offset:offset + like])), -offset)
                            for offset in offsets)
        start = first - start
        end = min(last, start + WINDOW_LINES - 1)
        windows.append((shared, Snippet(place.path, start, end, "\n".join(
            cached_lines(text)[start:end + 1]), "similar", f"lines like those before the cursor "
            f"({shared} names in common) and what follows them", 0.0)))
    return windows


@functools.lru_cache(maxsize=LINE_NAMES_CACHE_ENTRIES)
def _line_names(text: str, first: int, last: int) -> tuple[frozenset[str], ...]:
    """The identifiers of each of the lines `first`…`last`: the definitions the similar lines
    come from recur pack after pack, and scanning them is most of what finding those lines
    costs (only their lines: a big module's every line took tens of milliseconds)."""
    return tuple(frozenset(IDENTIFIER.findall(row)) for row in cached_lines(text)[first:last + 1])
