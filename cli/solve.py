"""`smallcoder solve`: the agent from the command line; the workspace changes only with --apply.

Exit status 0 only when the tests pass at the end; the diff goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.runner import TestCommandError
from agent.sandbox import FileChange, SandboxError, link_leads_outside
from agent.solve import DEFAULT_ROUNDS, DEFAULT_WALL_TIME_S, Budget, solve
from assist.accepted import fix_changes
from cli.common import (
    EXIT_FAILURE,
    UserError,
    add_learn_option,
    check_learn_option,
    check_test_command,
    keep_for_training,
)


def add_solve_command(commands: argparse._SubParsersAction) -> None:
    solve_parser = commands.add_parser(
        "solve", help="edit a copy of the workspace until its tests pass; print the diff")
    solve_parser.add_argument("--workspace", required=True, type=Path, metavar="DIR",
                              help="the project folder (it is never written without --apply)")
    solve_parser.add_argument("--test-cmd", required=True, metavar="CMD",
                              help="the command that runs the tests, e.g. 'pytest -q' "
                                   "(run without a shell)")
    solve_parser.add_argument("--max-rounds", type=int, default=DEFAULT_ROUNDS, metavar="N",
                              help=f"rounds of proposals (default {DEFAULT_ROUNDS})")
    solve_parser.add_argument("--time-budget", type=float, default=DEFAULT_WALL_TIME_S,
                              metavar="SECONDS",
                              help=f"wall time for the whole run "
                                   f"(default {DEFAULT_WALL_TIME_S:.0f})")
    solve_parser.add_argument("--apply", action="store_true",
                              help="write the change into the workspace when the tests pass")
    add_learn_option(solve_parser)
    solve_parser.add_argument("--model", help="registry name or .gguf path (default: "
                              "$SMALLCODER_MODEL, else the default model)")
    solve_parser.add_argument("--json", action="store_true", help="machine-readable output")
    solve_parser.set_defaults(run=run_solve)


def run_solve(args: argparse.Namespace) -> int:
    check_learn_option(args)
    if args.max_rounds < 1:
        raise UserError("--max-rounds must be at least 1")
    if not args.workspace.is_dir():
        raise UserError(f"--workspace {args.workspace} is not a folder")
    check_test_command(args.test_cmd, args.workspace)
    engine = args.open_engine(args.model)
    budget = Budget(max_rounds=args.max_rounds, wall_time_s=args.time_budget)
    try:
        result = solve(args.workspace, args.test_cmd, budget, engine=engine,
                       on_progress=lambda message: print(f"smallcoder: {message}",
                                                         file=sys.stderr))
    except (TestCommandError, SandboxError) as error:
        raise UserError(str(error)) from error
    applied, kept = [], []
    if args.apply and result.green:
        applied = apply_changes(args.workspace, result.changes)
        if args.learn:
            kept = keep_for_training(fix_changes(args.workspace.resolve(), args.test_cmd, result))
    if args.json:
        print(json.dumps({**result.to_json(), "applied": applied, "keptForTraining": kept},
                         indent=2))
    else:
        sys.stdout.write(result.diff)
        print(f"smallcoder: {result.status} after {result.rounds} round(s) in "
              f"{result.duration_s:.0f} s: {result.message}"
              f"{'; applied to ' + ', '.join(applied) if applied else ''}"
              f"\nsmallcoder: transcript {result.transcript}", file=sys.stderr)
    return 0 if result.green else EXIT_FAILURE


def apply_changes(workspace: Path, changes: tuple[FileChange, ...]) -> list[str]:
    """Write the new texts; a file edited meanwhile, or one whose path leads outside the
    workspace through a link, is refused before anything is written."""
    for change in changes:
        if link_leads_outside(workspace, change.path):
            raise UserError(f"{change.path} leads outside the workspace through a link: nothing "
                            f"was applied")
        if (workspace / change.path).read_text(encoding="utf-8") != change.old_text:
            raise UserError(f"{change.path} changed while the agent ran: nothing was applied; "
                            f"run `smallcoder solve` again")
    for change in changes:
        (workspace / change.path).write_text(change.new_text, encoding="utf-8")
    return [change.path for change in changes]
