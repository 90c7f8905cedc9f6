"""`smallcoder refactor FILE:LINE`: the checked rewrite the editor offers, as a unified diff; the
file changes only with --apply, and only with a rewrite that passed every check.

The diff goes to stdout, the checks and what happened to stderr; a refused refactor exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.sandbox import FileChange, unified_diff
from assist.accepted import refactor_change
from assist.actions import (
    DEFAULT_REFACTOR_GOAL,
    ActionError,
    Refactoring,
    Run,
    refactor_in_workspace,
    refactorable_function,
)
from cli.common import (
    UserError,
    add_learn_option,
    check_learn_option,
    check_test_command,
    keep_for_training,
    read_source,
    source_line,
    workspace_context,
)


def add_refactor_command(commands: argparse._SubParsersAction) -> None:
    refactor = commands.add_parser(
        "refactor", help="rewrite the function at FILE:LINE, check the rewrite (parse, "
                         "signature, callers, linters, tests) and print the diff")
    refactor.add_argument("location", metavar="FILE:LINE", help="1-based line")
    refactor.add_argument("--instruction", default="", metavar="TEXT",
                          help=f"what to change (default: {DEFAULT_REFACTOR_GOAL})")
    refactor.add_argument("--workspace", type=Path, metavar="DIR",
                          help="workspace folder to index and to run the tests in a copy of "
                               "(default: the file's git root, else the folder above its "
                               "Python package, else its folder)")
    refactor.add_argument("--test-cmd", metavar="CMD",
                          help="the command that runs the tests, e.g. 'pytest -q' (run without "
                               "a shell, in a scratch copy of the workspace): the rewrite must "
                               "fail no test that passed before")
    refactor.add_argument("--apply", action="store_true",
                          help="write the rewrite into FILE when it passed every check")
    add_learn_option(refactor)
    refactor.add_argument("--model", help="registry name or .gguf path (default: "
                          "$SMALLCODER_MODEL, else the default model)")
    refactor.add_argument("--json", action="store_true", help="machine-readable output")
    refactor.set_defaults(run=_run_refactor)


def _run_refactor(args: argparse.Namespace) -> int:
    check_learn_option(args)
    at = source_line(args.location)
    try:  # before the model loads: a line outside any function, or broken code, costs no load
        span = refactorable_function(at.text, at.language, at.line, at.column)
    except ActionError as error:
        raise UserError(f"{args.location}: {error}") from error
    context, root = workspace_context(at.path, args.workspace)
    if args.test_cmd:
        check_test_command(args.test_cmd, root)
    engine = args.open_engine(args.model)
    print(f"smallcoder: refactoring `{span.qualified_name}`", file=sys.stderr)
    try:
        result = refactor_in_workspace(Run(engine), context, str(at.path), at.text, at.language,
                                       at.line, at.column, args.instruction,
                                       test_command=args.test_cmd or "")
    except ActionError as error:
        raise UserError(f"refactor refused: {error}; {at.path} is unchanged") from error
    diff = unified_diff([FileChange(at.path.relative_to(root).as_posix(), at.text,
                                    result.new_document)])
    applied = args.apply and _apply(at.path, at.text, result)
    kept = keep_for_training(refactor_change(
        [root], at.path, at.text, result.new_document, span.qualified_name,
        args.instruction or DEFAULT_REFACTOR_GOAL)) if applied and args.learn else []
    if args.json:
        print(json.dumps({"functionName": span.qualified_name,
                          "checks": [check.to_json() for check in result.checks],
                          "candidates": result.candidates, "diff": diff, "applied": applied,
                          "keptForTraining": kept},
                         indent=2))
        return 0
    sys.stdout.write(diff)
    print(f"smallcoder: the rewrite (candidate {result.candidates}) passed every check:",
          file=sys.stderr)
    for check in result.checks:
        print(f"  {check.name}: {check.detail}", file=sys.stderr)
    print(f"smallcoder: {'applied to' if applied else 'not applied (--apply writes it):'} "
          f"{at.path}", file=sys.stderr)
    return 0


def _apply(path: Path, old_text: str, result: Refactoring) -> bool:
    """Writes the rewritten file, every other byte as it was; refused when the file changed
    while the model wrote."""
    if read_source(path) != old_text:
        raise UserError(f"{path} changed while the refactor ran: nothing was applied; run "
                        f"`smallcoder refactor` again")
    path.write_bytes(result.new_document.encode("utf-8"))
    return True
