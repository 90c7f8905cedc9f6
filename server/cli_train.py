"""`smallcoder train`: a personal-style LoRA adapter from the user's repositories.

Progress goes to stderr (with --progress-json: JSON lines on stdout, for the language server);
the adapter and its report (markdown + PNG) land next to --out. Ctrl-C leaves a checkpoint in
OUT.work/ (exported to --out); the same command resumes it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib.metadata import PackageNotFoundError, requires
from importlib.util import find_spec
from pathlib import Path
from typing import Any

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


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
    train_parser.add_argument("--json", action="store_true", help="machine-readable summary")
    train_parser.add_argument("--progress-json", action="store_true",
                              help="one JSON object a line on stdout: stage messages "
                                   '({"event": "message"}), training steps ({"event": "step"}), '
                                   'then the summary ({"event": "result"})')
    train_parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from server.cli import UserError

    try:
        from training.pipeline import train_personal_adapter
        from training.train import StepProgress, TrainConfig
    except ImportError as error:
        raise UserError(f"training needs the optional packages ({error.name} is missing): "
                        f"run `.venv/bin/pip install -e '.[train]'`") from error
    for problem in (training_packages_problem(), *map(repository_problem, args.repo)):
        if problem is not None:
            raise UserError(problem)
    if args.out.suffix != ".gguf":
        raise UserError(f"--out {args.out} should end in .gguf")
    config = TrainConfig() if args.max_steps is None else TrainConfig(max_steps=args.max_steps)

    def step_event(progress: StepProgress) -> None:
        print_event("step", step=progress.step, max_steps=progress.max_steps,
                    loss=round(progress.loss, 4), tokens=progress.tokens,
                    tokens_per_second=round(progress.tokens_per_second, 1),
                    eta_seconds=round(progress.eta_seconds, 1))

    try:
        result = train_personal_adapter(
            args.repo, args.out, model=args.model, max_minutes=args.max_minutes, config=config,
            evaluate=not args.no_eval,
            say=(lambda line: print_event("message", message=line)) if args.progress_json
            else None,
            on_step=step_event if args.progress_json else None)
    except ValueError as error:
        raise UserError(str(error)) from error
    summary = {"adapter": str(result.adapter), "report": str(result.report or ""),
               "steps": result.training.steps, "tokens": result.training.tokens,
               "tokens_per_second": round(result.training.tokens_per_second, 1),
               "stopped_by": result.training.stopped_by, "guard_passed": result.guard_passed}
    if args.progress_json:
        print_event("result", **summary)
    elif args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(result.adapter)
    if result.training.stopped_by == "interrupt":
        print("smallcoder: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if result.guard_passed is not False else EXIT_FAILURE


def repository_problem(repo: Path) -> str | None:
    """What makes `repo` useless for training, or None; asked before anything slow starts."""
    from training.mine import has_source_files

    if not repo.is_dir():
        return f"{repo} is not a folder"
    if not has_source_files(repo):
        return (f"{repo} has no Python, JavaScript or TypeScript files to learn from (vendored, "
                f"generated, lock and data files do not count)")
    return None


def training_packages_problem() -> str | None:
    """What to install when this Python lacks the optional training packages, or None. Asked up
    front: some are imported only deep inside a run, after minutes of work."""
    try:
        requirements = requires("smallcoder") or []
    except PackageNotFoundError:  # run from a source tree: the imports will say what is missing
        return None
    pins = [requirement.split(";")[0].strip() for requirement in requirements
            if 'extra == "train"' in requirement]
    missing = [pin for pin in pins if find_spec(_module_of(pin)) is None]
    if not missing:
        return None
    return (f"training needs the optional packages {', '.join(map(_name_of, missing))}, which "
            f"{sys.executable} lacks: run `{sys.executable} -m pip install {' '.join(missing)}`")


def _name_of(pin: str) -> str:
    return re.split(r"[=<>!~\[ ]", pin)[0]


def _module_of(pin: str) -> str:
    """The import name of a requirement: the distribution name with `_` for `-` (as for all of
    the training packages: torch, transformers, peft, detect_secrets, matplotlib)."""
    return _name_of(pin).replace("-", "_")


def print_event(event: str, **fields: Any) -> None:
    """One line of --progress-json, flushed at once: a reader relays it as it happens."""
    print(json.dumps({"event": event, **fields}), flush=True)
