"""The agent on QuixBugs and HumanEvalFix (../shared/data) and on the development set of small
projects in every language the agent reads test runners for (bench/devset: node --test,
vitest, cargo, Maven, CMake/ctest, go test; issue #37): resolve rate, rounds, wall time and
patch size per case and per language, side by side with a single-shot baseline in the same run.

Single shot: one greedy answer to the agent's first prompt with the test results left out
(the failing test ids and test code stay, as the localisation), applied once, then tested.
`fixed_files` is read only by --check-harness, which checks the data, never the model.

Run: .venv/bin/python bench/agent.py [--suite quixbugs humanevalfix devset] [--sample N]
     [--seed S] [--models NAME ...] [--max-rounds N] [--time-budget S] [--check-harness]
     [--languages javascript rust ...]

A devset language whose tool is missing is skipped, and said so. TypeScript cases get vitest
from SMALLCODER_VITEST_MODULES, else scripts/setup.sh's .tools/test-runners, else one installed
once with npm under $SMALLCODER_HOME/bench.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
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
from agent.transcript import RoundTime
from bench.session import raw_speed
from model import registry
from model.engine import GenerationParams, LlamaCppEngine
from model.home import smallcoder_home

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEVSET = Path(__file__).resolve().parent / "devset"
SUITES = {"quixbugs": DATA / "quixbugs-python.jsonl",
          "humanevalfix": DATA / "humanevalfix-python.jsonl", "devset": DEVSET}
# The program each devset language's test command needs.
TOOLS = {"javascript": "node", "typescript": "npx", "rust": "cargo", "java": "mvn", "c": "cmake",
         "cpp": "cmake", "go": "go"}
VITEST_VERSION = "vitest@3"
RESULTS = Path(__file__).resolve().parent / "results"
TEST_TIMEOUT_S = 60.0


def load_cases(suite: str, sample: int | None, seed: int, names: list[str] | None = None,
               languages: list[str] | None = None) -> list[dict]:
    if suite == "devset":
        cases = [devset_case(folder) for folder in sorted(DEVSET.iterdir())
                 if (folder / "case.json").is_file()]
    else:
        cases = [json.loads(line) for line in SUITES[suite].read_text().splitlines()
                 if line.strip()]
    if languages:
        cases = [case for case in cases if case.get("language", "python") in languages]
    if names:  # in the order given: a short run can cover every language first
        cases = sorted((case for case in cases if case["name"] in names),
                       key=lambda case: names.index(case["name"]))
    if sample is not None and sample < len(cases):
        cases = sorted(random.Random(seed).sample(cases, sample), key=lambda case: case["name"])
    return cases


def devset_case(folder: Path) -> dict:
    """A devset project as a case: its files, and the fix of its planted bug, or the list of
    fixes of its bugs (for --check-harness only)."""
    meta = json.loads((folder / "case.json").read_text())
    project = folder / "project"
    files = {path.relative_to(project).as_posix(): path.read_text()
             for path in sorted(project.rglob("*")) if path.is_file()}
    fixes = meta["fix"] if isinstance(meta["fix"], list) else [meta["fix"]]
    fixed = dict(files)
    for fix in fixes:
        fixed[fix["path"]] = fixed[fix["path"]].replace(fix["old"], fix["new"], 1)
    return {"name": folder.name, "language": meta["language"], "files": files,
            "fixed_files": fixed, "test_cmd": meta["test_cmd"]}


def missing_tool(case: dict) -> str | None:
    """Why a case cannot run here, or None."""
    tool = TOOLS.get(case.get("language", "python"))
    if tool is not None and shutil.which(tool) is None:
        return f"{tool} is not installed"
    return None


def vitest_modules() -> Path:
    """A node_modules folder holding vitest, installed once with npm when there is none."""
    given = os.environ.get("SMALLCODER_VITEST_MODULES")
    if given:
        return Path(given)
    installed = Path(__file__).resolve().parent.parent / ".tools" / "test-runners" / "node_modules"
    if (installed / "vitest").is_dir():  # scripts/setup.sh puts it there
        return installed
    prefix = smallcoder_home() / "bench" / "vitest"
    if not (prefix / "node_modules" / "vitest").is_dir():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        VITEST_VERSION], check=True)
    return prefix / "node_modules"


def write_workspace(root: Path, files: dict[str, str], language: str = "python") -> Path:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if path.endswith(".sh"):
            target.chmod(0o755)
    if language == "typescript":
        # Hard links: the workspace's own node_modules (the sandbox shares it read-only).
        shutil.copytree(vitest_modules(), root / "node_modules", symlinks=True,
                        copy_function=os.link)
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
                            write_workspace(Path(folder), files, case.get("language", "python")),
                            limits=Limits(timeout_s=TEST_TIMEOUT_S))
        outcome[label] = run.passed
        if label == "buggy":
            outcome["buggy_failing"] = sorted(run.failing_ids)
    return {"name": case["name"], "buggy_fails": not outcome["buggy"],
            "fixed_passes": outcome["fixed"], "buggy_failing": outcome["buggy_failing"]}


def single_shot(engine: LlamaCppEngine, case: dict, budget: Budget) -> dict:
    started = time.monotonic()
    command = TestCommand.parse(test_command(case))
    with tempfile.TemporaryDirectory(prefix="smallcoder-bench-") as folder:
        workspace = write_workspace(Path(folder) / "ws", case["files"],
                                    case.get("language", "python"))
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
        workspace = write_workspace(Path(folder) / "ws", case["files"],
                                    case.get("language", "python"))
        result = solve(workspace, test_command(case), budget, engine=engine)
    return {"resolved": result.status == "solved", "status": result.status,
            "rounds": result.rounds, "seconds": round(result.duration_s, 1),
            "patch_lines": patch_lines(result.diff), "transcript": str(result.transcript),
            **time_split(result.times), "rounds_time": [t.to_json() for t in result.times]}


def time_split(times: tuple[RoundTime, ...]) -> dict:
    """Where a solve's time went, summed over its rounds, and llama.cpp's raw rates in it."""
    prompt_ms = sum(t.prompt_ms for t in times)
    generation_ms = sum(t.generation_ms for t in times)
    evaluated = sum(t.evaluated_prompt_tokens for t in times)
    generated = sum(t.generated_tokens for t in times)
    return {"prompt_s": round(prompt_ms / 1e3, 1), "generation_s": round(generation_ms / 1e3, 1),
            "tests_s": round(sum(t.tests_ms for t in times) / 1e3, 1),
            "prompt_tokens": sum(t.prompt_tokens for t in times),
            "evaluated_prompt_tokens": evaluated, "generated_tokens": generated,
            "prompt_tok_s": round(evaluated * 1e3 / prompt_ms, 1) if prompt_ms else None,
            "generation_tok_s": round(generated * 1e3 / generation_ms, 1)
            if generation_ms else None}


def summarize(rows: list[dict]) -> dict:
    def rate(key: str) -> float | None:
        if any(row[key] is None for row in rows):
            return None  # not measured in this run
        return round(100 * sum(row[key]["resolved"] for row in rows) / max(1, len(rows)), 1)

    solved = [row["agent"] for row in rows if row["agent"]["resolved"]]

    def median(key: str) -> float | None:
        values = [row["agent"][key] for row in rows if row["agent"].get(key) is not None]
        return round(statistics.median(values), 1) if values else None

    return {
        "cases": len(rows),
        "agent_resolved_pct": rate("agent"),
        "single_shot_resolved_pct": rate("single_shot"),
        "agent_median_seconds": round(statistics.median(row["agent"]["seconds"]
                                                        for row in rows), 1),
        "agent_mean_rounds_when_solved": round(statistics.mean(r["rounds"] for r in solved), 2)
        if solved else None,
        "agent_median_patch_lines_when_solved": statistics.median(
            r["patch_lines"] for r in solved) if solved else None,
        # Per case: evaluating prompts, generating, running tests; llama.cpp's raw rates.
        **{f"agent_median_{key}": median(key) for key in (
            "prompt_s", "generation_s", "tests_s", "prompt_tok_s", "generation_tok_s")},
        "single_shot_median_seconds": statistics.median(
            row["single_shot"]["seconds"] for row in rows)
        if rate("single_shot") is not None else None,
    }


def runnable_cases(args: argparse.Namespace, suite: str) -> list[dict]:
    """The suite's cases asked for, less those whose tool is missing here (said so)."""
    cases = []
    for case in load_cases(suite, args.sample, args.seed, args.cases, args.languages):
        why = missing_tool(case)
        if why is None:
            cases.append(case)
        else:
            print(f"skipped {case['name']}: {why}", flush=True)
    return cases


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
    parser.add_argument("--languages", nargs="+", metavar="LANGUAGE",
                        help=f"only cases in these languages ({', '.join(['python', *TOOLS])})")
    parser.add_argument("--check-harness", action="store_true",
                        help="only check that buggy files fail and fixed files pass")
    args = parser.parse_args()

    if args.check_harness:
        rows = [check_harness(case) for suite in args.suite for case in runnable_cases(args, suite)]
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
        # Raw llama.cpp speed in the same run, at the same threads: figures from a loaded
        # machine are read against it.
        report.setdefault("machine", {})[model] = {
            "load_average": os.getloadavg(), "logical_cpus": os.cpu_count(),
            **raw_speed(registry.resolve_model(model),
                        (ROOT / "analyzers" / "packer.py").read_text(), args.threads)}
        engine = LlamaCppEngine(registry.resolve_model(model), threads=args.threads)
        for suite in args.suite:
            rows = []
            for case in runnable_cases(args, suite):
                row = {"name": case["name"], "language": case.get("language", "python"),
                       "agent": agent_run(engine, case, budget),
                       "single_shot": None if args.no_single_shot
                       else single_shot(engine, case, budget)}
                rows.append(row)
                agent = row["agent"]
                print(f"{model} {case['name']:<32} agent {agent['status']:<11} "
                      f"{agent['rounds']} rounds {agent['seconds']:6.1f} s (prompt "
                      f"{agent['prompt_s']} s at {agent['prompt_tok_s']} tok/s, generation "
                      f"{agent['generation_s']} s at {agent['generation_tok_s']} tok/s, tests "
                      f"{agent['tests_s']} s)  single shot {_verdict(row['single_shot'])}",
                      flush=True)
                # Written after every case: a run stopped early keeps what it measured.
                report["runs"][f"{model}/{suite}"] = {"summary": summarize(rows), "cases": rows}
                for language in sorted({row["language"] for row in rows}):
                    if suite == "devset":
                        same = [row for row in rows if row["language"] == language]
                        report["runs"][f"{model}/{suite}/{language}"] = {
                            "summary": summarize(same), "cases": [r["name"] for r in same]}
                out.write_text(json.dumps(report, indent=2))
    print(f"\n{'model/suite':<52} {'cases':>5} {'agent %':>8} {'1-shot %':>8} "
          f"{'median s':>8} {'rounds':>6} {'patch':>5}")
    for key, run in report["runs"].items():
        summary = run["summary"]
        print(f"{key:<52} {summary['cases']:>5} {summary['agent_resolved_pct']:>8} "
              f"{summary['single_shot_resolved_pct']!s:>8} {summary['agent_median_seconds']:>8} "
              f"{summary['agent_mean_rounds_when_solved'] or '-':>6} "
              f"{summary['agent_median_patch_lines_when_solved'] or '-':>5}")
    for model, machine in report.get("machine", {}).items():
        print(f"{model}: raw llama.cpp {machine['raw_prompt_tokens_per_s']} prompt tok/s, "
              f"{machine['raw_generation_tokens_per_s']} generation tok/s "
              f"({machine['threads']} threads, load {machine['load_average'][0]:.1f} at the start)")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
