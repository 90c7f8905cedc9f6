"""Style measured from the syntax tree: how far an adapter moves the model toward its author.

Each feature is a rate (hits out of the times the habit could show) counted on Python's own
AST and tokens. The base→author gap of a feature is the author's rate on files not trained on
minus the base model's rate on the same prompts; the adapter closes (adapter - base) / gap of
it. A small logistic regression over the same features, trained to tell the author's code from
other authors', is the second, discriminative check.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import statistics
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# A feature whose base→author gap is smaller than this (in points of rate) leaves no room to
# move: it is reported, not averaged.
MIN_GAP_POINTS = 5.0
# A rate counted from fewer chances than this is too thin to compare.
MIN_EVIDENCE = 3
# One feature's closed share counts at most this far either way in the mean: a 5-point gap
# crossed by 15 points of noise would otherwise outweigh every other feature.
CLOSED_CLIP = 1.0
LONG_LINE_CHARS = 79
# Logistic regression: L2 strength and gradient steps (the features are a dozen; it converges).
CLASSIFIER_L2 = 0.1
CLASSIFIER_STEPS = 800
CLASSIFIER_LEARNING_RATE = 0.5
SNAKE = re.compile(r"^_*[a-z0-9]+(?:_[a-z0-9]+)+_*$")
CAMEL = re.compile(r"^_*[a-z]+[a-z0-9]*(?:[A-Z][a-z0-9]*)+_*$")
SPHINX = re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?)\b", re.MULTILINE)
GOOGLE = re.compile(r"^\s*(?:Args|Arguments|Returns|Raises|Yields):\s*$", re.MULTILINE)
NUMPY = re.compile(r"^\s*(?:Parameters|Returns|Raises|Yields)\s*\n\s*-{3,}\s*$", re.MULTILINE)

# name → what its rate is the share of.
FEATURES = {
    "snake_case_names": "multi-word names written snake_case (not camelCase)",
    "double_quotes": "string literals in double quotes",
    "annotated_params": "parameters with a type hint",
    "return_annotations": "functions with a return type hint",
    "docstrings": "functions with a docstring",
    "sphinx_docstrings": "docstrings with :param: / :returns: fields",
    "google_docstrings": "docstrings with Args: / Returns: sections",
    "numpy_docstrings": "docstrings with underlined Parameters / Returns sections",
    "comprehensions": "comprehensions among comprehensions and for loops",
    "f_strings": "f-strings among f-strings, .format() and % formatting",
    "early_returns": "if statements that return or raise with no else (guard clauses)",
    "long_lines": f"lines longer than {LONG_LINE_CHARS} characters",
    "comment_lines": "code lines with a # comment",
    "from_imports": "imports written `from x import y`",
    "is_none_checks": "comparisons with None written `is`/`is not` (not ==)",
}

Counts = dict[str, tuple[int, int]]  # feature → (hits, chances)


def parse_leniently(code: str) -> ast.Module | None:
    """The AST of `code`, or of its longest parsable head (a completion cut off mid-statement
    still shows the habits before the cut); None when no line of it parses."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        try:
            return ast.parse("\n".join(lines[:end]))
        except (SyntaxError, ValueError):
            continue
    return None


def style_counts(code: str) -> Counts:
    """Every feature's (hits, chances) in `code`; features it had no chance to show are 0/0."""
    counts = {name: [0, 0] for name in FEATURES}

    def add(name: str, hit: bool) -> None:
        counts[name][0] += hit
        counts[name][1] += 1

    tree = parse_leniently(code)
    if tree is not None:
        head = _parsed_head(code, tree)
        _mark_quotes(tree, head)
        _count_tree(tree, add)
        _count_tokens(head, add)
    return {name: (hits, chances) for name, (hits, chances) in counts.items()}


def _parsed_head(code: str, tree: ast.Module) -> str:
    """The lines of `code` that `tree` was parsed from."""
    last = max((getattr(node, "end_lineno", 0) or 0 for node in ast.walk(tree)), default=0)
    return "\n".join(code.splitlines()[:last]) + "\n"


def _count_tree(tree: ast.Module, add) -> None:
    docstring_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            _count_function(node, add, docstring_nodes)
            _count_name(node.name, add)
        elif isinstance(node, ast.ClassDef | ast.Module):
            if ast.get_docstring(node) is not None:
                docstring_nodes.add(id(node.body[0].value))
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            add("comprehensions", True)
        elif isinstance(node, ast.For | ast.AsyncFor):
            add("comprehensions", False)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            add("from_imports", isinstance(node, ast.ImportFrom))
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    _count_name(target.id, add)
        elif isinstance(node, ast.Compare):
            for operator, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(right, ast.Constant) and right.value is None:
                    add("is_none_checks", isinstance(operator, ast.Is | ast.IsNot))
        elif isinstance(node, ast.JoinedStr):
            add("f_strings", True)
        elif _older_formatting(node):
            add("f_strings", False)
    _count_strings(tree, add, docstring_nodes)


def _older_formatting(node: ast.AST) -> bool:
    """`"…".format(…)` or `"…" % …`: what an f-string replaces."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        literal = node.func.value
        return node.func.attr == "format" and isinstance(literal, ast.Constant) and isinstance(
            literal.value, str)
    return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str))


def _count_function(node: ast.FunctionDef | ast.AsyncFunctionDef, add,
                    docstring_nodes: set[int]) -> None:
    arguments = node.args
    for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
        if argument.arg in ("self", "cls"):
            continue
        add("annotated_params", argument.annotation is not None)
        _count_name(argument.arg, add)
    add("return_annotations", node.returns is not None)
    docstring = ast.get_docstring(node, clean=False)
    add("docstrings", docstring is not None)
    if docstring is not None:
        docstring_nodes.add(id(node.body[0].value))
        add("sphinx_docstrings", bool(SPHINX.search(docstring)))
        add("google_docstrings", bool(GOOGLE.search(docstring)))
        add("numpy_docstrings", bool(NUMPY.search(docstring)))
    for statement in node.body:
        if isinstance(statement, ast.If):
            exits = statement.body and isinstance(statement.body[-1], ast.Return | ast.Raise)
            add("early_returns", bool(exits) and not statement.orelse)


def _count_name(name: str, add) -> None:
    if SNAKE.match(name):
        add("snake_case_names", True)
    elif CAMEL.match(name):
        add("snake_case_names", False)


def _count_strings(tree: ast.Module, add, docstring_nodes: set[int]) -> None:
    """Quotes of the string literals the AST has, docstrings and f-string parts left out."""
    inside_fstrings = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                       for part in ast.walk(node)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstring_nodes and id(node) not in inside_fstrings):
            quote = getattr(node, "_quote", None)
            if quote is not None:
                add("double_quotes", quote == '"')


def _count_tokens(code: str, add) -> None:
    """Line length and comments, which the AST does not keep."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    commented = {token.start[0] for token in tokens if token.type == tokenize.COMMENT}
    code_lines = {token.start[0] for token in tokens if token.type not in (
        tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
        tokenize.ENDMARKER)}
    for number in code_lines:
        add("comment_lines", number in commented)
    for line in code.splitlines():
        if line.strip():
            add("long_lines", len(line) > LONG_LINE_CHARS)


def _mark_quotes(tree: ast.Module, code: str) -> None:
    """Give each single-line string constant the quote it was written with (`_quote`)."""
    lines = code.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.lineno == node.end_lineno and node.lineno <= len(lines):
            text = lines[node.lineno - 1].encode()[node.col_offset:node.end_col_offset].decode(
                errors="replace").lstrip("rRbBuU")
            if text[:3] not in ('"""', "'''") and text[:1] in ('"', "'"):
                node._quote = text[0]


# ---------------------------------------------------------------- rates and the gap


def add_counts(all_counts: Iterable[Counts]) -> Counts:
    total = {name: (0, 0) for name in FEATURES}
    for counts in all_counts:
        for name, (hits, chances) in counts.items():
            total[name] = (total[name][0] + hits, total[name][1] + chances)
    return total


def style_rates(codes: Iterable[str], min_evidence: int = MIN_EVIDENCE) -> dict[str, float]:
    """Each feature's rate over all of `codes` pooled; a feature with fewer than `min_evidence`
    chances is absent."""
    total = add_counts(map(style_counts, codes))
    return {name: hits / chances for name, (hits, chances) in total.items()
            if chances >= max(1, min_evidence)}


@dataclass(frozen=True)
class FeatureGap:
    """One feature's rates (0-1; None where too thin) for the author and the two arms."""

    name: str
    author: float | None
    base: float | None
    adapter: float | None

    @property
    def gap_points(self) -> float | None:
        if self.author is None or self.base is None:
            return None
        return 100 * (self.author - self.base)

    @property
    def counted(self) -> bool:
        """Whether there was room to move (and the adapter's rate is known)."""
        gap = self.gap_points
        return gap is not None and abs(gap) >= MIN_GAP_POINTS and self.adapter is not None

    @property
    def closed(self) -> float | None:
        """(adapter - base) / gap: 0 where the base is, 1 at the author; None without a gap.

        Past the author it is the distance left, as a share of the gap, taken from 1: an adapter
        that writes early returns in every function for an author who does in 28% is further
        from that author than the base at 0%, not "359% closed"."""
        gap = self.gap_points
        if gap is None or self.adapter is None or gap == 0:
            return None
        moved = 100 * (self.adapter - self.base) / gap
        return moved if moved <= 1 else 2 - moved


@dataclass(frozen=True)
class StyleGap:
    features: tuple[FeatureGap, ...]

    @property
    def mean_closed(self) -> float | None:
        """The mean share of the gap closed over the features with room (each clipped to
        ±CLOSED_CLIP), or None when no feature had room."""
        closed = [max(-CLOSED_CLIP, min(CLOSED_CLIP, feature.closed))
                  for feature in self.features if feature.counted]
        return statistics.mean(closed) if closed else None


def style_gap(author: dict[str, float], base: dict[str, float],
              adapter: dict[str, float]) -> StyleGap:
    return StyleGap(tuple(FeatureGap(name, author.get(name), base.get(name), adapter.get(name))
                          for name in FEATURES))


# ---------------------------------------------------------------- the discriminative check


def python_functions(code: str) -> list[str]:
    """The text of each function (methods and nested ones too) of a Python source, in source
    order; of its longest parsable head when the whole does not parse."""
    tree = parse_leniently(code)
    if tree is None:
        return []
    lines = code.splitlines()
    found = [
        "\n".join(line[node.col_offset:] if number == node.lineno else line
                  for number, line in enumerate(lines[node.lineno - 1:node.end_lineno],
                                                start=node.lineno))
        for node in sorted((node for node in ast.walk(tree)
                            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)),
                           key=lambda node: node.lineno)]
    return found


def feature_matrix(codes: list[str], fill: np.ndarray | None = None) -> np.ndarray:
    """One row per code sample, one column per feature: its rate, or `fill` (the training
    rows' mean) where the sample gave the habit no chance to show."""
    rows = np.full((len(codes), len(FEATURES)), np.nan)
    for row, code in enumerate(codes):
        for column, (hits, chances) in enumerate(style_counts(code).values()):
            if chances:
                rows[row, column] = hits / chances
    if fill is not None:
        rows = np.where(np.isnan(rows), fill, rows)
    return rows


@dataclass
class StyleClassifier:
    """Logistic regression telling one author's code (1) from other authors' (0)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    @classmethod
    def fit(cls, author: list[str], others: list[str]) -> StyleClassifier:
        if not author or not others:
            raise ValueError("the style classifier needs code of the author and of others")
        raw = feature_matrix(author + others)
        seen = ~np.isnan(raw)
        # A habit no sample showed gets 0.5: with no spread it carries no weight anyway.
        mean = np.where(seen.any(axis=0), np.nansum(raw, axis=0) / np.maximum(1, seen.sum(0)),
                        0.5)
        rows = np.where(np.isnan(raw), mean, raw)
        scale = rows.std(axis=0)
        scale[scale < 1e-6] = 1.0
        x = (rows - mean) / scale
        y = np.array([1.0] * len(author) + [0.0] * len(others))
        # Each class weighs the same, however many samples it has.
        sample_weight = np.where(y == 1, 0.5 / len(author), 0.5 / len(others))
        weights, bias = np.zeros(x.shape[1]), 0.0
        for _ in range(CLASSIFIER_STEPS):
            error = (_sigmoid(x @ weights + bias) - y) * sample_weight
            weights -= CLASSIFIER_LEARNING_RATE * (x.T @ error + CLASSIFIER_L2 * weights
                                                   / len(y))
            bias -= CLASSIFIER_LEARNING_RATE * float(error.sum())
        return cls(mean, scale, weights, bias)

    def standardized(self, codes: list[str]) -> np.ndarray:
        return (feature_matrix(codes, self.mean) - self.mean) / self.scale

    def author_probability(self, codes: list[str]) -> np.ndarray:
        return _sigmoid(self.standardized(codes) @ self.weights + self.bias)

    def share_as_author(self, codes: list[str]) -> float | None:
        """% of `codes` classified as the author's; None for no code."""
        if not codes:
            return None
        return 100 * float((self.author_probability(codes) > 0.5).mean())

    def accuracy(self, author: list[str], others: list[str]) -> float | None:
        """% right on held-out code, each class weighing half."""
        if not author or not others:
            return None
        right_author = (self.author_probability(author) > 0.5).mean()
        right_others = (self.author_probability(others) <= 0.5).mean()
        return 100 * float(right_author + right_others) / 2

    def contributions(self, codes: list[str]) -> dict[str, float]:
        """Each feature's mean push on the author score (log-odds) over `codes`."""
        if not codes:
            return {name: 0.0 for name in FEATURES}
        pushes = (self.standardized(codes) * self.weights).mean(axis=0)
        return dict(zip(FEATURES, map(float, pushes), strict=True))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(values, -30, 30)))


@dataclass(frozen=True)
class Discrimination:
    """The classifier's verdicts: how well it tells the author's held-out code from others',
    and how often each arm's completions pass for the author's."""

    held_out_accuracy: float | None
    base_share: float | None
    adapter_share: float | None
    base_contributions: dict[str, float]
    adapter_contributions: dict[str, float]

    @property
    def improved(self) -> bool | None:
        if self.base_share is None or self.adapter_share is None:
            return None
        return self.adapter_share > self.base_share


def discriminate(author_train: list[str], others_train: list[str], author_held_out: list[str],
                 others_held_out: list[str], base_code: list[str],
                 adapter_code: list[str]) -> Discrimination:
    """Fit on training code (functions), check on held-out code, then judge both arms."""
    classifier = StyleClassifier.fit(author_train, others_train)
    return Discrimination(classifier.accuracy(author_held_out, others_held_out),
                          classifier.share_as_author(base_code),
                          classifier.share_as_author(adapter_code),
                          classifier.contributions(base_code),
                          classifier.contributions(adapter_code))


def split_stably(items: list[str], every: int = 5) -> tuple[list[str], list[str]]:
    """(training, held out): every `every`-th item held out, by position."""
    return ([item for index, item in enumerate(items) if index % every],
            [item for index, item in enumerate(items) if not index % every])



# ---------------------------------------------------------------- authors and the control

# The cross-author control holds while the adapter closes at most this share of the gap toward
# another author, and passes for theirs at most this many points more often than the base:
# room for noise, not for a real pull.
CROSS_AUTHOR_MAX_CLOSED = 0.10
CROSS_AUTHOR_MAX_SHARE_POINTS = 5.0


@dataclass(frozen=True)
class AuthorCode:
    """One author's Python files: those the adapter trained on and those it did not."""

    name: str
    train: tuple[str, ...]
    unseen: tuple[str, ...]

    @functools.cached_property
    def train_functions(self) -> list[str]:
        return [function for text in self.train for function in python_functions(text)]

    @functools.cached_property
    def unseen_functions(self) -> list[str]:
        return [function for text in self.unseen for function in python_functions(text)]


@dataclass(frozen=True)
class CrossAuthor:
    """Whether the adapter's completions moved toward another author (they should not)."""

    name: str
    gap: StyleGap  # "author" is the other author here
    base_share: float | None  # % classified as the other author's
    adapter_share: float | None

    @property
    def holds(self) -> bool:
        closed = self.gap.mean_closed
        if closed is not None and closed > CROSS_AUTHOR_MAX_CLOSED:
            return False
        return (self.base_share is None or self.adapter_share is None
                or self.adapter_share <= self.base_share + CROSS_AUTHOR_MAX_SHARE_POINTS)


@dataclass(frozen=True)
class RelativeStyle:
    gap: StyleGap
    discrimination: Discrimination | None
    cross_author: tuple[CrossAuthor, ...]


def relative_style(author: AuthorCode, base_code: list[str], adapter_code: list[str],
                   others: Iterable[AuthorCode] = (), reference: list[str] = ()
                   ) -> RelativeStyle:
    """The adapter's style measured against its author's and every other author's.

    `base_code` and `adapter_code` are the functions each arm wrote for the same prompts;
    `reference` is code of yet other authors, only ever a negative for the classifiers.
    """
    others = list(others)
    base_rates, adapter_rates = style_rates(base_code), style_rates(adapter_code)
    gap = style_gap(style_rates(author.unseen_functions), base_rates, adapter_rates)
    reference_train, reference_held_out = split_stably(list(reference))
    negatives = reference_train + [f for other in others for f in other.train_functions]
    negatives_held_out = reference_held_out + [f for other in others
                                               for f in other.unseen_functions]
    author_train = author.train_functions
    discrimination = None
    if author_train and negatives:
        discrimination = discriminate(author_train, negatives, author.unseen_functions,
                                      negatives_held_out, base_code, adapter_code)
    controls = []
    for other in others:
        toward = style_gap(style_rates(other.unseen_functions), base_rates, adapter_rates)
        their_negatives = reference_train + author_train + [
            f for third in others if third is not other for f in third.train_functions]
        base_share = adapter_share = None
        if other.train_functions and their_negatives:
            classifier = StyleClassifier.fit(other.train_functions, their_negatives)
            base_share = classifier.share_as_author(base_code)
            adapter_share = classifier.share_as_author(adapter_code)
        controls.append(CrossAuthor(other.name, toward, base_share, adapter_share))
    return RelativeStyle(gap, discrimination, tuple(controls))
