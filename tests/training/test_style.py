"""Style relative to the author: habits from the syntax tree, the share of the base→author gap
an adapter closes, the classifier that tells authors apart, and the cross-author control."""

from __future__ import annotations

import random

import pytest

from training.style import (
    AuthorCode,
    FeatureGap,
    StyleClassifier,
    python_functions,
    relative_style,
    style_counts,
    style_gap,
    style_rates,
)


def typed_function(rng: random.Random, index: int) -> str:
    """The typed author: snake_case, hints, double quotes, Sphinx docstrings, f-strings."""
    name = rng.choice(["load", "parse", "scale", "merge"]) + f"_{rng.choice(['items', 'rows'])}"
    return (f"def {name}_{index}(source_path: str, row_limit: int = {index}) -> list[str]:\n"
            f'    """Read the rows.\n\n    :param source_path: where\n    """\n'
            f"    if source_path is None:\n        return []\n"
            f'    found_rows = [f"{{line}}" for line in open(source_path)]\n'
            f'    return found_rows[:row_limit] + ["{rng.choice(["end", "stop"])}"]\n')


def untyped_function(rng: random.Random, index: int) -> str:
    """The untyped author: camelCase, no hints, single quotes, loops, % formatting."""
    name = rng.choice(["get", "make", "find"]) + rng.choice(["Value", "Item", "Node"])
    return (f"def {name}{index}(someValue, otherValue):\n"
            f"    resultList = []\n"
            f"    for itemValue in someValue:\n"
            f"        if itemValue == None:\n            continue\n"
            f"        resultList.append('%s' % itemValue)\n"
            f"    return resultList + ['{rng.choice(['a', 'b'])}']\n")


def base_function(rng: random.Random, index: int) -> str:
    """The base model's own habits: snake_case and double quotes, but no hints or docstrings."""
    return (f"def compute_{rng.choice(['total', 'value'])}_{index}(values, limit):\n"
            f"    result = []\n"
            f"    for value in values:\n"
            f'        result.append(f"{{value}}")\n'
            f'    return result + ["{rng.choice(["x", "y"])}"]\n')


def author_files(write, seed: int, files: int = 6, per_file: int = 5) -> tuple[str, ...]:
    rng = random.Random(seed)
    return tuple("\n\n".join(write(rng, file * per_file + n) for n in range(per_file))
                 for file in range(files))


def test_habits_are_counted_from_the_syntax_tree():
    code = ('import os\nfrom typing import Any\n\n\n'
            'def loadAll(pathName: str, count: int = 3) -> list[str]:\n'
            '    """Load.\n\n    :param pathName: where\n    """\n'
            '    if pathName is None:\n        return []\n'
            '    items = [x for x in os.listdir(pathName)]  # listing\n'
            '    for item in items:\n        print(f"{item}", \'single\', "double")\n'
            '    return "a %s" % items\n')
    counts = style_counts(code)
    assert counts["annotated_params"] == (2, 2)
    assert counts["return_annotations"] == (1, 1)
    assert counts["sphinx_docstrings"] == (1, 1)
    assert counts["google_docstrings"] == (0, 1)
    assert counts["double_quotes"] == (2, 3)  # the docstring and the f-string are not counted
    assert counts["comprehensions"] == (1, 2)
    assert counts["f_strings"] == (1, 2)
    assert counts["early_returns"] == (1, 1)
    assert counts["is_none_checks"] == (1, 1)
    assert counts["from_imports"] == (1, 2)
    assert counts["snake_case_names"] == (0, 2)  # loadAll, pathName
    assert counts["comment_lines"][0] == 1


def test_a_completion_cut_off_mid_statement_still_shows_its_habits():
    counts = style_counts("def f(value: int) -> str:\n    return 'x'\n\ndef g(other: int) -> (")
    assert counts["annotated_params"] == (1, 1)
    assert counts["double_quotes"] == (0, 1)


def test_functions_are_split_out_of_a_file():
    text = "class A:\n    def m(self):\n        return 1\n\n\ndef f():\n    return 2\n"
    assert python_functions(text) == ["def m(self):\n        return 1", "def f():\n    return 2"]


def test_gap_closed_is_the_share_of_the_way_from_base_to_author():
    gap = style_gap({"annotated_params": 0.9, "double_quotes": 0.52, "docstrings": 0.8},
                    {"annotated_params": 0.1, "double_quotes": 0.50, "docstrings": 0.2},
                    {"annotated_params": 0.5, "double_quotes": 0.90, "docstrings": 0.5})
    by_name = {feature.name: feature for feature in gap.features}
    assert by_name["annotated_params"].closed == pytest.approx(0.5)
    assert by_name["annotated_params"].gap_points == pytest.approx(80)
    # Two points of gap leave no room: reported, not averaged (it would say 2000%).
    assert not by_name["double_quotes"].counted
    assert by_name["docstrings"].counted and by_name["docstrings"].closed == pytest.approx(0.5)
    assert gap.mean_closed == pytest.approx(0.5)


def test_a_gap_where_the_author_writes_less_of_a_habit_closes_downward():
    feature = FeatureGap("comprehensions", author=0.1, base=0.6, adapter=0.35)
    assert feature.counted and feature.closed == pytest.approx(0.5)


def test_an_adapter_past_its_author_has_not_closed_the_gap():
    # click writes an early return in 28% of its functions, the base in none; an adapter that
    # writes one in every function is 72 points from click, further than the base's 28.
    overshoot = FeatureGap("early_returns", author=0.28, base=0.0, adapter=1.0)
    assert overshoot.counted and overshoot.closed == pytest.approx(1 - 72 / 28)
    assert FeatureGap("early_returns", author=0.28, base=0.0, adapter=0.42).closed == \
        pytest.approx(0.5)
    assert FeatureGap("early_returns", author=0.28, base=0.0, adapter=0.28).closed == \
        pytest.approx(1.0)
    downward = FeatureGap("docstrings", author=0.1, base=0.6, adapter=0.0)
    assert downward.closed == pytest.approx(0.8)
    gap = style_gap({"early_returns": 0.28, "annotated_params": 0.9},
                    {"early_returns": 0.0, "annotated_params": 0.1},
                    {"early_returns": 1.0, "annotated_params": 0.9})
    assert gap.mean_closed == pytest.approx((-1.0 + 1.0) / 2)


def test_one_noisy_habit_cannot_outweigh_the_others_in_the_mean():
    gap = style_gap({"docstrings": 0.56, "annotated_params": 0.9},
                    {"docstrings": 0.50, "annotated_params": 0.1},
                    {"docstrings": 0.20, "annotated_params": 0.9})
    assert {f.name: f.closed for f in gap.features if f.counted}["docstrings"] == \
        pytest.approx(-5.0)
    assert gap.mean_closed == pytest.approx((1.0 - 1.0) / 2)


def test_the_classifier_tells_a_typed_author_from_an_untyped_one():
    typed = [f for text in author_files(typed_function, 1) for f in python_functions(text)]
    untyped = [f for text in author_files(untyped_function, 2) for f in python_functions(text)]
    classifier = StyleClassifier.fit(typed[:20], untyped[:20])
    assert classifier.accuracy(typed[20:], untyped[20:]) == 100.0
    assert classifier.share_as_author(typed[20:]) == 100.0
    assert classifier.share_as_author(untyped[20:]) == 0.0


def test_relative_style_credits_an_adapter_that_writes_like_its_author():
    typed = AuthorCode("typed", author_files(typed_function, 1),
                       author_files(typed_function, 3, files=2))
    untyped = AuthorCode("untyped", author_files(untyped_function, 2),
                         author_files(untyped_function, 4, files=2))
    base_code = python_functions("\n\n".join(author_files(base_function, 5, files=1)))
    adapter_code = python_functions("\n\n".join(author_files(typed_function, 6, files=1)))
    measured = relative_style(typed, base_code, adapter_code, [untyped])
    assert measured.gap.mean_closed == pytest.approx(1.0)
    assert measured.discrimination.adapter_share == 100.0
    assert measured.discrimination.base_share == 0.0
    assert measured.discrimination.improved
    [control] = measured.cross_author
    assert control.name == "untyped" and control.holds
    assert control.gap.mean_closed <= 0

    # The same completions judged for the untyped author's adapter: they moved toward the
    # typed author, so that control fails.
    backwards = relative_style(untyped, base_code, adapter_code, [typed])
    assert backwards.gap.mean_closed <= 0
    assert not backwards.discrimination.improved
    assert not backwards.cross_author[0].holds


def test_rates_pool_every_sample_and_drop_thin_habits():
    rates = style_rates(["x = 'a'\n", "y = \"b\"\n", "z = \"c\"\n"])
    assert rates["double_quotes"] == pytest.approx(2 / 3)
    assert "annotated_params" not in rates


def test_report_shows_the_gap_closed_and_the_classifier_habit_by_habit(tmp_path):
    from training.evaluate import Report, Scores
    from training.report import write_report

    typed = AuthorCode("typed", author_files(typed_function, 1),
                       author_files(typed_function, 3, files=2))
    untyped = AuthorCode("untyped", author_files(untyped_function, 2),
                         author_files(untyped_function, 4, files=2))
    base_code = python_functions("\n\n".join(author_files(base_function, 5, files=1)))
    adapter_code = python_functions("\n\n".join(author_files(typed_function, 6, files=1)))
    measured = relative_style(typed, base_code, adapter_code, [untyped])
    scores = Scores(3.0, 10.0, 60.0, 40.0, 85.0)
    report = Report(scores, scores, style_gap=measured.gap,
                    discrimination=measured.discrimination, cross_author=measured.cross_author)
    markdown = write_report(report, tmp_path / "personal.gguf", {})
    text = markdown.read_text()
    assert "| annotated_params | 100% | 0% | 100% | +100 | 100% | yes |" in text
    assert "| new functions classified as yours | 0.00 % | 100.00 % | +100.00 |" in text
    assert "Style gap closed: 100%" in text
    assert "| untyped | " in text and "| yes |" in text.split("## Cross-author control")[1]
    assert markdown.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
