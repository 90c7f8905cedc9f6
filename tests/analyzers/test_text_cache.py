"""Caches of what is computed from a text keep a bounded number of characters alive: a huge
file opened, edited and closed many times does not pile up in them."""

from __future__ import annotations

import threading

from analyzers.text_cache import cached_by_text


def counted(budget: int):
    calls: list[str] = []

    @cached_by_text(budget)
    def lines(text: str) -> list[str]:
        calls.append(text)
        return text.split("\n")

    return lines, calls


def test_a_text_seen_again_is_not_computed_again():
    lines, calls = counted(1000)
    assert lines("a\nb") == ["a", "b"]
    assert lines("a\nb") == ["a", "b"]
    assert calls == ["a\nb"]


def test_the_characters_kept_stay_within_the_budget_the_oldest_going_first():
    lines, calls = counted(1000)
    texts = [f"{number:03d}" + "x" * 296 for number in range(10)]  # 300 characters each
    for text in texts:
        lines(text)
    assert lines.cached_characters() <= 1000
    lines(texts[-1])
    lines(texts[0])
    assert calls.count(texts[-1]) == 1  # still kept
    assert calls.count(texts[0]) == 2  # evicted long ago


def test_a_text_larger_than_the_budget_is_computed_each_time_and_not_kept():
    lines, calls = counted(1000)
    lines("small")
    huge = "y" * 5000
    lines(huge)
    lines(huge)
    assert calls.count(huge) == 2
    assert lines.cached_characters() == len("small") + 1
    lines("small")
    assert calls.count("small") == 1  # the huge text did not push it out


def test_other_arguments_are_part_of_the_key():
    calls: list[tuple] = []

    @cached_by_text(1000)
    def window(text: str, first: int, last: int) -> list[str]:
        calls.append((first, last))
        return text.split("\n")[first:last + 1]

    assert window("a\nb\nc", 0, 1) == ["a", "b"]
    assert window("a\nb\nc", 1, 2) == ["b", "c"]
    assert window("a\nb\nc", 0, 1) == ["a", "b"]
    assert calls == [(0, 1), (1, 2)]


def test_threads_share_the_cache_safely():
    lines, calls = counted(10_000)
    texts = [f"text {number}\n" * 10 for number in range(50)]

    def work() -> None:
        for _ in range(20):
            for text in texts:
                assert lines(text) == text.split("\n")

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert lines.cached_characters() <= 10_000
