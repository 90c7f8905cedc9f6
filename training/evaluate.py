"""Does the adapter help? Base against base+adapter, both in llama.cpp as the server runs them.

Held-out perplexity on the middles of held-out files, FIM exact match there, style agreement of
the generated code with the user's corpus, and a guard set (HumanEval single-line infilling)
that catches forgetting. training/report.py writes it as markdown with a PNG chart.

Style is measured where the model has only its own habits to go on: each function of the files
not trained on is begun (`def name(`) in an otherwise empty file, and what the model writes
from there is compared with the corpus. Inside a file the base copies the quotes and hints it
sees, so the completions' style (also reported, "in context") says little about the adapter.
The same functions are measured relative to the author (training/style.py): the share of the
base→author gap closed, an author classifier's verdict, and the cross-author control.
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

from analyzers.functions import functions
from model.engine import GenerationParams, LlamaCppEngine
from model.prompts import END_OF_TEXT, fim_prompt_tokens, fim_request_at
from training.examples import IGNORE_INDEX, Example
from training.machine import machine_threads
from training.mine import SourceFile
from training.style import (
    AuthorCode,
    CrossAuthor,
    Discrimination,
    StyleGap,
    python_functions,
    relative_style,
)

GUARD_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / (
    "HumanEval-SingleLineInfilling.jsonl.gz")
GUARD_SAMPLE = 40
GUARD_SEED = 20261124
# An adapter that loses more than this on the guard set is not enabled without asking.
GUARD_MAX_LOSS_POINTS = 2.0
EVAL_EXAMPLES = 24
MAX_NEW_TOKENS = 96
# Functions begun in an empty file for the style measure, and how much the model may write.
STYLE_FUNCTIONS = 32
STYLE_NEW_TOKENS = 160
STYLE_SEED = 20261202
# A habit seen fewer times than this in an arm's code is too thin to compare.
STYLE_MIN_EVIDENCE = 3


@dataclass(frozen=True)
class Scores:
    perplexity: float
    fim_exact_match: float  # % of held-out middles reproduced exactly
    style_agreement: float  # 0-100, see style_agreement(): functions begun in an empty file
    guard_exact_match: float | None  # % of guard tasks, None when the guard data is missing
    style_in_context: float | None = None  # 0-100, the held-out completions' style


@dataclass(frozen=True)
class StyleSample:
    """The style features of an arm's code: functions it wrote from `def name(` in an empty
    file, and its completions inside the held-out files."""

    new_file: dict[str, float]
    in_context: dict[str, float]
    functions: tuple[str, ...] = ()  # the new-file functions themselves


@dataclass
class Report:
    base: Scores
    adapted: Scores
    style_features_corpus: dict[str, float] = field(default_factory=dict)
    style_features_base: dict[str, float] = field(default_factory=dict)
    style_features_adapted: dict[str, float] = field(default_factory=dict)
    # Relative to the author (training/style.py): the gap closed, the classifier's verdicts,
    # and for each other author given, the control that the adapter does not move toward them.
    style_gap: StyleGap | None = None
    discrimination: Discrimination | None = None
    cross_author: tuple[CrossAuthor, ...] = ()

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
        if self.style_gap is not None and self.style_gap.mean_closed is not None:
            values["style_gap_closed"] = self.style_gap.mean_closed
        if self.discrimination is not None:
            for arm in ("base", "adapter"):
                share = getattr(self.discrimination, f"{arm}_share")
                if share is not None:
                    values[f"{arm}.classified_as_author"] = share
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
_TRIPLE_QUOTED = re.compile(r"(\"\"\"|\'\'\')(.*?)\1", re.DOTALL)
# How a docstring lays out its parameters and results; the first that matches decides.
DOCSTRING_FORMATS = (
    ("sphinx", re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?)\b", re.MULTILINE)),
    ("numpy", re.compile(r"^\s*[A-Z][a-z]+(?: [A-Z][a-z]+)?\s*\n\s*-{3,}\s*$", re.MULTILINE)),
    ("google", re.compile(r"^\s*(?:Args|Arguments|Parameters|Returns|Raises|Yields|Examples?)"
                          r":\s*$", re.MULTILINE)),
)
# A feature named "group:value" is one value of a categorical habit (the shares of a group sum
# to 1), compared as one feature by total variation distance.
CATEGORY = ":"


def style_features(code: str, min_evidence: int = 1) -> dict[str, float]:
    """Objective habits as shares in [0, 1]; a feature seen fewer than `min_evidence` times in
    `code` is absent."""
    features: dict[str, float] = {}

    def share(name: str, hits: int, seen: int) -> None:
        if seen >= max(1, min_evidence):
            features[name] = hits / seen

    names = [name for name in _IDENTIFIER_DEF.findall(code) if name not in ("def", "class")]
    multiword = [name for name in names if "_" in name.strip("_") or re.search(r"[a-z][A-Z]", name)]
    share("snake_case_names", sum("_" in name.strip("_") for name in multiword), len(multiword))
    strings = _STRING.findall(_TRIPLE_QUOTED.sub("", code))
    share("double_quotes", sum(text.startswith('"') for text in strings), len(strings))
    docstrings = _TRIPLE_QUOTED.findall(code)
    share("double_quote_docstrings", sum(quote == '"""' for quote, _ in docstrings),
          len(docstrings))
    formats = [next((name for name, pattern in DOCSTRING_FORMATS if pattern.search(text)),
                    "plain") for _, text in docstrings]
    for name in ("plain", *(name for name, _ in DOCSTRING_FORMATS)):
        share(f"docstring_format{CATEGORY}{name}", formats.count(name), len(formats))
    params = [part.strip() for group in _DEF_PARAMS.findall(code) for part in group.split(",")
              if part.strip() and part.strip() not in ("self", "cls", "*", "/")]
    share("annotated_params", sum(":" in part for part in params), len(params))
    comprehensions = len(re.findall(r"[\[{(][^\]\n]*\bfor\b[^\]\n]*\bin\b", code))
    loops = len(re.findall(r"^\s*for\b", code, re.MULTILINE))
    share("comprehensions", comprehensions, comprehensions + loops)
    lines = [line for line in code.splitlines() if line.strip()]
    if len(lines) >= max(1, min_evidence):
        # Mean line length as a share of 100 columns, so it compares like the others.
        features["line_length"] = min(1.0, statistics.mean(len(line) for line in lines) / 100)
    from_imports = len(re.findall(r"^\s*from\s+\S+\s+import\b", code, re.MULTILINE))
    plain_imports = len(re.findall(r"^\s*import\s+\S", code, re.MULTILINE))
    share("from_imports", from_imports, from_imports + plain_imports)
    return features


_FUNCTION_HEAD = re.compile(r"^(?:async\s+)?def\s+\w+\s*\(", re.MULTILINE)


@dataclass(frozen=True)
class StylePrompt:
    """A function of a file the adapter did not train on, begun as the author began it."""

    repo: str
    path: str
    head: str  # "def name(" (or "async def name(")


def style_prompts(sources: Iterable[SourceFile], limit: int = STYLE_FUNCTIONS
                  ) -> list[StylePrompt]:
    """Up to `limit` Python functions of `sources`, the same ones for the same files."""
    prompts = []
    for source in sources:
        if source.language != "python":
            continue
        for span in functions(source.text, "python"):
            head = _FUNCTION_HEAD.search(span.text.lstrip())
            if head is not None:
                prompts.append(StylePrompt(source.repo, source.path, head.group(0)))
    return random.Random(STYLE_SEED).sample(prompts, min(limit, len(prompts)))


def first_function(head: str, generated: str) -> str:
    """`head` and what the model wrote after it, up to where that function ends: once the
    signature is closed, the first line indented less than the body's first line."""
    kept: list[str] = []
    depth, in_signature, body_indent = 0, True, None
    for line in (head + generated).split("\n"):
        code = line.split("#", 1)[0].strip()
        indent = len(line) - len(line.lstrip())
        if in_signature:
            kept.append(line)
            depth += sum(map(code.count, "([{")) - sum(map(code.count, ")]}"))
            if depth <= 0 and code.endswith(":"):
                in_signature = False
            elif depth <= 0 and code:
                break  # a one-line function, or a signature that never closes
            continue
        if line.strip():
            if body_indent is None:
                body_indent = indent
            if indent == 0 or indent < body_indent:
                break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def generate_functions(engine: LlamaCppEngine, prompts: list[StylePrompt]) -> str:
    """The functions the model writes from each prompt's head in an empty file, greedy, as one
    text."""
    return "\n".join(written_functions(engine, prompts))


def written_functions(engine: LlamaCppEngine, prompts: list[StylePrompt]) -> list[str]:
    """The function the model writes from each prompt's head in an empty file, greedy. The
    function's own name is the author's, so it is left out of what is compared."""
    written = []
    for prompt in prompts:
        request = fim_request_at(prompt.head, 0, len(prompt.head), repo_name=prompt.repo,
                                 path=prompt.path)
        result = engine.generate(fim_prompt_tokens(request, engine),
                                 GenerationParams(max_tokens=STYLE_NEW_TOKENS))
        written.append(first_function("def f(", result.text))
    return written


def style_agreement(generated: dict[str, float], corpus: dict[str, float],
                    over: Iterable[str] | None = None) -> float:
    """100 * (1 - mean difference) over the features `over` (default: those both have
    evidence for): |a - b| for a share, the total variation distance for a categorical habit."""
    shared = [name for name in (generated if over is None else over)
              if name in generated and name in corpus]
    if not shared:
        return 0.0
    groups: dict[str, float] = {}
    for name in shared:
        group, categorical, _ = name.partition(CATEGORY)
        difference = abs(generated[name] - corpus[name])
        groups[group] = groups.get(group, 0.0) + (difference / 2 if categorical else difference)
    return 100 * (1 - statistics.mean(groups.values()))


# ---------------------------------------------------------------- the whole evaluation


def score_arm(base_gguf: Path, adapter_gguf: Path | None, chosen: list[Example],
              corpus: dict[str, float], tasks: list[dict],
              prompts: list[StylePrompt] = (), threads: int | None = None
              ) -> tuple[Scores, StyleSample]:
    """One arm (the base alone when `adapter_gguf` is None) on the given examples, style
    prompts and guard tasks: its scores and the style features of what it wrote. `threads`:
    llama.cpp's threads (None: the machine's, training/machine.py)."""
    import llama_cpp

    threads = threads or machine_threads()
    llm = llama_cpp.Llama(model_path=str(base_gguf), n_ctx=2048, n_batch=512, logits_all=True,
                          verbose=False, n_threads=threads, n_threads_batch=threads,
                          lora_path=None if adapter_gguf is None else str(adapter_gguf))
    try:
        perplexity = middle_perplexity(llm, chosen)
    finally:
        llm.close()
    engine = LlamaCppEngine(base_gguf, context_tokens=2048, threads=threads)
    engine.set_adapter(adapter_gguf)
    pairs = generate_middles(engine, chosen)
    written = written_functions(engine, list(prompts))
    sample = StyleSample(
        new_file=style_features("\n".join(written), STYLE_MIN_EVIDENCE),
        in_context=style_features("\n".join(generated for generated, _ in pairs),
                                  STYLE_MIN_EVIDENCE), functions=tuple(written))
    return Scores(perplexity=perplexity, fim_exact_match=exact_match(pairs),
                  style_agreement=style_agreement(sample.new_file, corpus),
                  guard_exact_match=guard_exact_match(engine, tasks),
                  style_in_context=style_agreement(sample.in_context, corpus)), sample


def evaluate_adapter(base_gguf: Path, adapter_gguf: Path, held_out: list[Example],
                     corpus_text: str, *, unseen: Iterable[SourceFile] = (),
                     examples: int = EVAL_EXAMPLES, guard_sample: int = GUARD_SAMPLE,
                     base_arm: tuple[Scores, StyleSample] | None = None,
                     author: AuthorCode | None = None, others: Iterable[AuthorCode] = (),
                     threads: int | None = None, style_functions: int = STYLE_FUNCTIONS
                     ) -> Report:
    """Base and base+adapter on the same held-out examples, style prompts (functions of the
    `unseen` files: not trained on) and guard tasks. `base_arm` is the base's result from
    score_arm on the same examples and prompts, when the caller already has it. With `author`
    (the adapter's) the style is also measured relative to the author, and against each of
    `others` as a control (training/style.py)."""
    chosen = held_out[:examples]
    corpus = style_features(corpus_text)
    tasks = guard_tasks(guard_sample)
    prompts = style_prompts(unseen, style_functions)
    base_scores, base_style = base_arm or score_arm(base_gguf, None, chosen, corpus, tasks,
                                                    prompts, threads)
    adapted_scores, adapted_style = score_arm(base_gguf, adapter_gguf, chosen, corpus, tasks,
                                              prompts, threads)
    # Both arms are scored on the same features: those each arm's code showed. A feature only
    # one arm's code has evidence for would otherwise move that arm's score alone.
    agreements = {}
    for kind in ("new_file", "in_context"):
        shared = sorted(corpus.keys() & getattr(base_style, kind).keys()
                        & getattr(adapted_style, kind).keys())
        agreements[kind] = [style_agreement(getattr(arm, kind), corpus, shared)
                            for arm in (base_style, adapted_style)]
    base_scores = replace(base_scores, style_agreement=agreements["new_file"][0],
                          style_in_context=agreements["in_context"][0])
    adapted_scores = replace(adapted_scores, style_agreement=agreements["new_file"][1],
                             style_in_context=agreements["in_context"][1])
    relative = None if author is None else relative_style(
        author, list(base_style.functions), list(adapted_style.functions), others,
        reference_functions())
    return Report(base_scores, adapted_scores, corpus, base_style.new_file,
                  adapted_style.new_file,
                  style_gap=None if relative is None else relative.gap,
                  discrimination=None if relative is None else relative.discrimination,
                  cross_author=() if relative is None else relative.cross_author)


def reference_functions() -> list[str]:
    """Functions of authors other than the user's, for the style classifiers: the HumanEval
    solutions of the guard set, each problem once."""
    if not GUARD_FILE.is_file():
        return []
    programs = {}
    with gzip.open(GUARD_FILE, "rt") as lines:
        for line in lines:
            task = json.loads(line)
            problem = task["task_id"].rsplit("/", 1)[0]
            programs.setdefault(problem, task["prompt"] + task["canonical_solution"]
                                + task["suffix"])
    return [function for text in programs.values() for function in python_functions(text)]
