"""Prompt lookup's guesses: what followed the last tokens where they occurred before."""

from __future__ import annotations

from model.lookup import MIN_MATCH_TOKENS, SEARCH_TOKENS, draft


def test_the_guess_is_what_followed_the_last_tokens_before():
    #            the run 7 8 recurs at the end: 9 10 11 followed it
    tokens = [1, 7, 8, 9, 10, 11, 12, 5, 7, 8]
    assert draft(tokens, 3) == [9, 10, 11]
    assert draft(tokens, 2) == [9, 10]


def test_the_nearest_occurrence_wins():
    tokens = [7, 8, 1, 2, 3, 0, 7, 8, 4, 5, 6, 0, 7, 8]
    assert draft(tokens, 3) == [4, 5, 6]


def test_a_longer_matching_run_beats_a_nearer_shorter_one():
    tokens = [6, 7, 8, 1, 2, 0, 9, 7, 8, 3, 4, 0, 6, 7, 8]
    assert draft(tokens, 2) == [1, 2]


def test_no_guess_without_a_recurring_run():
    assert draft([1, 2, 3, 4, 5, 6], 3) == []
    # a single recurring token is too common (a space, a newline) to guess from
    assert MIN_MATCH_TOKENS >= 2
    assert draft([5, 1, 2, 3, 4, 5], 3) == []
    assert draft([], 3) == []
    assert draft([1, 2, 1, 2], 0) == []


def test_a_guess_may_run_up_to_the_end_of_what_is_there():
    assert draft([3, 4, 5, 3, 4], 3) == [5, 3, 4]


def test_only_the_recent_tokens_are_searched():
    far = [7, 8, 9]
    filler = list(range(100, 100 + SEARCH_TOKENS))
    assert draft(far + filler + [7, 8], 1) == []
    assert draft(filler + far + [7, 8], 1) == [9]
