"""The progress-event format of a training run, spoken by `smallcoder train --progress-json`
and `python -m training` and read by the language server: one JSON object a line on stdout.

Events: `{"event": "message", "message": …}` per stage, `{"event": "step", …}` per training
step, and last `{"event": "result", …}` with the summary.
"""

from __future__ import annotations

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
    for problem in (training_packages_problem(), *map(repository_problem, request.repos)):
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
        say=(lambda line: print_event("message", message=line)) if progress_json else None,
        on_step=step_event if progress_json else None)
    summary = {"adapter": str(result.adapter), "report": str(result.report or ""),
               "steps": result.training.steps, "tokens": result.training.tokens,
               "tokens_per_second": round(result.training.tokens_per_second, 1),
               "stopped_by": result.training.stopped_by, "guard_passed": result.guard_passed}
    if result.training.stopped_by == "interrupt":
        return summary, EXIT_INTERRUPTED
    return summary, 0 if result.guard_passed is not False else EXIT_FAILURE


def say_interrupted() -> None:
    print("smallcoder: interrupted; run the same command again to resume", file=sys.stderr)
