"""Chunk reuse (model/kv_cache.py) against exact evaluation on HumanEval single-line infilling:
how often the completion after shifting cached chunks into place equals the one from a cold
cache, and what it saves, after the cache was primed with a perturbed variant of the prompt.

The prompt is bench/fim.py's (cursor where the missing line was, column 0) with one cross-file
context chunk (another task's code) ahead of the file. Perturbations, from the primed variant
to the prompt asked for:
  enter    a line inserted just above the cursor line (the variant lacks it): the rest of the
           prompt shifts right, which llama-server's --cache-reuse cannot do
  window   the first lines of the prefix removed (the variant has other code above it): the
           file shifts left, as when the 64-line window grid moves
  context  another cross-file chunk ahead of the file: the file part shifts
Each perturbation runs twice from the same priming: with chunk reuse, and without (the common
head only: a control for how exact prefix reuse itself is). Saved states are off so that no
restore serves the prompt instead. The planner's reach at other minimum chunk sizes is counted
from the same token lists, without the model.

Run: .venv/bin/python bench/reuse.py [--models NAME ...] [--sample N] [--threads N]
     [--window-lines N] [--resume FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.completion import DEFAULT_MAX_TOKENS, CompletionSettings, plan_completion
from bench.fim import RESULTS, SAMPLE_SEED, SINGLE, load
from model import registry
from model.engine import GenerationParams, GenerationResult, LlamaCppEngine
from model.kv_cache import REUSE_MIN_TOKENS, common_prefix_length, plan_chunks
from model.prompts import ContextChunk, fim_prompt_tokens

PERTURBATIONS = ("enter", "window", "context")
PLANNER_MIN_TOKENS = (16, 32, 64, 128, 256)
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
# Lines of other code above the file in the "window" variant: a few lines' worth of tokens.
WINDOW_LINES = 8
PARAMS = GenerationParams(max_tokens=DEFAULT_MAX_TOKENS)


@dataclass(frozen=True)
class Case:
    """A prompt, the variant primed before it, and their stop rules."""

    task_id: str
    perturbation: str
    prompt: list[int]
    variant: list[int]
    prompt_plan: object
    variant_plan: object


@dataclass(frozen=True)
class Outcome:
    model: str
    task_id: str
    perturbation: str
    prompt_tokens: int
    exact_text: str
    reuse_text: str
    control_text: str
    equal: bool
    control_equal: bool
    reuse_evaluated: int
    reuse_shifted: int
    reuse_prompt_ms: float
    control_evaluated: int
    control_prompt_ms: float
    planner_reused: dict[str, int]
    exact_evaluated: int
    exact_prompt_ms: float
    exact_tokens_per_second: float | None


def _plan(text: str, line: int, context: tuple[ContextChunk, ...]):
    return plan_completion(text, line, 0, path="solution.py", repo_name="humaneval",
                           settings=CompletionSettings(max_tokens=DEFAULT_MAX_TOKENS),
                           context=context)


def _chunk_of(task: dict) -> ContextChunk:
    return ContextChunk(path=f"{task['entry_point']}.py",
                        text=task["prompt"] + task["canonical_solution"])


def cases_for(task: dict, others: list[dict], engine: LlamaCppEngine,
              window_lines: int) -> list[Case]:
    """The three perturbed pairs for one task; `others` give context chunks and the code
    above the window."""
    prefix, suffix = task["prompt"], task["suffix"]
    document, line = prefix + suffix, prefix.count("\n")
    context = (_chunk_of(others[0]),)
    exact = _plan(document, line, context)
    lines = document.split("\n")
    # The variant without the line above the cursor: the prompt is it plus that line.
    before_enter = "\n".join(lines[:line - 1] + lines[line:])
    above = "\n".join(others[1]["prompt"].split("\n")[:window_lines]) + "\n"
    variants = {
        "enter": _plan(before_enter, line - 1, context),
        "window": _plan(above + document, line + above.count("\n"), context),
        "context": _plan(document, line, (_chunk_of(others[2]),)),
    }
    prompt = fim_prompt_tokens(exact.request, engine)
    return [Case(task["task_id"], name, prompt, fim_prompt_tokens(plan.request, engine),
                 exact, plan) for name, plan in variants.items()]


def _generate(engine: LlamaCppEngine, prompt: list[int], plan) -> GenerationResult:
    return engine.generate(prompt, PARAMS, stop_rule=plan.stop_rule)


def _after_priming(engine: LlamaCppEngine, case: Case, reuse: bool) -> GenerationResult:
    engine.reuse_chunks = False
    engine.clear_cache()
    _generate(engine, case.variant, case.variant_plan)
    engine.reuse_chunks = reuse
    try:
        return _generate(engine, case.prompt, case.prompt_plan)
    finally:
        engine.reuse_chunks = False


def planner_reach(case: Case) -> dict[str, int]:
    """Prompt tokens the cache would serve (common head plus chunks) at each minimum size."""
    head = common_prefix_length(case.variant, case.prompt[:-1])
    goal = case.prompt[:-1]
    return {str(size): head + sum(chunk.length for chunk in
                                  plan_chunks(case.variant, goal, head, size))
            for size in PLANNER_MIN_TOKENS}


def run_case(engine: LlamaCppEngine, model: str, case: Case, exact: GenerationResult
             ) -> Outcome:
    reused = _after_priming(engine, case, reuse=True)
    control = _after_priming(engine, case, reuse=False)
    return Outcome(
        model=model, task_id=case.task_id, perturbation=case.perturbation,
        prompt_tokens=len(case.prompt), exact_text=exact.text, reuse_text=reused.text,
        control_text=control.text, equal=reused.text == exact.text,
        control_equal=control.text == exact.text,
        reuse_evaluated=reused.evaluated_prompt_tokens,
        reuse_shifted=reused.shifted_prompt_tokens,
        reuse_prompt_ms=round(reused.prompt_ms, 1),
        control_evaluated=control.evaluated_prompt_tokens,
        control_prompt_ms=round(control.prompt_ms, 1),
        planner_reused=planner_reach(case), exact_evaluated=exact.evaluated_prompt_tokens,
        exact_prompt_ms=round(exact.prompt_ms, 1),
        exact_tokens_per_second=exact.tokens_per_second)


def bench_model(model: str, tasks: list[dict], all_tasks: list[dict], threads: int | None,
                window_lines: int, done: set[tuple[str, str]], out) -> list[Outcome]:
    engine = LlamaCppEngine(registry.resolve_model(model), threads=threads,
                            state_cache_bytes=0, reuse_chunks=False)
    pick = random.Random(SAMPLE_SEED + 1)
    outcomes: list[Outcome] = []
    for number, task in enumerate(tasks, start=1):
        # Drawn for every task, resumed or not, so that each task keeps its chunks.
        others = pick.sample([t for t in all_tasks if t["task_id"] != task["task_id"]], 3)
        cases = [case for case in cases_for(task, others, engine, window_lines)
                 if (case.task_id, case.perturbation) not in done]
        if not cases:
            continue
        engine.clear_cache()
        exact = _generate(engine, cases[0].prompt, cases[0].prompt_plan)
        for case in cases:
            outcome = run_case(engine, model, case, exact)
            outcomes.append(outcome)
            out.write(json.dumps(asdict(outcome)) + "\n")
            out.flush()
        print(f"  {model}: {number}/{len(tasks)}", file=sys.stderr)
    return outcomes


def speeds(outcomes: list[Outcome]) -> dict:
    """This run's raw llama.cpp speeds, from the cold evaluations of the exact prompts."""
    prompt = [o.exact_evaluated / o.exact_prompt_ms * 1e3 for o in outcomes
              if o.exact_prompt_ms > 0]
    generation = [o.exact_tokens_per_second for o in outcomes if o.exact_tokens_per_second]
    return {"prompt_tokens_per_s": round(statistics.median(prompt), 1) if prompt else None,
            "generated_tokens_per_s": round(statistics.median(generation), 1)
            if generation else None}


def resumed(path: Path | None, model: str) -> list[Outcome]:
    if path is None or not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Outcome(**row) for row in rows if row.get("model") == model and "task_id" in row]


def summary_rows(outcomes: list[Outcome]) -> list[dict]:
    rows = []
    for name in (*PERTURBATIONS, "overall"):
        chosen = [o for o in outcomes if name in ("overall", o.perturbation)]
        if not chosen:
            continue

        def mean(values) -> float:
            return round(statistics.mean(values), 1)

        rows.append({
            "perturbation": name, "n": len(chosen),
            "equal_pct": round(100 * sum(o.equal for o in chosen) / len(chosen), 1),
            "control_equal_pct": round(100 * sum(o.control_equal for o in chosen)
                                       / len(chosen), 1),
            "prompt_tokens": mean(o.prompt_tokens for o in chosen),
            "evaluated_reuse": mean(o.reuse_evaluated for o in chosen),
            "evaluated_control": mean(o.control_evaluated for o in chosen),
            "prompt_ms_reuse": mean(o.reuse_prompt_ms for o in chosen),
            "prompt_ms_control": mean(o.control_prompt_ms for o in chosen),
            "planner": {size: mean(o.prompt_tokens - o.planner_reused[size] for o in chosen)
                        for size in map(str, PLANNER_MIN_TOKENS)},
        })
    return rows


def print_table(model: str, rows: list[dict], speed: dict) -> None:
    print(f"\n{model}: raw prompt {speed['prompt_tokens_per_s']} tok/s, generation "
          f"{speed['generated_tokens_per_s']} tok/s (this run); chunks of >= "
          f"{REUSE_MIN_TOKENS} tokens")
    print(f"{'perturbation':<13} {'n':>4} {'equal%':>7} {'control%':>9} {'prompt':>7} "
          f"{'eval reuse':>11} {'eval ctrl':>10} {'ms reuse':>9} {'ms ctrl':>8}")
    for row in rows:
        print(f"{row['perturbation']:<13} {row['n']:>4} {row['equal_pct']:>7} "
              f"{row['control_equal_pct']:>9} {row['prompt_tokens']:>7} "
              f"{row['evaluated_reuse']:>11} {row['evaluated_control']:>10} "
              f"{row['prompt_ms_reuse']:>9} {row['prompt_ms_control']:>8}")
    print("planner alone, mean tokens left to evaluate by minimum chunk size: "
          + "; ".join(f"{row['perturbation']} " + " ".join(
              f"{size}:{left}" for size, left in row["planner"].items()) for row in rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=[DEFAULT_MODEL],
                        help=f"registry names (default: {DEFAULT_MODEL})")
    parser.add_argument("--sample", type=int, default=40, help="single-line tasks to draw")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: physical "
                        "cores; 1 is much faster when other work shares the CPU)")
    parser.add_argument("--window-lines", type=int, default=WINDOW_LINES,
                        help="lines above the file in the window variant")
    parser.add_argument("--resume", type=Path, help="a results file of an interrupted run: "
                        "its outcomes are kept and the run goes on in it")
    args = parser.parse_args()
    all_tasks = load(SINGLE, None)
    tasks = load(SINGLE, args.sample)
    RESULTS.mkdir(exist_ok=True)
    path = args.resume or RESULTS / f"reuse-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    with path.open("a") as out:
        for model in args.models:
            earlier = resumed(args.resume, model)
            done = {(o.task_id, o.perturbation) for o in earlier}
            outcomes = earlier + bench_model(model, tasks, all_tasks, args.threads,
                                             args.window_lines, done, out)
            rows, speed = summary_rows(outcomes), speeds(outcomes)
            out.write(json.dumps({"model": model, "summary": rows, **speed}) + "\n")
            print_table(model, rows, speed)
    print(f"details: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
