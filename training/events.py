"""The progress-event format of a training run, spoken by `smallcoder train --progress-json`
and `python -m training` and read by the language server: one JSON object a line on stdout.

Events: `{"event": "message", "message": …}` per stage, `{"event": "step", …}` per training
step, and last `{"event": "result", …}` with the summary.
"""

from __future__ import annotations

import gc
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.preflight import repository_problem, training_packages_problem

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class TrainingRequestError(ValueError):
    """The run cannot start (or stopped on bad input); the message says what to do."""


@dataclass(frozen=True)
class TrainingRequest:
    repos: tuple[Path, ...]
    out: Path
    model: str | None = None
    max_minutes: float | None = None
    max_steps: int | None = None
    evaluate: bool = True
    other_authors: tuple[Path, ...] = ()  # for the report's cross-author control
    threads: int | None = None  # None: chosen from the machine
    accepted_work: bool = False  # learn from the accepted fixes and refactors too
    start: str = "auto"  # "auto" | "continue" | "fresh"


def print_event(event: str, **fields: Any) -> None:
    """One line of the event stream, flushed at once: a reader relays it as it happens."""
    print(json.dumps({"event": event, **fields}), flush=True)


def parse_event(line: bytes) -> dict | None:
    """An event, or None for anything else a library printed to stdout."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


def run_training(request: TrainingRequest, *, progress_json: bool) -> tuple[dict, int]:
    """Check the request, train, and return the summary and the exit status (0; 1 when the
    adapter lost on the guard set; 130 when interrupted). With `progress_json` the stages and
    steps are printed as events; the caller prints the summary its own way."""
    try:
        from training.pipeline import train_personal_adapter
        from training.train import StepProgress, TrainConfig
    except ImportError as error:
        raise TrainingRequestError(
            f"training needs the optional packages ({error.name} is missing): "
            f"run `.venv/bin/pip install -e '.[train]'`") from error
    for problem in (training_packages_problem(),
                    *map(repository_problem, request.repos + request.other_authors)):
        if problem is not None:
            raise TrainingRequestError(problem)
    if request.out.suffix != ".gguf":
        raise TrainingRequestError(f"--out {request.out} should end in .gguf")
    config = (TrainConfig() if request.max_steps is None
              else TrainConfig(max_steps=request.max_steps))

    def step_event(progress: StepProgress) -> None:
        print_event("step", step=progress.step, max_steps=progress.max_steps,
                    loss=round(progress.loss, 4), tokens=progress.tokens,
                    tokens_per_second=round(progress.tokens_per_second, 1),
                    eta_seconds=round(progress.eta_seconds, 1))

    result = train_personal_adapter(
        list(request.repos), request.out, model=request.model,
        max_minutes=request.max_minutes, config=config, evaluate=request.evaluate,
        other_authors=list(request.other_authors), threads=request.threads,
        accepted_work=request.accepted_work, start=request.start,
        say=(lambda line: print_event("message", message=line)) if progress_json else None,
        on_step=step_event if progress_json else None)
    summary = {"adapter": str(result.adapter), "report": str(result.report or ""),
               "steps": result.training.steps, "tokens": result.training.tokens,
               "tokens_per_second": round(result.training.tokens_per_second, 1),
               "stopped_by": result.training.stopped_by, "guard_passed": result.guard_passed}
    if result.training.stopped_by == "interrupt":
        return summary, EXIT_INTERRUPTED
    return summary, 0 if result.guard_passed is not False else EXIT_FAILURE


def add_request_arguments(parser) -> None:
    """The options the CLI and `python -m training` share beyond --repo/--out/--model."""
    parser.add_argument("--other-author", action="append", default=[], type=Path,
                        metavar="DIR", help="another author's repository: the report checks "
                        "that the adapter does not make completions more like theirs")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for training and evaluation (default: the machine's "
                             "physical cores this process may use)")
    parser.add_argument("--accepted-work", action="store_true",
                        help="also learn from the fixes and refactorings you accepted in the "
                             "editor (kept under $SMALLCODER_HOME/accepted when "
                             "smallcoder.training.learnFromAccepted is on)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--fresh", dest="start", action="store_const", const="fresh",
                       help="delete OUT.work's checkpoint and start from the base")
    start.add_argument("--continue", dest="start", action="store_const", const="continue",
                       help="continue from OUT.work's checkpoint to the end of its schedule "
                            "(an error without one); by default a checkpoint is continued when "
                            "there is one")
    parser.set_defaults(start="auto")


def leave_the_libraries_to_the_os() -> None:
    """Called once a run's result is out: the process has nothing left to do but exit, and
    tearing down torch, transformers and peft object by object took 4 s on two busy cores, so
    Ctrl-C or Cancel seemed not to stop it. Frozen objects are left to the operating system
    (atexit handlers still run and files are still flushed); exit took 0.6 s."""
    gc.freeze()


def say_interrupted() -> None:
    print("smallcoder: interrupted; run the same command again to resume", file=sys.stderr)
