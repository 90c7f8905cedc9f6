"""`smallcoder train`: a personal-style LoRA adapter from the user's repositories.

Progress goes to stderr (with --progress-json: training/events.py's JSON lines on stdout);
the adapter and its report (markdown + PNG) land next to --out. Ctrl-C leaves a checkpoint in
OUT.work/ (exported to --out); the same command continues from it (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import UserError
from training.events import (
    EXIT_INTERRUPTED,
    TrainingRequest,
    add_request_arguments,
    leave_the_libraries_to_the_os,
    print_event,
    run_training,
    say_interrupted,
)


def add_train_command(commands: argparse._SubParsersAction) -> None:
    train_parser = commands.add_parser(
        "train", help="train a personal-style adapter on your repositories (needs .[train])")
    train_parser.add_argument("--repo", action="append", required=True, type=Path,
                              metavar="DIR", help="a repository to learn from (repeatable)")
    train_parser.add_argument("--out", required=True, type=Path, metavar="ADAPTER.gguf",
                              help="where to write the GGUF LoRA adapter")
    train_parser.add_argument("--model", help="registry name or .gguf path of the base "
                              "(default: $SMALLCODER_MODEL, else the default model)")
    train_parser.add_argument("--max-minutes", type=float, default=None, metavar="M",
                              help="wall-time budget for training (evaluation comes after)")
    train_parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                              help="optimizer steps at most (default 400)")
    train_parser.add_argument("--no-eval", action="store_true",
                              help="skip the evaluation report")
    add_request_arguments(train_parser)
    train_parser.add_argument("--json", action="store_true", help="machine-readable summary")
    train_parser.add_argument("--progress-json", action="store_true",
                              help="one JSON object a line on stdout: stage messages "
                                   '({"event": "message"}), training steps ({"event": "step"}), '
                                   'then the summary ({"event": "result"})')
    train_parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    request = TrainingRequest(tuple(args.repo), args.out, args.model, args.max_minutes,
                              args.max_steps, evaluate=not args.no_eval,
                              other_authors=tuple(args.other_author), threads=args.threads,
                              accepted_work=args.accepted_work, start=args.start)
    try:
        summary, status = run_training(request, progress_json=args.progress_json)
    except ValueError as error:
        raise UserError(str(error)) from error
    finally:
        leave_the_libraries_to_the_os()
    if args.progress_json:
        print_event("result", **summary)
    elif args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(summary["adapter"])
    if status == EXIT_INTERRUPTED:
        say_interrupted()
    return status
