"""`smallcoder pack --target tests`: the agent's context for a workspace's failing tests, from a
test command run in a scratch copy or from a saved junit report, with the localisation ranking.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.context import Coverage, FailureContext, gather_context, render_function
from agent.failures import Failure, UnsafeReport, failure_text, failures_from_junit
from agent.runner import TestCommand, TestCommandError, find_program, run_tests
from agent.sandbox import Sandbox, SandboxError
from agent.solve import failing_test_ids
from analyzers.packer import MAX_BUDGET_TOKENS, CountTokens, render
from cli.common import UserError
from model import registry
from model.tokenizer import VocabularyTokenizer


def run_tests_pack(args: argparse.Namespace) -> int:
    if args.location is not None:
        raise UserError("--target tests packs for the failing tests, not a place: leave out "
                        "FILE:LINE and give --workspace with --test-cmd or --failures")
    if (args.test_cmd is None) == (args.failures is None):
        raise UserError("--target tests needs the failures: give --test-cmd CMD (run in a "
                        "scratch copy of --workspace) or --failures REPORT.xml (saved with "
                        "pytest --junitxml), one of them")
    if not 0 <= args.budget <= MAX_BUDGET_TOKENS:
        raise UserError(f"--budget {args.budget}: give 0…{MAX_BUDGET_TOKENS} tokens")
    root = (args.workspace or Path.cwd()).resolve()
    if not root.is_dir():
        raise UserError(f"--workspace {root} is not a folder")
    count_tokens = VocabularyTokenizer(registry.resolve_model(args.model)).count_tokens
    if args.failures is not None:
        context = gather_context(root, _saved_failures(args.failures), count_tokens, args.budget)
    else:
        context = _context_from_a_run(root, args.test_cmd, count_tokens, args.budget)
    _print(context, count_tokens, args.json, args.text)
    return 0


def _saved_failures(report: Path) -> tuple[Failure, ...]:
    try:
        failures = tuple(failures_from_junit(report.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read --failures {report}: {error}") from error
    except (UnsafeReport, ValueError) as error:
        raise UserError(f"--failures {report} is not a junit report pytest wrote: {error}"
                        ) from error
    if not failures:
        raise UserError(f"--failures {report} records no failing test: nothing to pack for")
    return failures


def _context_from_a_run(root: Path, test_command: str, count_tokens: CountTokens,
                        budget: int) -> FailureContext:
    """The tests run in a scratch copy (the workspace is never written), then, for pytest, the
    failing ones again, traced, as the agent does before its first round."""
    try:
        command = TestCommand.parse(test_command)
        find_program(command, root)
        with Sandbox(root) as sandbox:
            run = run_tests(command, sandbox.root, shared_folders=sandbox.shared_folders)
            if run.passed:
                raise UserError(f"`{command}` passes in {root}: no failing test to pack for")
            coverage: Coverage = {}
            if command.is_pytest and not run.timed_out:
                ids = failing_test_ids(command, sandbox.root, run)
                coverage = run_tests(command, sandbox.root, only=ids, trace=True,
                                     shared_folders=sandbox.shared_folders).covered
            return gather_context(sandbox.root, run.failures, count_tokens, budget,
                                  coverage=coverage)
    except (TestCommandError, SandboxError) as error:
        raise UserError(str(error)) from error


def _print(context: FailureContext, count_tokens: CountTokens, as_json: bool,
           with_text: bool) -> None:
    shown = {(item.path, item.span.start_byte) for item in context.functions}
    suspects = [{"path": s.function.path, "function": s.function.span.qualified_name,
                 "line": s.function.span.start_point[0] + 1, "score": s.score,
                 "reasons": list(s.reasons),
                 "shown": (s.function.path, s.function.span.start_byte) in shown}
                for s in context.suspects]
    functions = [{"path": item.path, "function": item.span.qualified_name,
                  "line": item.span.start_point[0] + 1, "editable": item.editable,
                  "tokens": count_tokens(item.span.text), "text": render_function(item)}
                 for item in context.functions]
    related = [{"path": s.path, "start_line": s.start_line + 1, "end_line": s.end_line + 1,
                "kind": s.kind, "reason": s.reason, "tokens": s.tokens, "text": s.text}
               for s in context.related]
    if as_json:
        print(json.dumps({"failures": [{"test": f.test_id, "message": failure_text(f)}
                                       for f in context.failures],
                          "suspects": suspects, "functions": functions, "related": related},
                         indent=2))
        return
    print(f"{len(context.failures)} failing test(s): "
          + ", ".join(f.test_id for f in context.failures))
    print("suspects, likeliest first:")
    for number, suspect in enumerate(suspects, start=1):
        mark = "shown" if suspect["shown"] else "     "
        print(f"{number:>3}. {suspect['score']:>5}  {mark}  {suspect['path']}:{suspect['line']} "
              f"{suspect['function']}  ({'; '.join(suspect['reasons'])})")
    print("functions shown:")
    for item in functions:
        role = "edit" if item["editable"] else "test"
        print(f"     {item['tokens']:>5} tokens  {role}  {item['path']}:{item['line']} "
              f"{item['function']}")
        if with_text:
            print("     " + item["text"].rstrip("\n").replace("\n", "\n     "))
    print("related code (the packer):")
    for snippet, item in zip(context.related, related, strict=True):
        print(f"     {item['tokens']:>5} tokens  {item['kind']:<10} "
              f"{item['path']}:{item['start_line']}-{item['end_line']}  {item['reason']}")
        if with_text:
            print("     " + render(snippet).rstrip("\n").replace("\n", "\n     "))
