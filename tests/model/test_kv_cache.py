"""Planning what a new prompt keeps of the KV cache: pure list work, no model."""

from __future__ import annotations

from itertools import pairwise

from model.kv_cache import (
    ANCHOR_TOKENS,
    SAVE_MIN_TOKENS,
    Chunk,
    SavedState,
    SavedStates,
    common_prefix_length,
    plan_chunks,
    plan_sync,
)

HEAD = list(range(1000, 1020))


def _tokens(start: int, count: int) -> list[int]:
    """`count` distinct tokens, none shared with another call's unless the ranges overlap."""
    return list(range(start, start + count))


def _state(tokens: list[int], size_bytes: int = 100) -> SavedState:
    return SavedState(tuple(tokens), data=None, size_bytes=size_bytes)


def test_common_prefix_counts_equal_leading_tokens():
    assert common_prefix_length([1, 2, 3, 4], [1, 2, 9]) == 2
    assert common_prefix_length(list(range(1000)), list(range(1000))) == 1000
    assert common_prefix_length(list(range(700)), [*range(600), 5]) == 600
    assert common_prefix_length([], [1]) == 0


def test_a_line_inserted_before_the_suffix_shifts_the_suffix_right():
    prefix, line, suffix = _tokens(0, 300), _tokens(5000, 12), _tokens(9000, 200)
    cached = [*HEAD, *prefix, *suffix]
    prompt = [*HEAD, *prefix, *line, *suffix]
    start = common_prefix_length(cached, prompt)
    assert plan_chunks(cached, prompt, start, 64) == (
        Chunk(source=320, target=332, length=200),)


def test_lines_dropped_from_the_window_top_shift_the_rest_left():
    window = _tokens(0, 600)
    cached = [*HEAD, *window]
    prompt = [*HEAD, *window[150:], *_tokens(7000, 40)]
    chunks = plan_chunks(cached, prompt, len(HEAD), 64)
    assert chunks == (Chunk(source=170, target=20, length=450),)


def test_a_replaced_context_chunk_shifts_the_file_after_it():
    old_context, new_context, file = _tokens(0, 400), _tokens(3000, 250), _tokens(6000, 500)
    cached = [*HEAD, *old_context, *file]
    prompt = [*HEAD, *new_context, *file]
    assert plan_chunks(cached, prompt, len(HEAD), 64) == (
        Chunk(source=420, target=270, length=500),)


def test_runs_shorter_than_the_minimum_are_evaluated_again():
    cached = [*HEAD, *_tokens(0, 50), *_tokens(500, 100)]
    prompt = [*HEAD, *_tokens(900, 5), *_tokens(0, 50), *_tokens(800, 5)]
    assert plan_chunks(cached, prompt, len(HEAD), 64) == ()
    assert plan_chunks(cached, prompt, len(HEAD), 32) == (
        Chunk(source=20, target=25, length=50),)


def test_chunks_keep_their_order_and_never_overlap():
    a, b, c = _tokens(0, 100), _tokens(1000, 100), _tokens(2000, 100)
    cached = [*HEAD, *a, *b, *c]
    # b moved before a: only one of them can be kept in order, and c after both.
    prompt = [*HEAD, *b, *a, *_tokens(4000, 3), *c]
    chunks = plan_chunks(cached, prompt, len(HEAD), 64)
    assert [chunk.length for chunk in chunks] == [100, 100]
    for before, after in pairwise(chunks):
        assert before.source + before.length <= after.source
        assert before.target + before.length <= after.target
    for chunk in chunks:
        assert cached[chunk.source:chunk.source + chunk.length] == \
            prompt[chunk.target:chunk.target + chunk.length]


def test_a_recurring_run_is_taken_where_it_goes_on_longest():
    block = _tokens(0, 80)
    cached = [*HEAD, *block, *_tokens(500, 10), *block, *_tokens(600, 40)]
    prompt = [*HEAD, *_tokens(9000, 4), *block, *_tokens(600, 40)]
    assert plan_chunks(cached, prompt, len(HEAD), 64) == (
        Chunk(source=110, target=24, length=120),)


def test_chunks_never_reach_into_the_kept_head():
    cached = [*HEAD, *_tokens(0, 100)]
    prompt = [*HEAD, *_tokens(0, 100)]
    assert plan_chunks(cached, prompt, len(prompt), 64) == ()
    assert plan_chunks(cached, [*HEAD, *HEAD, *_tokens(0, 100)], len(HEAD),
                       ANCHOR_TOKENS) == (Chunk(source=20, target=40, length=100),)


def test_the_live_cache_is_kept_when_it_serves_best():
    live = [*HEAD, *_tokens(0, 500)]
    saved = [_state([*HEAD, *_tokens(5000, 500)])]
    keep = len(live) - SAVE_MIN_TOKENS // 2  # what it loses is not worth a saved state
    plan = plan_sync(live, [*live[:keep], 7], saved, None)
    assert plan.restore is None and plan.kept == keep and not plan.save_live


def test_a_saved_state_with_a_longer_head_is_restored_and_the_live_one_saved():
    other = [*HEAD, *_tokens(0, 500)]
    back = [*HEAD, *_tokens(5000, 500)]
    state = _state(back)
    plan = plan_sync(other, back[:-1], [state], None)
    assert plan.restore is state and plan.kept == len(back) - 1
    assert plan.save_live


def test_a_live_sequence_losing_few_tokens_is_not_saved():
    live = [*HEAD, *_tokens(0, 500)]
    plan = plan_sync(live, [*live[:-SAVE_MIN_TOKENS + 1], 3], [], None)
    assert not plan.save_live
    plan = plan_sync(live, [*live[:-SAVE_MIN_TOKENS], 3], [], None)
    assert plan.save_live


def test_a_live_sequence_a_saved_state_already_holds_is_not_saved_again():
    live = [*HEAD, *_tokens(0, 500)]
    plan = plan_sync(live, HEAD, [_state([*live, 1, 2])], None)
    assert not plan.save_live


def test_shifted_chunks_count_as_kept_and_spare_the_save():
    prefix, suffix = _tokens(0, 300), _tokens(9000, 300)
    live = [*HEAD, *prefix, *suffix]
    goal = [*HEAD, *prefix, *_tokens(5000, 10), *suffix]
    plan = plan_sync(live, goal, [], 64)
    assert plan.cached_tokens == len(live) and not plan.save_live
    assert plan_sync(live, goal, [], None).save_live


def test_saved_states_stay_within_their_limit_dropping_the_least_recently_used():
    states = SavedStates(limit_bytes=1000)
    saved = [_state(_tokens(10_000 * n, 300), size_bytes=300) for n in range(5)]
    for state in saved[:3]:
        states.add(state)
    states.used(saved[0])
    states.add(saved[3])
    assert states.snapshot() == [saved[2], saved[0], saved[3]]
    assert states.stats()["bytes"] <= 1000
    states.set_limit(400)
    assert states.snapshot() == [saved[3]]
    states.add(_state(_tokens(0, 10), size_bytes=401))
    assert states.snapshot() == [saved[3]]
    assert states.stats() == {"entries": 1, "bytes": 300, "limit_bytes": 400, "saves": 5,
                              "restores": 1}


def test_a_new_state_replaces_those_it_covers():
    states = SavedStates(limit_bytes=10_000)
    old = _state([*HEAD, *_tokens(0, 400)])
    states.add(old)
    states.add(_state([*HEAD, *_tokens(0, 380), *_tokens(7000, 300)]))
    assert old not in states.snapshot()
    unrelated = _state([*HEAD, *_tokens(20_000, 400)])
    states.add(unrelated)
    assert unrelated in states.snapshot() and len(states.snapshot()) == 2


def test_a_short_run_that_matches_first_cannot_keep_a_long_one_out():
    short, long = _tokens(0, 70), _tokens(1000, 300)
    cached = [*HEAD, *long, *short]
    prompt = [*HEAD, *short, *long]
    assert plan_chunks(cached, prompt, len(HEAD), 64) == (
        Chunk(source=20, target=90, length=300),)


def test_generated_tokens_are_not_worth_saving():
    prompt, generated = [*HEAD, *_tokens(0, 300)], _tokens(5000, 48)
    live = [*prompt, *generated]
    next_keystroke = [*prompt[:-2], 7]
    assert plan_sync(live, next_keystroke, [], None).save_live
    assert not plan_sync(live, next_keystroke, [], None, len(prompt)).save_live
    assert plan_sync(live, HEAD, [], None, len(prompt)).save_live
