"""Explain and Refactor, measured: does a refactor keep behaviour, with and without the checks;
does an explanation name things that do not exist, with and without grounding; how long until
the first words show and until it is done. Beside this run's raw llama.cpp speed.

Refactor (a): HumanEval's canonical solutions and QuixBugs' correct programs, each asked for
the REFACTORS below through `assist.actions.refactor` with the product's checks (the task's
tests as the workspace's test command, in a scratch copy). "Without checks" is what the
refactor offered before them: the first candidate that parses and keeps its signature, which is
the first one the checks see in the same run (same prompt, greedy). "No tests" is what a
workspace without a test command is offered: the first candidate that passed every other check
(parses, signature, callers, names, linters), judged by its own tests check. Every rewrite
offered with all checks is then tested again by this harness, apart from the checks.
Explain (b): functions sampled from packages pip installed (click, pathspec), indexed as a
workspace; each explained without grounding (the prompt before #36: the function, its imports,
the packer's related code) and with it (the facts, and the answer checked). Both answers are
judged by the same index: a name or file that exists nowhere in the package, a "called by X"
that X does not do, a return type against the annotation.
Rows go to bench/results/actions-<time>.jsonl as they come: a cut run keeps them.

Run: .venv/bin/python bench/actions.py [--model NAME] [--limit N] [--parts refactor explain]
     [--suites humaneval quixbugs] [--packages click pathspec] [--refactors ...] [--threads N]
     .venv/bin/python bench/actions.py --summarize bench/results/actions-<time>.jsonl [--rejudge]
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import json
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.runner import Limits, TestCommand, run_tests
from analyzers.definitions import Definition, definitions
from assist.actions import ActionError, Run, refactor
from assist.checks import CheckResult, RefactorChecks, Rewrite
from assist.explain import explain
from assist.grounding import check_explanation, grounding_in
from assist.workspace import WorkspaceContext, related_for
from bench.session import raw_speed
from model import registry
from model.engine import LlamaCppEngine
from model.tokenizer import VocabularyTokenizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
HUMANEVAL = DATA / "HumanEval-MultiLineInfilling.jsonl.gz"
QUIXBUGS = DATA / "quixbugs-python.jsonl"
RESULTS = ROOT / "bench" / "results"
REFACTORS = ("simplify", "add type hints", "rename variables to be clearer",
             "extract a helper")
PACKAGES = ("click", "pathspec")
SEED = 20261207
CONTEXT_TOKENS = 8192
TEST_TIMEOUT_S = 60.0
# Functions worth explaining: long enough to say something about, short enough to show whole.
EXPLAIN_MIN_LINES, EXPLAIN_MAX_LINES = 4, 40


@dataclass(frozen=True)
class Case:
    """A correct program and its tests, as a workspace: `files`, the file and function to
    refactor, the command that tests it."""

    suite: str
    name: str
    files: dict[str, str]
    path: str
    function: str
    test_command: str


# ------------------------------------------------------------------ the cases


def humaneval_cases() -> list[Case]:
    """One case per HumanEval problem: its prompt, canonical solution and tests as pytest."""
    seen: dict[str, Case] = {}
    with gzip.open(HUMANEVAL, "rt") as lines:
        for line in lines:
            task = json.loads(line)
            problem = "/".join(task["task_id"].split("/")[1:3])
            if problem in seen:
                continue
            solution = task["prompt"] + task["canonical_solution"] + task["suffix"]
            tests = (f"from solution import *  # noqa: F403\n\n{task['test']}\n\n\n"
                     f"def test_check():\n    check({task['entry_point']})\n")
            seen[problem] = Case("humaneval", problem, {"solution.py": solution,
                                                        "test_solution.py": tests},
                                 "solution.py", task["entry_point"],
                                 f"{sys.executable} -m pytest -q -x test_solution.py")
    return list(seen.values())


def quixbugs_cases() -> list[Case]:
    """The correct version of each QuixBugs program (`fixed_files`) and its tests."""
    cases = []
    for line in QUIXBUGS.read_text().splitlines():
        if not line.strip():
            continue
        case = json.loads(line)
        argv = TestCommand.parse(case["test_cmd"]).argv
        if argv[0] == "python":
            argv = (sys.executable, *argv[1:])
        cases.append(Case("quixbugs", case["name"], case["fixed_files"], f"{case['name']}.py",
                          case["name"], shlex.join(argv)))
    return cases


def sampled(items: list, limit: int | None, seed: int) -> list:
    if limit is None or limit >= len(items):
        return items
    return random.Random(seed).sample(items, limit)


# ------------------------------------------------------------------ refactor


@dataclass
class RecordingChecks(RefactorChecks):
    """The product's checks, remembering every candidate they saw and what they said."""

    seen: list[tuple[Rewrite, list[CheckResult]]] = field(default_factory=list)

    def run(self, rewrite: Rewrite, signature_changed: bool) -> list[CheckResult]:
        results = super().run(rewrite, signature_changed)
        self.seen.append((rewrite, results))
        return results


def tests_pass(case: Case, document: str) -> bool:
    """The harness's own verdict: the case's tests on `document`, in a fresh folder."""
    folder = Path(tempfile.mkdtemp(prefix="smallcoder-bench-actions-"))
    try:
        write_files(folder, {**case.files, case.path: document})
        run = run_tests(TestCommand.parse(case.test_command), folder,
                        limits=Limits(timeout_s=TEST_TIMEOUT_S))
        return run.passed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_files(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def refactor_row(engine: LlamaCppEngine, case: Case, instruction: str) -> dict:
    text = case.files[case.path]
    found = [d for d in definitions(text, "python") if d.name == case.function]
    row: dict[str, Any] = {"type": "refactor", "suite": case.suite, "case": case.name,
                           "refactor": instruction}
    if not found:
        return {**row, "error": f"no function {case.function}"}
    line = found[0].start_line  # on its `def`: a line of its body may be a nested function's
    workspace = Path(tempfile.mkdtemp(prefix="smallcoder-bench-actions-ws-"))
    write_files(workspace, case.files)
    checks = RecordingChecks(workspace, case.path, test_command=case.test_command,
                             test_timeout_s=TEST_TIMEOUT_S)
    clock = Clock()
    try:
        result = refactor(Run(engine, on_text=clock.on_text), text, "python", line, 4,
                          instruction, checks=checks)
        offered, refused = result.new_document, None
    except ActionError as error:
        offered, refused = None, str(error)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    first = checks.seen[0][0].new_document if checks.seen else None
    row.update(first_token_ms=clock.first_ms, done_ms=clock.elapsed_ms(),
               candidates_checked=len(checks.seen),
               unchecked_offered=first is not None,
               unchecked_passes=first is not None and tests_pass(case, first),
               checked_offered=offered is not None,
               checked_passes=offered is not None and tests_pass(case, offered),
               refused=refused,
               checks=[[c.to_json() for c in results] for _rewrite, results in checks.seen])
    return row


# ------------------------------------------------------------------ explain


def package_functions(package: Path, limit: int | None, seed: int) -> list[tuple[Path, int]]:
    """(file, 0-based line inside the function) of functions a reader would ask about."""
    found = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        for definition in definitions(text, "python"):
            size = definition.end_line - definition.start_line + 1
            if definition.kind != "class" and EXPLAIN_MIN_LINES <= size <= EXPLAIN_MAX_LINES \
                    and not definition.name.startswith("__"):
                found.append((path, definition.start_line + 1))
    return sampled(found, limit, seed)


def explain_rows(engine: LlamaCppEngine, package: Path, limit: int | None, seed: int,
                 arms: tuple[bool, ...] = (False, True),
                 skipped: frozenset[tuple[str, str]] = frozenset()) -> Iterator[dict]:
    """Each answer's row as soon as it is judged: a cut run keeps what it measured. `skipped`:
    (file, function) pairs already asked about in another run."""
    home = Path(tempfile.mkdtemp(prefix="smallcoder-bench-actions-home-"))
    context = WorkspaceContext(home)
    try:
        context.open_folder(package)
        for path, line in package_functions(package, limit, seed):
            text = path.read_text()
            subject = [d for d in definitions(text, "python")
                       if d.kind != "class" and d.start_line <= line <= d.end_line][-1]
            if (path.relative_to(package.parent).as_posix(), subject.qualified_name) in skipped:
                continue
            related = related_for(context, str(path), text, line, engine)
            facts = grounding_in(context, str(path), text, "python", related)
            for grounded in arms:
                row = explain_row(engine, package, path, text, subject, related, facts, grounded)
                print(f"  explain {row['function']} grounded={grounded}: {row['problems']}",
                      file=sys.stderr)
                yield row
    finally:
        shutil.rmtree(home, ignore_errors=True)


def explain_row(engine: LlamaCppEngine, package: Path, path: Path, text: str,
                subject: Definition, related: str, facts: Callable, grounded: bool) -> dict:
    clock = Clock()
    relative = path.relative_to(package.parent).as_posix()
    # The line package_functions chose: the one after the def line.
    result = explain(Run(engine, on_text=clock.on_text), text, "python", subject.start_line + 1,
                     4, related, path=relative, grounding=facts if grounded else None)
    return {"type": "explain", "package": package.name, "file": relative,
            "function": result.function_name, "grounded": grounded,
            "first_text_ms": clock.first_ms, "done_ms": clock.elapsed_ms(),
            **judgement(result.markdown, subject, facts),
            **draft_judgement(result.draft, subject, facts), "shown_notes": list(result.notes),
            "rewritten": result.markdown.count(" Rewritten; it read: “"),
            "removed": result.markdown.count(" Removed: “"),
            "markdown": result.markdown, "draft": result.draft}


def judgement(markdown: str, subject: Definition, facts: Callable) -> dict:
    """The index's verdict on an answer's prose (the panel's text without its notes)."""
    reply = markdown.split("\n\n", 1)[1].split("\n---\n**Checked")[0]
    judged = check_explanation(reply, facts(subject, (subject.start_line, subject.end_line)))
    return {"unknown_name": any("not defined" in n or "not a file" in n for n in judged),
            "wrong_caller": any(n.startswith("“called by") for n in judged),
            "wrong_return": any(n.startswith("“returns") for n in judged),
            "problems": list(judged)}


def draft_judgement(draft: str, subject: Definition, facts: Callable) -> dict:
    """The index's verdict on the model's answer as it wrote it, before contradicted
    sentences were rewritten: what grounding the prompt alone achieves."""
    judged = judgement(f"### title\n\n{draft}", subject, facts)
    return {f"draft_{key}": value for key, value in judged.items()}


def rejudged(rows: list[dict], model: str) -> list[dict]:
    """Explain rows judged again, from their recorded answers, by today's checks: the same
    answers, the verdict of a corrected judge. Refactor rows are returned as they are."""
    tokenizer = VocabularyTokenizer(registry.resolve_model(model))  # its count_tokens is all
    home = Path(tempfile.mkdtemp(prefix="smallcoder-bench-actions-home-"))
    contexts: dict[str, tuple[Path, WorkspaceContext]] = {}
    try:
        out = []
        for row in rows:
            if row["type"] != "explain":
                out.append(row)
                continue
            if row["package"] not in contexts:
                package = Path(importlib.import_module(row["package"]).__file__).parent
                contexts[row["package"]] = (package, WorkspaceContext(home / row["package"]))
                contexts[row["package"]][1].open_folder(package)
            package, context = contexts[row["package"]]
            path = package.parent / row["file"]
            text = path.read_text()
            subject = next(d for d in definitions(text, "python")
                           if d.kind != "class" and d.qualified_name == row["function"])
            line = subject.start_line + 1  # as package_functions chose it
            facts = grounding_in(context, str(path), text, "python",
                                 related_for(context, str(path), text, line, tokenizer))
            out.append({**row, **judgement(row["markdown"], subject, facts),
                        **(draft_judgement(row["draft"], subject, facts) if "draft" in row
                           else {})})
        return out
    finally:
        shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------ timing and summary


class Clock:
    """When the first piece of text came, and how long the whole took."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_ms: float | None = None

    def on_text(self, _piece: str) -> None:
        if self.first_ms is None:
            self.first_ms = round((time.perf_counter() - self.started) * 1e3)

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1e3)


def share(rows: list[dict], key: str) -> float | None:
    return round(100 * sum(bool(row[key]) for row in rows) / len(rows), 1) if rows else None


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def median(values: list[float | None]) -> float | None:
    present = sorted(value for value in values if value is not None)
    return present[len(present) // 2] if present else None


def static_choice(row: dict) -> bool | None:
    """What a workspace without a test command would have been offered: the first candidate
    that passed every check but the tests. Whether it kept behaviour is that candidate's tests
    check (the case's tests, run because every earlier check passed); None: none offered."""
    for results in row["checks"]:
        if all(check["passed"] for check in results if check["name"] != "tests"):
            return any(check["name"] == "tests" and check["passed"] for check in results)
    return None


def summaries(rows: list[dict]) -> list[dict]:
    found = []
    refactors = [row for row in rows if row["type"] == "refactor" and "error" not in row]
    suites = sorted({row["suite"] for row in refactors})
    for suite in suites + (["all"] if len(suites) > 1 else []):
        chosen = [row for row in refactors if suite in ("all", row["suite"])]
        unchecked = [row for row in chosen if row["unchecked_offered"]]
        checked = [row for row in chosen if row["checked_offered"]]
        static = [static_choice(row) for row in chosen]
        static_offered = [kept for kept in static if kept is not None]
        found.append({"type": "summary", "part": "refactor", "suite": suite, "n": len(chosen),
                      "unchecked_offered_pct": share(chosen, "unchecked_offered"),
                      "unchecked_preserved_pct": share(unchecked, "unchecked_passes"),
                      "static_offered_pct": _pct(len(static_offered), len(chosen)),
                      "static_preserved_pct": _pct(sum(static_offered), len(static_offered)),
                      "checked_offered_pct": share(chosen, "checked_offered"),
                      "checked_preserved_pct": share(checked, "checked_passes"),
                      "median_first_token_ms": median([r["first_token_ms"] for r in chosen]),
                      "median_done_ms": median([r["done_ms"] for r in chosen])})
    explains = [row for row in rows if row["type"] == "explain"]
    for grounded in (False, True):
        chosen = [row for row in explains if row["grounded"] == grounded]
        if chosen:
            found.append({"type": "summary", "part": "explain", "grounded": grounded,
                          "n": len(chosen), "unknown_name_pct": share(chosen, "unknown_name"),
                          "wrong_caller_pct": share(chosen, "wrong_caller"),
                          "wrong_return_pct": share(chosen, "wrong_return"),
                          "unknown_or_wrong_caller_pct": round(100 * sum(
                              r["unknown_name"] or r["wrong_caller"] for r in chosen)
                              / len(chosen), 1),
                          # As the model wrote it, before the rewrites (rows of runs
                          # before rewrites have no draft: their answer is their draft).
                          "draft_unknown_or_wrong_caller_pct": round(100 * sum(
                              r.get("draft_unknown_name", r["unknown_name"])
                              or r.get("draft_wrong_caller", r["wrong_caller"])
                              for r in chosen) / len(chosen), 1),
                          "rewritten_sentences": sum(r.get("rewritten", 0) for r in chosen),
                          "removed_sentences": sum(r.get("removed", 0) for r in chosen),
                          "median_first_text_ms": median([r["first_text_ms"] for r in chosen]),
                          "median_done_ms": median([r["done_ms"] for r in chosen])})
    return found


def print_table(machine: dict, summary: list[dict]) -> None:
    print(f"\n{machine['model']}: {machine['raw_prompt_tokens_per_s']} prompt tok/s, "
          f"{machine['raw_generation_tokens_per_s']} generation tok/s raw "
          f"({machine['threads']} threads, load {machine['load_average'][0]:.1f})")
    print(f"{'refactor':<12} {'n':>4} {'offered':>9} {'kept':>7} {'offered':>9} {'kept':>7} "
          f"{'offered':>9} {'kept':>7} {'1st tok s':>10} {'done s':>8}")
    print(f"{'':<12} {'':>4} {'- no checks -':>17} {'- no tests -':>17} {'-- checks --':>17}")
    for row in (r for r in summary if r["part"] == "refactor"):
        print(f"{row['suite']:<12} {row['n']:>4} {row['unchecked_offered_pct']!s:>8}% "
              f"{row['unchecked_preserved_pct']!s:>6}% {row['static_offered_pct']!s:>8}% "
              f"{row['static_preserved_pct']!s:>6}% {row['checked_offered_pct']!s:>8}% "
              f"{row['checked_preserved_pct']!s:>6}% {_s(row['median_first_token_ms']):>10} "
              f"{_s(row['median_done_ms']):>8}")
    print(f"\n{'explain':<12} {'n':>4} {'unknown':>8} {'caller':>7} {'return':>7} "
          f"{'either':>7} {'drafts':>7} {'rewr.':>6} {'rem.':>5} {'1st text s':>11} "
          f"{'done s':>8}")
    for row in (r for r in summary if r["part"] == "explain"):
        label = "grounded" if row["grounded"] else "ungrounded"
        print(f"{label:<12} {row['n']:>4} {row['unknown_name_pct']!s:>7}% "
              f"{row['wrong_caller_pct']!s:>6}% {row['wrong_return_pct']!s:>6}% "
              f"{row['unknown_or_wrong_caller_pct']!s:>6}% "
              f"{row['draft_unknown_or_wrong_caller_pct']!s:>6}% "
              f"{row['rewritten_sentences']:>6} {row['removed_sentences']:>5} "
              f"{_s(row['median_first_text_ms']):>11} {_s(row['median_done_ms']):>8}")
    print("either: unknown name or wrong caller in the text shown; drafts: the same in the "
          "answer as the model wrote it, before the sentences the index contradicts were "
          "rewritten (rewr.) or removed (rem.)")
    print("kept: share of offered rewrites whose tests still pass; a refused refactor leaves "
          "the code as it was; no tests: every check but the tests, as in a workspace without "
          "a test command")


def _s(milliseconds: float | None) -> str:
    return "-" if milliseconds is None else f"{milliseconds / 1e3:.1f}"


# ------------------------------------------------------------------ main


def run(args: argparse.Namespace, results: IO[str]) -> None:
    rows: list[dict] = []

    def write_row(row: dict) -> None:
        results.write(json.dumps({"model": args.model, **row}) + "\n")
        results.flush()

    model_path = registry.resolve_model(args.model)
    machine = {"type": "machine", "model": args.model, "limit": args.limit, "seed": args.seed,
               "logical_cpus": os.cpu_count(), "load_average": os.getloadavg(),
               **raw_speed(model_path, (ROOT / "analyzers" / "packer.py").read_text(),
                                 threads=args.threads)}
    write_row(machine)
    engine = LlamaCppEngine(model_path, context_tokens=CONTEXT_TOKENS, threads=args.threads)
    if "refactor" in args.parts:
        suites = {"humaneval": humaneval_cases, "quixbugs": quixbugs_cases}
        for suite in args.suites:
            for case in sampled(suites[suite](), args.limit, args.seed):
                for instruction in args.refactors:
                    engine.clear_cache()
                    row = refactor_row(engine, case, instruction)
                    rows.append(row)
                    write_row(row)
                    print(f"  refactor {case.name} '{instruction}': unchecked "
                          f"{row.get('unchecked_passes')}, checked offered "
                          f"{row.get('checked_offered')} passes {row.get('checked_passes')}",
                          file=sys.stderr)
    if "explain" in args.parts:
        for name in args.packages:
            package = Path(importlib.import_module(name).__file__).parent
            arms = tuple(arm == "grounded" for arm in args.arms)
            skipped = frozenset((row["file"], row["function"]) for recorded in args.skip_recorded
                                for row in map(json.loads, recorded.read_text().splitlines())
                                if row.get("type") == "explain")
            for row in explain_rows(engine, package, args.limit, args.seed, arms, skipped):
                rows.append(row)
                write_row(row)
    summary = summaries(rows)
    for row in summary:
        write_row(row)
    print_table(machine, summary)


def new_results_file(stem: str) -> tuple[Path, IO[str]]:
    """A results file no other run writes: two runs started in the same second (one per
    part, side by side) would otherwise open the same name and overwrite each other's rows."""
    for attempt in range(1, 100):
        out = RESULTS / (f"{stem}.jsonl" if attempt == 1 else f"{stem}-{attempt}.jsonl")
        try:
            return out, out.open("x")
        except FileExistsError:
            continue
    raise SystemExit(f"bench/actions: no free name for {stem} in {RESULTS}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct-q4_k_m")
    parser.add_argument("--limit", type=int, default=None,
                        help="cases per suite and functions per package (default: all)")
    parser.add_argument("--parts", nargs="+", default=["refactor", "explain"],
                        choices=["refactor", "explain"])
    parser.add_argument("--suites", nargs="+", default=["humaneval", "quixbugs"],
                        choices=["humaneval", "quixbugs"])
    parser.add_argument("--refactors", nargs="+", default=list(REFACTORS))
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: physical "
                        "cores)")
    parser.add_argument("--arms", nargs="+", choices=["ungrounded", "grounded"],
                        default=["ungrounded", "grounded"],
                        help="explain: which prompts to ask (grounded alone after a change to "
                             "it; it then finds no ungrounded answer's prompt in the KV cache)")
    parser.add_argument("--skip-recorded", type=Path, nargs="+", default=[], metavar="JSONL",
                        help="explain: leave out the functions these results already hold (a "
                             "package with no more functions than --limit comes in one order)")
    parser.add_argument("--rejudge", action="store_true",
                        help="with --summarize: judge the recorded explanations again with "
                             "today's checks (after a fix to the judge)")
    parser.add_argument("--summarize", type=Path, metavar="JSONL",
                        help="print the table of an earlier run's rows (a cut run too); no model")
    args = parser.parse_args()
    if args.summarize is not None:
        rows = [json.loads(line) for line in args.summarize.read_text().splitlines() if line]
        if args.rejudge:
            rows = rejudged(rows, rows[0]["model"])
            out, results = new_results_file(f"{args.summarize.stem}-rejudged")
            with results:
                results.writelines(json.dumps(row) + "\n" for row in rows
                                   if row["type"] != "summary")
            print(f"rows judged again: {out}")
        print_table(rows[0], summaries([row for row in rows if row["type"] != "summary"]))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    out, results = new_results_file(f"actions-{time.strftime('%Y%m%d-%H%M%S')}")
    with results:
        run(args, results)
    print(f"rows: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
