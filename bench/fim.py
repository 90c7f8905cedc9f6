"""Completion quality on HumanEval infilling: pass@1 and exact match, with and without
SmallCoder's post-processing (scope cut, suffix trim, parse check), from the same generations.

The cursor sits where the missing lines were, at column 0 as after pressing Enter in a bare
editor; the model's text is inserted there and the task's tests run in a subprocess with a
timeout and a memory limit.

With `--agreement`, each single-line task's prompt is instead completed greedily by the
embedded engine and by a llama-server (built by scripts/setup.sh, started on loopback with the
same model) through the remote engine's native dialect, and the share of identical completions
is reported with the first differing token of each that differs (issue #33).

Run: .venv/bin/python bench/fim.py [--models NAME ...] [--sample N] [--multi-line-sample N]
     [--threads N] [--agreement]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from assist.completion import CompletionSettings, plan_completion
from model import registry
from model.engine import GenerationParams, LlamaCppEngine
from model.prompts import fim_prompt_tokens

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SINGLE = DATA / "HumanEval-SingleLineInfilling.jsonl.gz"
MULTI = DATA / "HumanEval-MultiLineInfilling.jsonl.gz"
MAX_TOKENS = 128
TEST_TIMEOUT_S = 10
TEST_MEMORY_BYTES = 1024**3
SAMPLE_SEED = 20261124
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Outcome:
    task_id: str
    passed_post: bool
    passed_raw: bool
    exact_post: bool
    exact_raw: bool
    latency_ms: float
    raw: str
    post: str


def load(path: Path, sample: int | None) -> list[dict]:
    with gzip.open(path, "rt") as lines:
        tasks = [json.loads(line) for line in lines]
    if sample is not None and sample < len(tasks):
        tasks = random.Random(SAMPLE_SEED).sample(tasks, sample)
    return tasks


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (TEST_MEMORY_BYTES, TEST_MEMORY_BYTES))


def passes(program: str, task: dict) -> bool:
    """Run the task's tests against `program` in a throwaway folder, isolated, time-limited."""
    source = f"{program}\n\n{task['test']}\n\ncheck({task['entry_point']})\n"
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "candidate.py"
        script.write_text(source)
        try:
            result = subprocess.run([sys.executable, "-I", str(script)], cwd=folder,
                                    capture_output=True, timeout=TEST_TIMEOUT_S,
                                    preexec_fn=_limit_memory, check=False)
        except subprocess.TimeoutExpired:
            return False
    return result.returncode == 0


def same_code(inserted: str, expected: str) -> bool:
    return inserted.strip() == expected.strip()


def post_processed(plan, raw: str, finish_reason: str) -> str:
    """What the editor would insert: the stop rule's cut, as while streaming, then the plan's
    finishing (scope cut, suffix trim, parse check)."""
    ended = finish_reason == "eos"
    cut = plan.stop_rule(raw + "\n" if ended else raw)
    return plan.finish(raw[:cut] if cut is not None else raw, complete=ended or cut is not None)


def task_plan(task: dict):
    """The completion plan at the task's gap: the cursor at column 0 of the missing lines."""
    return plan_completion(task["prompt"] + task["suffix"], task["prompt"].count("\n"), 0,
                           path="solution.py", repo_name="humaneval",
                           settings=CompletionSettings(max_tokens=MAX_TOKENS))


def evaluate(engine: LlamaCppEngine, task: dict) -> Outcome:
    prefix, suffix, expected = task["prompt"], task["suffix"], task["canonical_solution"]
    plan = task_plan(task)
    started = time.perf_counter()
    result = engine.generate(fim_prompt_tokens(plan.request, engine),
                             GenerationParams(max_tokens=MAX_TOKENS))
    latency = (time.perf_counter() - started) * 1e3
    raw = result.text
    post = post_processed(plan, raw, result.finish_reason)
    return Outcome(
        task_id=task["task_id"],
        passed_post=passes(prefix + post + suffix, task),
        passed_raw=passes(prefix + raw + suffix, task),
        exact_post=same_code(post, expected),
        exact_raw=same_code(raw, expected),
        latency_ms=latency,
        raw=raw,
        post=post,
    )


def run_suite(engine: LlamaCppEngine, name: str, tasks: list[dict]) -> dict:
    outcomes = []
    for number, task in enumerate(tasks, start=1):
        engine.clear_cache()
        outcomes.append(evaluate(engine, task))
        if number % 25 == 0:
            print(f"  {name}: {number}/{len(tasks)}", file=sys.stderr)
    count = len(outcomes)

    def share(flag: str) -> float:
        return round(100 * sum(getattr(o, flag) for o in outcomes) / count, 1)

    return {"suite": name, "tasks": count, "outcomes": [asdict(o) for o in outcomes],
            "pass@1_post": share("passed_post"), "pass@1_raw": share("passed_raw"),
            "exact_post": share("exact_post"), "exact_raw": share("exact_raw"),
            "mean_latency_ms": round(sum(o.latency_ms for o in outcomes) / count, 1)}


def agreement(name: str, tasks: list[dict], threads: int | None) -> dict:
    """Greedy completions of the same prompts by the embedded engine and by llama-server."""
    from model.llama_server import LlamaServerProcess, ServerOptions
    from model.remote import RemoteConfig, RemoteEngine

    path = registry.resolve_model(name)
    local = LlamaCppEngine(path, threads=threads)
    options = ServerOptions(model_path=path, threads=threads or 2, context_tokens=4096)
    params = GenerationParams(max_tokens=MAX_TOKENS)
    rows = []
    with tempfile.TemporaryDirectory() as logs, \
            LlamaServerProcess(options, Path(logs) / "server.log") as server:
        remote = RemoteEngine(path, RemoteConfig("llama-server", server.url))
        for task in tasks:
            plan = task_plan(task)
            prompt = fim_prompt_tokens(plan.request, local)
            local.clear_cache()
            ours, theirs = local.generate(prompt, params), remote.generate(prompt, params)
            mine, other = local.tokenize(ours.text), local.tokenize(theirs.text)
            first = next((i for i, (a, b) in enumerate(zip(mine, other, strict=False))
                          if a != b), min(len(mine), len(other)))
            inserted = [post_processed(plan, result.text, result.finish_reason)
                        for result in (ours, theirs)]
            rows.append({"task_id": task["task_id"], "same": ours.text == theirs.text,
                         "same_inserted": inserted[0] == inserted[1],
                         "first_difference_token": None if ours.text == theirs.text else first,
                         "local": ours.text, "llama_server": theirs.text,
                         "finish": [ours.finish_reason, theirs.finish_reason]})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # a cut run keeps them
    same = sum(row["same"] for row in rows)
    inserted = sum(row["same_inserted"] for row in rows)
    return {"model": name, "tasks": len(rows), "identical": same,
            "agreement": round(100 * same / max(1, len(rows)), 1),
            "inserted_agreement": round(100 * inserted / max(1, len(rows)), 1),
            "outcomes": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: all present)")
    parser.add_argument("--sample", type=int, default=None,
                        help="single-line tasks to draw (default: all 1,033)")
    parser.add_argument("--multi-line-sample", type=int, default=100,
                        help="multi-line tasks to draw (0: skip)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: physical "
                        "cores; 1 is much faster when other work shares the CPU)")
    parser.add_argument("--agreement", action="store_true",
                        help="compare the embedded engine with llama-server (single-line)")
    args = parser.parse_args()
    names = args.models or [row.spec.name for row in registry.list_models() if row.present]
    if args.agreement:
        return report_agreement(names, load(SINGLE, args.sample), args.threads)
    suites = [("single-line", load(SINGLE, args.sample))]
    if args.multi_line_sample:
        suites.append(("multi-line", load(MULTI, args.multi_line_sample)))
    rows = []
    for name in names:
        engine = LlamaCppEngine(registry.resolve_model(name), threads=args.threads)
        for suite, tasks in suites:
            rows.append({"model": name, **run_suite(engine, suite, tasks)})
    print(f"{'model':<38} {'suite':<12} {'n':>5} {'pass@1 post':>12} {'pass@1 raw':>11} "
          f"{'EM post':>8} {'EM raw':>7} {'ms':>7}")
    for row in rows:
        print(f"{row['model']:<38} {row['suite']:<12} {row['tasks']:>5} "
              f"{row['pass@1_post']:>12} {row['pass@1_raw']:>11} {row['exact_post']:>8} "
              f"{row['exact_raw']:>7} {row['mean_latency_ms']:>7}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"fim-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"details: {out}")
    return 0


def report_agreement(names: list[str], tasks: list[dict], threads: int | None) -> int:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"fim-agreement-{time.strftime('%Y%m%d-%H%M%S')}.json"
    rows = []
    for name in names:
        rows.append(agreement(name, tasks, threads))
        out.write_text(json.dumps(rows, indent=2))
        row = rows[-1]
        print(f"{name}: {row['identical']}/{row['tasks']} raw generations identical "
              f"({row['agreement']}%), {row['inserted_agreement']}% of what the editor "
              f"would insert")
        for outcome in row["outcomes"]:
            if not outcome["same"]:
                print(f"  {outcome['task_id']}: differ from token "
                      f"{outcome['first_difference_token']}: local {outcome['local'][:60]!r} "
                      f"vs llama-server {outcome['llama_server'][:60]!r}")
    print(f"details: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
