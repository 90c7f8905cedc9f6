"""Does the adapter help? Base against base+adapter, both in llama.cpp as the server runs them.

Held-out perplexity on the middles of held-out files, FIM exact match there, style agreement of
the generated code with the user's corpus, and a guard set (HumanEval single-line infilling)
that catches forgetting. Written as a markdown report with a PNG chart next to the adapter.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from model.engine import GenerationParams, LlamaCppEngine
from model.prompts import END_OF_TEXT, fim_prompt_tokens, fim_request_at
from training.examples import IGNORE_INDEX, Example

GUARD_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / (
    "HumanEval-SingleLineInfilling.jsonl.gz")
GUARD_SAMPLE = 40
GUARD_SEED = 20261124
# An adapter that loses more than this on the guard set is not enabled without asking.
GUARD_MAX_LOSS_POINTS = 2.0
EVAL_EXAMPLES = 24
MAX_NEW_TOKENS = 96


@dataclass(frozen=True)
class Scores:
    perplexity: float
    fim_exact_match: float  # % of held-out middles reproduced exactly
    style_agreement: float  # 0-100, see style_agreement()
    guard_exact_match: float | None  # % of guard tasks, None when the guard data is missing


@dataclass
class Report:
    base: Scores
    adapted: Scores
    style_features_corpus: dict[str, float] = field(default_factory=dict)
    style_features_base: dict[str, float] = field(default_factory=dict)
    style_features_adapted: dict[str, float] = field(default_factory=dict)

    @property
    def guard_passed(self) -> bool | None:
        if self.base.guard_exact_match is None or self.adapted.guard_exact_match is None:
            return None
        return self.base.guard_exact_match - self.adapted.guard_exact_match <= \
            GUARD_MAX_LOSS_POINTS

    def scores_for_metadata(self) -> dict[str, float]:
        values = {}
        for arm, scores in (("base", self.base), ("adapter", self.adapted)):
            for name, value in vars(scores).items():
                if value is not None:
                    values[f"{arm}.{name}"] = float(value)
        return values


# ---------------------------------------------------------------- measuring


def middle_perplexity(llm, examples: list[Example]) -> float:
    """exp(mean NLL) of the middle's code tokens given the FIM prompt; `llm` has
    logits_all=True. The end-of-text token after the middle is left out: the base model hardly
    ever predicts it, so any adapter, whoever's code it learned, would gain there alike."""
    (end,) = llm.tokenize(END_OF_TEXT.encode(), add_bos=False, special=True)
    total, count = 0.0, 0
    for example in examples:
        llm.reset()
        llm.eval(list(example.input_ids))
        logits = np.array(llm.scores[: len(example.input_ids)], dtype=np.float64)
        for position, label in enumerate(example.labels):
            if label in (IGNORE_INDEX, end) or position == 0:
                continue
            row = logits[position - 1]
            top = row.max()
            total += top + math.log(np.exp(row - top).sum()) - row[label]
            count += 1
    return math.exp(total / max(1, count))


def generate_middles(engine: LlamaCppEngine, examples: list[Example]) -> list[tuple[str, str]]:
    """(shown, expected) middle text for each example, greedy. What is shown is what the editor
    would insert: the model's text cut where it leaves the cursor's scope and cleaned as the
    server does (an example without a plan keeps the raw text)."""
    end = engine.special_token(END_OF_TEXT)
    pairs = []
    for example in examples:
        prompt = [token for token, label in zip(example.input_ids, example.labels, strict=True)
                  if label == IGNORE_INDEX]
        expected = engine.detokenize([label for label in example.labels
                                      if label not in (IGNORE_INDEX, end)])
        plan = example.plan
        result = engine.generate(prompt, GenerationParams(max_tokens=MAX_NEW_TOKENS),
                                 stop_rule=None if plan is None else plan.stop_rule)
        if plan is None:
            pairs.append((result.text, expected))
            continue
        shown = plan.finish(result.text, complete=result.finish_reason in ("stop", "eos"))
        pairs.append((shown, expected[len(plan.request.held_back):]))
    return pairs


def exact_match(pairs: list[tuple[str, str]]) -> float:
    if not pairs:
        return 0.0
    return 100 * sum(generated.strip() == expected.strip() for generated, expected in pairs) / len(
        pairs)


def guard_tasks(sample: int = GUARD_SAMPLE) -> list[dict]:
    if not GUARD_FILE.is_file():
        return []
    with gzip.open(GUARD_FILE, "rt") as lines:
        tasks = [json.loads(line) for line in lines]
    return random.Random(GUARD_SEED).sample(tasks, min(sample, len(tasks)))


def guard_exact_match(engine: LlamaCppEngine, tasks: list[dict]) -> float | None:
    """Single-line infilling: the cursor at column 0 of the missing line, as bench/fim.py does."""
    if not tasks:
        return None
    hits = 0
    for task in tasks:
        document = task["prompt"] + task["suffix"]
        request = fim_request_at(document, task["prompt"].count("\n"), 0,
                                 repo_name="humaneval", path="solution.py")
        engine.clear_cache()
        result = engine.generate(fim_prompt_tokens(request, engine),
                                 GenerationParams(max_tokens=MAX_NEW_TOKENS, stop=("\n",)))
        hits += result.text.strip() == task["canonical_solution"].strip()
    return 100 * hits / len(tasks)


# ---------------------------------------------------------------- style

_IDENTIFIER_DEF = re.compile(r"^\s*(?:def\s+|class\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|\()",
                             re.MULTILINE)
_STRING = re.compile(r"(?<![\"'])(\"[^\"\n]*\"|'[^'\n]*')")
_DEF_PARAMS = re.compile(r"def\s+\w+\s*\(([^)]*)\)", re.DOTALL)


def style_features(code: str) -> dict[str, float]:
    """Objective habits as shares in [0, 1]; a feature with no evidence in `code` is absent."""
    features: dict[str, float] = {}
    names = [name for name in _IDENTIFIER_DEF.findall(code) if name not in ("def", "class")]
    multiword = [name for name in names if "_" in name.strip("_") or re.search(r"[a-z][A-Z]", name)]
    if multiword:
        features["snake_case_names"] = sum("_" in name.strip("_") for name in multiword) / len(
            multiword)
    strings = _STRING.findall(code)
    if strings:
        features["double_quotes"] = sum(text.startswith('"') for text in strings) / len(strings)
    docstrings = code.count('"""') + code.count("'''")
    if docstrings:
        features["double_quote_docstrings"] = code.count('"""') / docstrings
    params = [part.strip() for group in _DEF_PARAMS.findall(code) for part in group.split(",")
              if part.strip() and part.strip() not in ("self", "cls", "*", "/")]
    if params:
        features["annotated_params"] = sum(":" in part for part in params) / len(params)
    comprehensions = len(re.findall(r"[\[{(][^\]\n]*\bfor\b[^\]\n]*\bin\b", code))
    loops = len(re.findall(r"^\s*for\b", code, re.MULTILINE))
    if comprehensions + loops:
        features["comprehensions"] = comprehensions / (comprehensions + loops)
    lines = [line for line in code.splitlines() if line.strip()]
    if lines:
        # Mean line length as a share of 100 columns, so it compares like the others.
        features["line_length"] = min(1.0, statistics.mean(len(line) for line in lines) / 100)
    from_imports = len(re.findall(r"^\s*from\s+\S+\s+import\b", code, re.MULTILINE))
    plain_imports = len(re.findall(r"^\s*import\s+\S", code, re.MULTILINE))
    if from_imports + plain_imports:
        features["from_imports"] = from_imports / (from_imports + plain_imports)
    return features


def style_agreement(generated: dict[str, float], corpus: dict[str, float],
                    over: Iterable[str] | None = None) -> float:
    """100 * (1 - mean |difference|) over the features `over` (default: those both have
    evidence for)."""
    shared = [name for name in (generated if over is None else over)
              if name in generated and name in corpus]
    if not shared:
        return 0.0
    return 100 * (1 - statistics.mean(abs(generated[name] - corpus[name]) for name in shared))


# ---------------------------------------------------------------- the whole evaluation


def score_arm(base_gguf: Path, adapter_gguf: Path | None, chosen: list[Example],
              corpus: dict[str, float], tasks: list[dict]) -> tuple[Scores, dict[str, float]]:
    """One arm (the base alone when `adapter_gguf` is None) on the given examples and tasks:
    its scores and the style features of what it generated."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(base_gguf), n_ctx=2048, n_batch=512, logits_all=True,
                          verbose=False,
                          lora_path=None if adapter_gguf is None else str(adapter_gguf))
    try:
        perplexity = middle_perplexity(llm, chosen)
    finally:
        llm.close()
    engine = LlamaCppEngine(base_gguf, context_tokens=2048)
    engine.set_adapter(adapter_gguf)
    pairs = generate_middles(engine, chosen)
    features = style_features("\n".join(generated for generated, _ in pairs))
    return Scores(perplexity=perplexity, fim_exact_match=exact_match(pairs),
                  style_agreement=style_agreement(features, corpus),
                  guard_exact_match=guard_exact_match(engine, tasks)), features


def evaluate_adapter(base_gguf: Path, adapter_gguf: Path, held_out: list[Example],
                     corpus_text: str, *, examples: int = EVAL_EXAMPLES,
                     guard_sample: int = GUARD_SAMPLE,
                     base_arm: tuple[Scores, dict[str, float]] | None = None) -> Report:
    """Base and base+adapter on the same held-out examples and guard tasks. `base_arm` is the
    base's result from score_arm on the same examples, when the caller already has it."""
    chosen = held_out[:examples]
    corpus = style_features(corpus_text)
    tasks = guard_tasks(guard_sample)
    base_scores, base_features = base_arm or score_arm(base_gguf, None, chosen, corpus, tasks)
    adapted_scores, adapted_features = score_arm(base_gguf, adapter_gguf, chosen, corpus, tasks)
    # Both arms are scored on the same features: those each arm's code showed. A feature only
    # one arm's code has evidence for would otherwise move that arm's score alone.
    shared = sorted(corpus.keys() & base_features.keys() & adapted_features.keys())
    base_scores = replace(base_scores,
                          style_agreement=style_agreement(base_features, corpus, shared))
    adapted_scores = replace(adapted_scores,
                             style_agreement=style_agreement(adapted_features, corpus, shared))
    return Report(base_scores, adapted_scores, corpus, base_features, adapted_features)


def write_report(report: Report, adapter_gguf: Path, facts: dict[str, str]) -> Path:
    """ADAPTER.report.md and ADAPTER.report.png beside the adapter."""
    markdown = adapter_gguf.with_suffix(".report.md")
    chart = adapter_gguf.with_suffix(".report.png")
    _chart(report, chart)
    base, adapted = report.base, report.adapted
    guard = report.guard_passed
    verdict = ("not measured (guard data missing)" if guard is None else
               "passed" if guard else
               f"FAILED: lost more than {GUARD_MAX_LOSS_POINTS:g} points; the server will not "
               f"enable this adapter")

    def row(name: str, before: float | None, after: float | None, unit: str = "") -> str:
        if before is None or after is None:
            return f"| {name} | n/a | n/a | |"
        return f"| {name} | {before:.2f}{unit} | {after:.2f}{unit} | {after - before:+.2f} |"

    lines = [
        f"# Personal adapter report: {adapter_gguf.name}", "",
        *[f"- {key}: {value}" for key, value in facts.items()], "",
        "| measure | base | with adapter | change |", "|---|---|---|---|",
        row("held-out perplexity (middles)", base.perplexity, adapted.perplexity),
        row("held-out FIM exact match", base.fim_exact_match, adapted.fim_exact_match, " %"),
        row("style agreement with your code", base.style_agreement, adapted.style_agreement),
        row("guard set exact match (HumanEval)", base.guard_exact_match,
            adapted.guard_exact_match, " %"),
        "", f"Guard set: {verdict}.", "", "## Style features (share, 0-1)", "",
        "| feature | your code | base | with adapter |", "|---|---|---|---|",
        *[f"| {name} | {value:.2f} | {report.style_features_base.get(name, float('nan')):.2f} "
          f"| {report.style_features_adapted.get(name, float('nan')):.2f} |"
          for name, value in sorted(report.style_features_corpus.items())],
        "", f"![chart]({chart.name})", "",
    ]
    markdown.write_text("\n".join(lines))
    return markdown


def _chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = ["perplexity", "FIM exact %", "style agreement", "guard exact %"]
    base = [report.base.perplexity, report.base.fim_exact_match, report.base.style_agreement,
            report.base.guard_exact_match or 0.0]
    adapted = [report.adapted.perplexity, report.adapted.fim_exact_match,
               report.adapted.style_agreement, report.adapted.guard_exact_match or 0.0]
    figure, axes = pyplot.subplots(1, len(names), figsize=(12, 3))
    for axis, name, before, after in zip(axes, names, base, adapted, strict=True):
        axis.bar(["base", "adapter"], [before, after], color=["#999999", "#3b7dd8"])
        axis.set_title(name)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
