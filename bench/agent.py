"""The agent on QuixBugs and HumanEvalFix (../shared/data): resolve rate, rounds, wall time and
patch size per case, side by side with a single-shot baseline in the same run.

Single shot: one greedy answer to the agent's first prompt with the test results left out
(the failing test ids and test code stay, as the localisation), applied once, then tested.
`fixed_files` is read only by --check-harness, which checks the data, never the model.

Run: .venv/bin/python bench/agent.py [--suite quixbugs humanevalfix] [--sample N] [--seed S]
     [--models NAME ...] [--max-rounds N] [--time-budget S] [--check-harness]
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.context import gather_context
from agent.proposals import ProposalError, apply_proposal, parse_proposal, proposal_prompt
from agent.runner import Limits, TestCommand, run_tests
from agent.sandbox import Sandbox, unified_diff
from agent.solve import SYSTEM_PROMPT, Budget, solve
from model import registry
from model.engine import GenerationParams, LlamaCppEngine

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SUITES = {"quixbugs": DATA / "quixbugs-python.jsonl",
          "humanevalfix": DATA / "humanevalfix-python.jsonl"}
RESULTS = Path(__file__).resolve().parent / "results"
TEST_TIMEOUT_S = 60.0


def load_cases(suite: str, sample: int | None, seed: int, names: list[str] | None = None
               ) -> list[dict]:
    cases = [json.loads(line) for line in SUITES[suite].read_text().splitlines() if line.strip()]
    if names:
        cases = [case for case in cases if case["name"] in names]
    if sample is not None and sample < len(cases):
        cases = sorted(random.Random(seed).sample(cases, sample), key=lambda case: case["name"])
    return cases


def write_workspace(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def test_command(case: dict) -> str:
    """The case's command with `python` as this interpreter (it has pytest and pytest-timeout)."""
    argv = TestCommand.parse(case["test_cmd"]).argv
    if argv[0] == "python":
        argv = (sys.executable, *argv[1:])
    return shlex.join(argv)


def patch_lines(diff: str) -> int:
    return sum(1 for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def check_harness(case: dict) -> dict:
    """The buggy files fail and the fixed ones pass: the only reader of `fixed_files`."""
    outcome = {}
    for label, files in (("buggy", case["files"]), ("fixed", case["fixed_files"])):
        with tempfile.TemporaryDirectory(prefix="smallcoder-bench-") as folder:
            run = run_tests(TestCommand.parse(test_command(case)),
                            write_workspace(Path(folder), files),
                            limits=Limits(timeout_s=TEST_TIMEOUT_S))
        outcome[label] = run.passed
    return {"name": case["name"], "buggy_fails": not outcome["buggy"],
            "fixed_passes": outcome["fixed"]}


def single_shot(engine: LlamaCppEngine, case: dict, budget: Budget) -> dict:
    started = time.monotonic()
    command = TestCommand.parse(test_command(case))
    with tempfile.TemporaryDirectory(prefix="smallcoder-bench-") as folder:
        workspace = write_workspace(Path(folder) / "ws", case["files"])
        with Sandbox(workspace) as sandbox:
            limits = Limits(timeout_s=budget.test_timeout_s)
            before = run_tests(command, sandbox.root, limits=limits,
                               shared_folders=sandbox.shared_folders)
            blind = tuple(replace(failure, message="", parameters=())
                          for failure in before.failures)
            room = engine.context_tokens - budget.reply_max_tokens - 512
            context = gather_context(sandbox.root, blind, engine.count_tokens,
                                     min(budget.context_tokens, room))
            resolved, diff = False, ""
            if context.editable:
                prompt = engine.chat_prompt([{"role": "system", "content": SYSTEM_PROMPT},
                                             {"role": "user", "content": proposal_prompt(context)}])
                reply = engine.generate(prompt, GenerationParams(
                    max_tokens=budget.reply_max_tokens,
                    time_budget_ms=budget.wall_time_s * 1e3)).text
                try:
                    apply_proposal(parse_proposal(reply, context), sandbox.read, sandbox.write)
                    resolved = run_tests(command, sandbox.root, limits=limits,
                                         shared_folders=sandbox.shared_folders).passed
                except ProposalError:
                    resolved = False
                diff = unified_diff(sandbox.changes())
    return {"resolved": resolved, "seconds": round(time.monotonic() - started, 1),
            "patch_lines": patch_lines(diff)}


def agent_run(engine: LlamaCppEngine, case: dict, budget: Budget) -> dict:
    with tempfile.TemporaryDirectory(prefix="smallcoder-bench-") as folder:
        workspace = write_workspace(Path(folder) / "ws", case["files"])
        result = solve(workspace, test_command(case), budget, engine=engine)
    return {"resolved": result.status == "solved", "status": result.status,
            "rounds": result.rounds, "seconds": round(result.duration_s, 1),
            "patch_lines": patch_lines(result.diff), "transcript": str(result.transcript)}


def summarize(rows: list[dict]) -> dict:
    def rate(key: str) -> float | None:
        if any(row[key] is None for row in rows):
            return None  # not measured in this run
        return round(100 * sum(row[key]["resolved"] for row in rows) / max(1, len(rows)), 1)

    solved = [row["agent"] for row in rows if row["agent"]["resolved"]]
    return {
        "cases": len(rows),
        "agent_resolved_pct": rate("agent"),
        "single_shot_resolved_pct": rate("single_shot"),
        "agent_median_seconds": statistics.median(row["agent"]["seconds"] for row in rows),
        "agent_mean_rounds_when_solved": round(statistics.mean(r["rounds"] for r in solved), 2)
        if solved else None,
        "agent_median_patch_lines_when_solved": statistics.median(
            r["patch_lines"] for r in solved) if solved else None,
        "single_shot_median_seconds": statistics.median(
            row["single_shot"]["seconds"] for row in rows)
        if rate("single_shot") is not None else None,
    }


def _verdict(outcome: dict | None) -> str:
    return "skipped" if outcome is None else "ok" if outcome["resolved"] else "no"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", nargs="+", choices=sorted(SUITES), default=sorted(SUITES))
    parser.add_argument("--sample", type=int, help="cases drawn at random from each suite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", metavar="NAME", help="only these cases, by name")
    parser.add_argument("--no-single-shot", action="store_true",
                        help="skip the baseline (to iterate on the agent)")
    parser.add_argument("--models", nargs="+", default=[
        spec.name for spec in registry.REGISTRY.values() if registry.model_path(spec).is_file()])
    parser.add_argument("--max-rounds", type=int, default=Budget().max_rounds)
    parser.add_argument("--time-budget", type=float, default=Budget().wall_time_s)
    parser.add_argument("--candidates", type=int, default=Budget().candidates_per_round)
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: physical cores)")
    parser.add_argument("--check-harness", action="store_true",
                        help="only check that buggy files fail and fixed files pass")
    args = parser.parse_args()

    if args.check_harness:
        rows = [check_harness(case) for suite in args.suite
                for case in load_cases(suite, args.sample, args.seed, args.cases)]
        bad = [row for row in rows if not (row["buggy_fails"] and row["fixed_passes"])]
        print(f"harness: {len(rows) - len(bad)}/{len(rows)} cases fail buggy and pass fixed")
        for row in bad:
            print(f"  {row}")
        return 1 if bad else 0

    budget = Budget(max_rounds=args.max_rounds, wall_time_s=args.time_budget,
                    candidates_per_round=args.candidates, test_timeout_s=TEST_TIMEOUT_S)
    report = {"budget": budget.__dict__, "sample": args.sample, "seed": args.seed, "runs": {}}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"agent-{time.strftime('%Y%m%d-%H%M%S')}.json"
    for model in args.models:
        engine = LlamaCppEngine(registry.resolve_model(model), threads=args.threads)
        for suite in args.suite:
            rows = []
            for case in load_cases(suite, args.sample, args.seed, args.cases):
                row = {"name": case["name"], "agent": agent_run(engine, case, budget),
                       "single_shot": None if args.no_single_shot
                       else single_shot(engine, case, budget)}
                rows.append(row)
                print(f"{model} {case['name']:<32} agent {row['agent']['status']:<11} "
                      f"{row['agent']['rounds']} rounds {row['agent']['seconds']:6.1f} s  "
                      f"single shot {_verdict(row['single_shot'])}",
                      flush=True)
                # Written after every case: a run stopped early keeps what it measured.
                report["runs"][f"{model}/{suite}"] = {"summary": summarize(rows), "cases": rows}
                out.write_text(json.dumps(report, indent=2))
    print(f"\n{'model/suite':<52} {'cases':>5} {'agent %':>8} {'1-shot %':>8} "
          f"{'median s':>8} {'rounds':>6} {'patch':>5}")
    for key, run in report["runs"].items():
        summary = run["summary"]
        print(f"{key:<52} {summary['cases']:>5} {summary['agent_resolved_pct']:>8} "
              f"{summary['single_shot_resolved_pct']!s:>8} {summary['agent_median_seconds']:>8} "
              f"{summary['agent_mean_rounds_when_solved'] or '-':>6} "
              f"{summary['agent_median_patch_lines_when_solved'] or '-':>5}")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
