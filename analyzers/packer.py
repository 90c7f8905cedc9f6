"""The context packer: what the model sees besides the code at hand, within a token budget.

Read top to bottom: candidates are collected (`_candidates`: from the target's file, the
workspace index, `python_names` for Python's imports, `resolve` for jedi (`jedi_resolver`),
`similar` for BM25; for failing tests, from their frames too), scored with the constants
below, chosen best first until the budget is full (`_fill`, exact counts with the model's
tokenizer), and finally ordered so that what changes least comes first and the KV cache keeps
its head. How a definition is shown, whole or as an outline, is `snippets`. The packer
never runs the model: it only receives a function that counts tokens.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from analyzers.bm25 import identifier_terms
from analyzers.calls import callers_in
from analyzers.definitions import Definition
from analyzers.index import WorkspaceIndex
from analyzers.python_names import module_maps
from analyzers.similar import similar_places, similar_windows
from analyzers.snippets import (
    Frame,
    RecentChunks,
    Snippet,
    Target,
    cached_definitions,
    cached_import_statements,
    cached_references,
    constant_snippets,
    definition_snippet,
    indexed_snippet,
    outline,
    render,
)
from analyzers.syntax import language_family, language_for_path

# ---------------------------------------------------------------- scores: higher is chosen first
TARGET_SCORE = 1000.0  # the code being completed, explained or fixed
FAILING_FRAME_SCORE = 500.0  # a function on a failing test's traceback
ENCLOSING_SCOPE_SCORE = 300.0  # the class around the target, as an outline
MODULE_HEADER_SCORE = 250.0  # the target file's imports
# … for a cursor, the imports that its FIM window does not show: below the lines like those just
# typed, which show the same names in use (at 512 tokens a 300-token header pushed them out).
CURSOR_HEADER_SCORE = 100.0
USED_DEFINITION_SCORE = 200.0  # the definition of a name the target uses
RESOLVED_BONUS = 50.0  # … when jedi resolved the name rather than the index matching it by name
IMPORTED_NAME_SCORE = 120.0  # signatures of what the target file imports, per workspace file
# The names a workspace module offers, for a Python file that imports it whole (`from pkg import
# sql`, then `sql.Function`), scaled by how near the cursor the module's name is used: used on
# the cursor's line, what the line goes on to name is most likely among them.
MODULE_MAP_SCORE = 400.0
CALLER_SCORE = 100.0  # a function that calls the target function
# For failing tests: what a traceback's (or a suspect's) function uses, and its callers, at this
# share of the scores above, times the frame's weight.
FRAME_USES_SHARE = 0.8
RECENT_SCORE = 80.0  # the newest chunk of the ring buffer of recently edited/viewed code
RECENT_DECAY = 0.85  # each older ring-buffer chunk is worth this much of the one after it
SIMILAR_SCORE = 60.0  # the definition most lexically similar (BM25) to the target, scaled down
# For a cursor: the lines elsewhere most like the ones just typed (how the project writes what
# comes next), scaled down like SIMILAR_SCORE. RepoCoder and CrossCodeEval retrieve the same way.
SIMILAR_LINES_SCORE = 150.0
# A name defined in n places is a guess: each place's score is divided by n.
# For a cursor, a name used n lines from it counts FLOOR + (1 - FLOOR) / (1 + n / LINES).
NEARNESS_LINES = 8.0
NEARNESS_FLOOR = 0.25
# Among equals, shorter wins: each (estimated) token costs this much score.
TOKEN_COST = 0.01
CHARACTERS_PER_TOKEN = 3.5  # for that estimate only; the budget is kept with exact counts

# ---------------------------------------------------------------- sizes
MAX_BUDGET_TOKENS = 8192
SEPARATOR_TOKENS = 1  # the `<|file_sep|>` special token in front of each chunk
TARGET_LINES_BEFORE = 40  # a cursor target outside any function: the lines around it
TARGET_LINES_AFTER = 15
MAX_NAMES = 40  # distinct names of the target whose definitions are looked up
MAX_CALLERS = 6
MODULE_MAP_NAMES = 32  # names per module map: those the file uses first, then the public rest
MAX_PLACES_PER_NAME = 4  # a name defined in more places than this is not looked up
SIMILAR_CANDIDATES = 6
QUERY_LINES = 8  # for a cursor: the lines before it that similar lines are matched with
# An imported class is shown by how it is made: the map of a file's imports stays small.
IMPORTED_MEMBERS = frozenset({"__init__", "__new__", "constructor", "new"})
MIN_USEFUL_TOKENS = 24  # a budget remainder below this is not worth a snippet
CUT_SHARE = 0.5  # a snippet too long for what is left is cut to at most this share of it
# Counting tokens is the slowest part of packing, and consecutive packs share most snippets.
COUNT_CACHE_ENTRIES = 4096

# ---------------------------------------------------------------- order in the prompt
# What changes least goes first: definitions from other files stay put while the user types in
# one function, the target and the recent edits change all the time.
STABILITY_ORDER = ("definition", "imported", "similar", "caller", "header", "scope", "frame",
                   "recent", "target")

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Pack:
    snippets: tuple[Snippet, ...]
    budget_tokens: int
    used_tokens: int
    candidates: int


def pack(target: Target, budget_tokens: int, count_tokens: CountTokens, *,
         index: WorkspaceIndex | None = None, recent: RecentChunks | None = None,
         resolve: Callable[[Target, int, int], list[Snippet]] | None = None) -> Pack:
    """The best context for `target` that fits `budget_tokens`, in prompt order.

    `resolve` (optional) turns the target's region into definitions of the names it uses,
    e.g. with jedi for Python; without it the index matches names to definitions.
    """
    if not 0 <= budget_tokens <= MAX_BUDGET_TOKENS:
        raise ValueError(f"the budget is {budget_tokens} tokens; it must be 0…{MAX_BUDGET_TOKENS}")
    candidates = _deduplicated(_candidates(target, index, recent, resolve))
    chosen = _fill(candidates, budget_tokens, count_tokens)
    ordered = sorted(chosen, key=lambda s: (STABILITY_ORDER.index(s.kind), s.path, s.start_line))
    return Pack(tuple(ordered), budget_tokens, sum(s.tokens for s in ordered), len(candidates))


# ---------------------------------------------------------------- candidates


def _candidates(target: Target, index: WorkspaceIndex | None, recent: RecentChunks | None,
                resolve: Callable[[Target, int, int], list[Snippet]] | None) -> list[Snippet]:
    language = language_for_path(target.path)
    found: list[Snippet] = []
    region = _target_region(target, language)
    start, end = region
    lines = target.text.split("\n")
    if target.shown is None:
        found.append(Snippet(target.path, start, end, "\n".join(lines[start:end + 1]), "target",
                             f"the {target.kind} target", TARGET_SCORE))
    if language is not None:
        found += _enclosing_and_header(target, language)
    for frame in target.frames:
        found += _frame_snippets(frame, index, target)
    used = _used_names(target, language, start, end)
    if resolve is not None:
        found += resolve(target, start, end)
    if index is not None:
        nearness = _nearness(target, language, start, end)
        found += _definitions_of(used, index, target, region, USED_DEFINITION_SCORE, "definition",
                                 "uses", nearness=nearness)
        if language is not None:
            found += _imported_api(_imported_names(target.text, language), index, target)
        if language == "python":
            found += _module_maps(target, index, nearness)
        if target.kind == "function" and language is not None:
            found += _callers(target, language, index)
        if target.kind != "tests":  # lexical likeness says nothing about where a bug is
            found += _similar(target, index, lines[start:end + 1])
        if target.kind == "cursor":
            found += _similar_lines(target, index, lines)
    if recent is not None:
        found += _recent(recent, target)
    shown = [(target.path, *target.shown)] if target.shown is not None else []
    for frame in target.frames:  # a shown frame: its function is in the prompt
        text = target.text if frame.path == target.path else (
            index.text_of(frame.path) if index is not None else None)
        function = _function_at(text, language_for_path(frame.path), frame.line)
        if frame.shown and function is not None:
            shown.append((frame.path, function.start_line, function.end_line))
    return [snippet for snippet in found if not _shown(snippet, shown)]


def _shown(snippet: Snippet, shown: list[tuple[str, int, int]]) -> bool:
    """Whether the prompt holds (some of) the snippet already: the target's own lines, or a
    shown frame's function. The header holds only the imports the prompt does not show."""
    return snippet.kind != "header" and any(
        snippet.path == path and snippet.start_line <= last and first <= snippet.end_line
        for path, first, last in shown)


def _target_region(target: Target, language: str | None) -> tuple[int, int]:
    """0-based inclusive lines of the target: its innermost function, else lines around it."""
    lines = target.text.split("\n")
    line = min(max(target.line, 0), len(lines) - 1)
    function = _function_at(target.text, language, line) if target.kind != "cursor" else None
    if function is not None:
        return function.start_line, function.end_line
    return max(0, line - TARGET_LINES_BEFORE), min(len(lines) - 1, line + TARGET_LINES_AFTER)


def _function_at(text: str | None, language: str | None, line: int) -> Definition | None:
    """The innermost function (or method) around a 0-based line."""
    if text is None or language is None:
        return None
    functions = [d for d in cached_definitions(text, language)
                 if d.kind != "class" and d.start_line <= line <= d.end_line]
    return functions[-1] if functions else None


def _enclosing_and_header(target: Target, language: str) -> list[Snippet]:
    found = []
    # The imports the prompt does not show already: far above the cursor, they say which
    # names the file has at hand and where they come from.
    header = [statement for statement in cached_import_statements(target.text, language)
              if target.shown is None
              or not target.shown[0] <= statement.start_line <= target.shown[1]]
    if header:
        found.append(Snippet(target.path, header[0].start_line, header[-1].end_line,
                             "\n".join(statement.text for statement in header), "header",
                             "the file's imports",
                             CURSOR_HEADER_SCORE if target.kind == "cursor"
                             else MODULE_HEADER_SCORE))
    classes = [d for d in cached_definitions(target.text, language)
               if d.kind == "class" and d.start_line <= target.line <= d.end_line]
    if classes:
        enclosing = classes[-1]
        found.append(Snippet(target.path, enclosing.start_line, enclosing.end_line,
                             outline(enclosing, target.text, language), "scope",
                             f"encloses the target: {enclosing.qualified_name}",
                             ENCLOSING_SCOPE_SCORE, outline=True))
    return found


def _frame_snippets(frame: Frame, index: WorkspaceIndex | None, target: Target) -> list[Snippet]:
    """The frame's function (unless the prompt shows it), and for failing tests what it uses
    (callees, types, constants, in any workspace file) and its callers, by the frame's weight."""
    text = target.text if frame.path == target.path else (
        index.text_of(frame.path) if index is not None else None)
    language = language_for_path(frame.path)
    function = _function_at(text, language, frame.line)
    if function is None or text is None:
        return []
    found = [] if frame.shown else [definition_snippet(
        frame.path, function, text, language, "frame",
        f"on the failing traceback (line {frame.line + 1})", FAILING_FRAME_SCORE * frame.weight)]
    if target.kind == "tests" and index is not None:
        # The frame's function as a target of its own: found as a function target's are.
        own = Target(frame.path, text, frame.line, kind="function")
        region, share = (function.start_line, function.end_line), FRAME_USES_SHARE * frame.weight
        used = _used_names(own, language, *region)
        found += _definitions_of(used, index, own, region, USED_DEFINITION_SCORE * share,
                                 "definition", f"(via `{function.name}`) uses")
        found += [snippet for name in used for snippet in constant_snippets(
            index, name, "definition", f"`{function.name}` uses the constant `{name}`",
            USED_DEFINITION_SCORE * share)]
        found += [replace(caller, score=caller.score * share)
                  for caller in _callers(own, language, index)]
    return found


def _used_names(target: Target, language: str | None, start: int, end: int) -> list[str]:
    """Distinct identifiers used in the region, in order of first use, minus its own names."""
    if language is None:
        terms = identifier_terms("\n".join(target.text.split("\n")[start:end + 1]))
        return list(terms)[:MAX_NAMES]
    defined_here = {d.name for d in cached_definitions(target.text, language)
                    if start <= d.start_line <= end}
    names: dict[str, None] = {}
    for reference in cached_references(target.text, language, start, end):
        if reference.name not in defined_here:
            names.setdefault(reference.name)
    return list(names)[:MAX_NAMES]


def _imported_names(text: str, language: str) -> list[str]:
    names: dict[str, None] = {}
    for statement in cached_import_statements(text, language):
        for name in identifier_terms(statement.text):
            names.setdefault(name)
    return list(names)[:MAX_NAMES]


def _nearness(target: Target, language: str | None, start: int, end: int) -> dict[str, float]:
    """For a cursor: how near each name of the region is used to it, 1 on the cursor's line
    falling to NEARNESS_FLOOR far away. The code next to the cursor says most about the line
    being written. Other targets are one piece of code: all of it counts alike."""
    if target.kind != "cursor" or language is None:
        return {}
    nearest: dict[str, int] = {}
    for reference in cached_references(target.text, language, start, end):
        distance = abs(reference.line - target.line)
        nearest[reference.name] = min(distance, nearest.get(reference.name, distance))
    return {name: NEARNESS_FLOOR + (1 - NEARNESS_FLOOR) / (1 + distance / NEARNESS_LINES)
            for name, distance in nearest.items()}


def _definitions_of(names: Iterable[str], index: WorkspaceIndex, target: Target,
                    region: tuple[int, int], score: float, kind: str,
                    verb: str, nearness: dict[str, float] | None = None) -> list[Snippet]:
    found = []
    target_path = index.relative(target.path) or target.path
    family = language_family(language_for_path(target.path))
    for name in names:
        places = [place for place in index.definitions_named(name)
                  if language_family(language_for_path(place.path)) == family
                  and not (place.path == target_path
                           and region[0] <= place.definition.start_line <= region[1])]
        if len(places) > MAX_PLACES_PER_NAME:
            continue  # a name defined everywhere (`run`, `name`) says nothing
        for place in places:
            weight = (nearness or {}).get(name, 1.0)
            snippet = indexed_snippet(index, place, kind, f"the target {verb} `{name}`",
                                       score * weight / len(places))
            if snippet is not None:
                found.append(snippet)
    return found


def _imported_api(names: Iterable[str], index: WorkspaceIndex, target: Target) -> list[Snippet]:
    """For each workspace file the target imports from, one compact snippet: the signatures
    (and class outlines) of the names imported from it. Like aider's map, it buys many
    definitions for few tokens; full bodies come from the names the target actually uses."""
    target_path = index.relative(target.path) or target.path
    family = language_family(language_for_path(target.path))
    by_path: dict[str, dict[str, Definition]] = {}
    for name in names:
        places = [place for place in index.definitions_named(name)
                  if place.path != target_path
                  and language_family(language_for_path(place.path)) == family]
        if len(places) > MAX_PLACES_PER_NAME:
            continue
        for place in places:
            by_path.setdefault(place.path, {})[name] = place.definition
    found = []
    for path, named in sorted(by_path.items()):
        entry, text = index.entry(path), index.text_of(path)
        if entry is None or text is None:
            continue
        chosen = sorted(named.values(), key=lambda d: d.start_line)
        body = "\n".join(outline(d, text, entry.language, entry.definitions,
                                  members=IMPORTED_MEMBERS) for d in chosen)
        found.append(Snippet(path, chosen[0].start_line, chosen[-1].end_line, body, "imported",
                             f"signatures of {', '.join(f'`{n}`' for n in sorted(named))}, "
                             f"which the target imports", IMPORTED_NAME_SCORE, outline=True))
    return found


def _module_maps(target: Target, index: WorkspaceIndex,
                 nearness: dict[str, float]) -> list[Snippet]:
    """For each workspace module the target imports whole, the names it offers (`sql.Function`),
    scored by how near the cursor the module's name is used."""
    own = PurePosixPath(index.relative(target.path) or target.path).as_posix()
    found = []
    for alias, snippet in module_maps(target.text, own, index, MODULE_MAP_NAMES):
        weight = nearness.get(alias.split(".")[0], NEARNESS_FLOOR) if nearness else 1.0
        found.append(replace(snippet, score=MODULE_MAP_SCORE * weight))
    return found


def _callers(target: Target, language: str, index: WorkspaceIndex) -> list[Snippet]:
    callee = _function_at(target.text, language, target.line)
    if callee is None:
        return []
    target_path = index.relative(target.path) or target.path
    found: list[Snippet] = []
    for path, lines in index.references_to(callee.name):
        entry = index.entry(path)
        text = index.text_of(path)
        if entry is None or text is None:
            continue
        own = callee if path == target_path else None
        for caller in callers_in(path, entry.definitions, lines, own):
            found.append(definition_snippet(
                path, caller.definition, text, entry.language, "caller",
                f"calls `{callee.name}` (line {caller.line + 1})", CALLER_SCORE,
                entry.definitions))
        if len(found) >= MAX_CALLERS:
            break
    return found[:MAX_CALLERS]


def _similar(target: Target, index: WorkspaceIndex, region_lines: list[str]) -> list[Snippet]:
    terms = identifier_terms("\n".join(region_lines))
    ranked = similar_places(target, index, terms, SIMILAR_CANDIDATES)
    if not ranked:
        return []
    best = ranked[0][0]
    found = []
    for similarity, place in ranked:
        snippet = indexed_snippet(index, place, "similar",
                                   f"lexically similar to the target (BM25 {similarity:.1f})",
                                   SIMILAR_SCORE * similarity / best)
        if snippet is not None:
            found.append(snippet)
    return found


def _similar_lines(target: Target, index: WorkspaceIndex, lines: list[str]) -> list[Snippet]:
    """In each definition most like the lines just before the cursor (BM25), the lines that
    share most of their names, and the lines after them: what the project wrote next there."""
    line = min(max(target.line, 0), len(lines) - 1)
    query = identifier_terms("\n".join(lines[max(0, line - QUERY_LINES):line + 1])).keys()
    places = similar_places(target, index, Counter(query), SIMILAR_CANDIDATES)
    windows = similar_windows(target, index, query, places)
    best = max((shared for shared, _ in windows), default=0)
    return [replace(snippet, score=SIMILAR_LINES_SCORE * shared / best)
            for shared, snippet in windows if shared]


def _recent(recent: RecentChunks, target: Target) -> list[Snippet]:
    chunks = recent.chunks()
    found = []
    for age, chunk in enumerate(reversed(chunks)):
        if chunk.path == target.path and chunk.start_line <= target.line <= chunk.end_line:
            continue  # the target itself, as the user is typing it
        found.append(replace(chunk, reason="recently edited or viewed",
                             score=RECENT_SCORE * RECENT_DECAY ** age))
    return found


# ---------------------------------------------------------------- choosing within the budget


def _deduplicated(candidates: list[Snippet]) -> list[Snippet]:
    """One snippet per place (the best-scored), one per identical text, and none that a full
    snippet scored at least as high already contains (a method inside a wanted small class)."""
    best: dict[tuple[str, int, int], Snippet] = {}
    for snippet in candidates:
        key = (snippet.path, snippet.start_line, snippet.end_line)
        if key not in best or snippet.score > best[key].score:
            best[key] = snippet
    by_text: dict[str, Snippet] = {}
    for snippet in best.values():
        if snippet.text not in by_text or snippet.score > by_text[snippet.text].score:
            by_text[snippet.text] = snippet
    unique = list(by_text.values())
    return [snippet for snippet in unique if not any(
        _contains(other, snippet) and other.score >= snippet.score for other in unique)]


def _contains(outer: Snippet, inner: Snippet) -> bool:
    return (outer is not inner and not outer.outline and outer.kind != "header"
            and outer.path == inner.path and outer.start_line <= inner.start_line
            and inner.end_line <= outer.end_line
            and (outer.start_line, outer.end_line) != (inner.start_line, inner.end_line))


def _fill(candidates: list[Snippet], budget_tokens: int,
          count_tokens: CountTokens) -> list[Snippet]:
    """Best first, skipping what overlaps a chosen snippet; a snippet that does not fit whole is
    cut to the lines that do (binary search, as aider fits its map), within CUT_SHARE of what is
    left unless it is the target."""
    ranked = sorted(candidates, key=lambda s: (
        -(s.score - TOKEN_COST * len(s.text) / CHARACTERS_PER_TOKEN), s.path, s.start_line,
        s.end_line))
    chosen: list[Snippet] = []
    left = budget_tokens
    for snippet in ranked:
        if left < MIN_USEFUL_TOKENS:
            break
        if any(_overlaps(snippet, other) for other in chosen):
            continue
        # Counting is the expensive part: only what may be chosen is counted.
        snippet = replace(snippet, tokens=_count(count_tokens, render(snippet)) + SEPARATOR_TOKENS)
        if snippet.tokens > left:
            # The head of a long definition (its signature, docstring, first members) is most
            # of what a caller needs: cut it rather than drop it, leaving room for the rest.
            room = left if snippet.kind == "target" else max(MIN_USEFUL_TOKENS,
                                                               int(left * CUT_SHARE))
            snippet = _cut_to_fit(snippet, room, count_tokens)
            if snippet is None:
                continue
        chosen.append(snippet)
        left -= snippet.tokens
    return chosen


@functools.lru_cache(maxsize=COUNT_CACHE_ENTRIES)
def _count(count_tokens: CountTokens, text: str) -> int:
    return count_tokens(text)


def _overlaps(one: Snippet, other: Snippet) -> bool:
    if one.path != other.path or "header" in (one.kind, other.kind):
        return False
    if one.outline != other.outline:
        return False  # an outline of a class goes along with the full text of a part of it
    return one.start_line <= other.end_line and other.start_line <= one.end_line


def _cut_to_fit(snippet: Snippet, budget: int, count_tokens: CountTokens) -> Snippet | None:
    """The longest head of the snippet's lines that fits `budget`, or None."""
    lines = snippet.text.split("\n")

    def cut(keep: int) -> Snippet:
        text = "\n".join(lines[:keep])
        # An outline's lines are not the file's: it still stands for the whole definition.
        end_line = snippet.end_line if snippet.outline else snippet.start_line + keep - 1
        shorter = replace(snippet, text=text, end_line=end_line,
                          reason=snippet.reason + f" (first {keep} of {len(lines)} lines)")
        return replace(shorter, tokens=_count(count_tokens, render(shorter)) + SEPARATOR_TOKENS)

    low, high = 0, len(lines)
    while low < high:
        middle = (low + high + 1) // 2
        if cut(middle).tokens <= budget:
            low = middle
        else:
            high = middle - 1
    return cut(low) if low > 0 else None
