"""`smallcoder/train`: the personal adapter, trained by `python -m training` in a child process.

A child, not a thread: training holds gigabytes and the CPU for an hour, and Cancel must stop it
at once. It runs with this interpreter in its own process group, so Cancel reaches all of it;
its checkpoint stays in ADAPTER.gguf.work/ and the next request for the same repositories
resumes there. Its events (training/events.py) become $/progress reports on the client's token.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams

from agent.limits import interrupt_group_or_tree, kill_group_or_tree, popen_options
from model.home import smallcoder_home
from server.app import SmallCoderServer
from server.progress import ClientProgress
from server.protocol import optional_field, path_or_uri
from training.events import parse_event
from training.preflight import (
    START_MODES,
    missing_training_packages,
    repository_problem,
    training_packages_problem,
)

TRAIN_METHOD = "smallcoder/train"
# Asked by the editor before a run, to offer installing what training needs into this Python.
TRAINING_PACKAGES_METHOD = "smallcoder/trainingPackages"
PROGRESS_TITLE = "SmallCoder: training a personal adapter"
# After SIGINT the trainer saves a checkpoint at its last finished step and exits; a group
# still there this much later is killed.
INTERRUPT_GRACE_SECONDS = 10.0
STDERR_TAIL_BYTES = 4_000
STDERR_TAIL_LINES = 12
# OpenMP threads that spin while they wait collapse when the cores are shared with the served
# model (or anything else): on 2 busy cores a tiny model's training step took 70 times longer
# and its evaluation in llama.cpp did not finish in minutes; sleeping threads lose little.
CHILD_ENVIRONMENT_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
# Longest stdout line read from the child; its events are far shorter.
EVENT_LINE_LIMIT_BYTES = 1 << 20
USER_ERROR_PREFIX = "smallcoder: error: "


class TrainingFailed(Exception):
    """The child ended without a result; the message says why, from its stderr."""


@dataclass(frozen=True)
class TrainingJob:
    repos: tuple[Path, ...]
    out: Path
    model: str
    max_minutes: float | None
    max_steps: int | None
    start: str = "auto"  # "auto" | "continue" | "fresh", as `smallcoder train` takes it
    threads: int = 0  # 0: the child chooses from the machine
    accepted_work: bool = False

    def command(self) -> list[str]:
        """`python -m training` with the server's own interpreter, which has SmallCoder."""
        command = [sys.executable, "-m", "training", "--out", str(self.out),
                   "--model", self.model]
        if self.start != "auto":
            command.append(f"--{self.start}")
        if self.threads:
            command += ["--threads", str(self.threads)]
        if self.accepted_work:
            command.append("--accepted-work")
        for repo in self.repos:
            command += ["--repo", str(repo)]
        if self.max_minutes is not None:
            command += ["--max-minutes", str(self.max_minutes)]
        if self.max_steps is not None:
            command += ["--max-steps", str(self.max_steps)]
        return command


def register(server: SmallCoderServer) -> None:
    one_at_a_time = asyncio.Lock()

    @server.feature(TRAIN_METHOD)
    async def train_request(ls: SmallCoderServer, params: Any) -> dict:
        """Trains on the served model, so the adapter fits the base it will be applied to; one
        run at a time, because two would share the CPU and maybe the checkpoint."""
        if one_at_a_time.locked():
            raise JsonRpcInvalidParams("an adapter is already being trained: cancel it first")
        async with one_at_a_time:
            job = await asyncio.to_thread(job_from_params, params, ls.settings.model,
                                          threads=ls.settings.training_threads,
                                          accepted_work=ls.settings.training_learn_from_accepted)
            progress = ClientProgress(ls, optional_field(params, "workDoneToken", (str, int)),
                                      PROGRESS_TITLE, log_prefix="training")
            progress.begin(percentage=0)
            ls.log("info", f"training: {' '.join(job.command())}")
            try:
                summary = await run_training(job, progress.report)
            except TrainingFailed as error:
                raise JsonRpcInternalError(str(error)) from error
            finally:
                progress.end()
        return result_for_client(summary)

    @server.feature(TRAINING_PACKAGES_METHOD)
    async def training_packages_request(ls: SmallCoderServer, params: Any) -> dict:
        """The pins of the training packages this server's Python lacks: the editor installs them
        into the Python it started the server with, and the next `python -m training` child (a
        new process) imports them without a restart."""
        return {"missing": await asyncio.to_thread(missing_training_packages)}


def job_from_params(params: Any, model: str, *, threads: int = 0,
                    accepted_work: bool = False) -> TrainingJob:
    """The request checked before anything slow starts: this Python must have the training
    packages, and every repository code. `params.start` is "continue" (from the checkpoint of
    an earlier run of the same request, an error without one), "fresh" (that checkpoint
    deleted) or "auto" (continue when there is one, the default)."""
    if (problem := training_packages_problem()) is not None:
        raise JsonRpcInvalidParams(problem)
    given = optional_field(params, "repositories", (list, tuple)) or []
    if not given or not all(isinstance(repo, str) for repo in given):
        raise JsonRpcInvalidParams("no repositories to learn from: pass params.repositories, "
                                   "a list of folder URIs or paths")
    repos = tuple(sorted({Path(path_or_uri(repo)).resolve() for repo in given}))
    for repo in repos:
        if (problem := repository_problem(repo)) is not None:
            raise JsonRpcInvalidParams(problem)
    max_minutes = optional_field(params, "maxMinutes", (int, float))
    max_steps = optional_field(params, "maxSteps", int)
    if (max_minutes is not None and max_minutes <= 0) or (max_steps is not None
                                                         and max_steps < 1):
        raise JsonRpcInvalidParams("params.maxMinutes and params.maxSteps must be positive")
    out = optional_field(params, "out", str)
    if out is not None and not out.endswith(".gguf"):
        raise JsonRpcInvalidParams(f"params.out {out} should end in .gguf")
    start = optional_field(params, "start", str) or "auto"
    if start not in START_MODES:
        raise JsonRpcInvalidParams(f"params.start must be one of {', '.join(START_MODES)}")
    return TrainingJob(repos, Path(out).resolve() if out else default_adapter_path(repos, model),
                       model, max_minutes, max_steps, start, threads, accepted_work)


def default_adapter_path(repos: tuple[Path, ...], model: str) -> Path:
    """$SMALLCODER_HOME/adapters/<repository names>-<hash>.gguf. The hash of the exact folders
    and base model keeps two `app` folders apart and never resumes a checkpoint of another
    base; the same request always lands on the same file, so it resumes."""
    names = re.sub(r"[^A-Za-z0-9._+-]+", "-", "+".join(repo.name for repo in repos))[:48]
    digest = hashlib.sha256("\0".join([*map(str, repos), model]).encode())
    return smallcoder_home() / "adapters" / f"{names.strip('-.') or 'adapter'}-" \
        f"{digest.hexdigest()[:8]}.gguf"


async def run_training(job: TrainingJob, report: Callable[[str, int | None], None]) -> dict:
    """Run the child to its end, relaying its progress; its result event, or TrainingFailed.

    Cancelling this coroutine interrupts the child's process group at once and kills it after
    a grace period in the background, so the client's Cancel is answered without waiting.
    """
    job.out.parent.mkdir(parents=True, exist_ok=True)
    child = await asyncio.create_subprocess_exec(
        *job.command(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, limit=EVENT_LINE_LIMIT_BYTES, **popen_options(),
        env=CHILD_ENVIRONMENT_DEFAULTS | dict(os.environ))
    assert child.stdout is not None and child.stderr is not None
    stderr_tail = asyncio.ensure_future(read_tail(child.stderr))
    result: dict | None = None
    try:
        async for line in child.stdout:
            event = parse_event(line)
            if event is None:
                continue
            if event["event"] == "result":
                result = event
            else:
                report(*progress_of(event))
        exit_code = await child.wait()
        tail = await stderr_tail
    except asyncio.CancelledError:
        # stderr is still read to its end in the background: a child blocked on a full pipe
        # could not save its checkpoint.
        stop_group(child)
        raise
    # After its result the CLI exits 0, 1 (lost on the guard set) or 130 (interrupted).
    if result is None or result.get("stopped_by") == "interrupt":
        raise TrainingFailed(failure_message(exit_code, tail, result))
    return result


def stop_group(child: asyncio.subprocess.Process) -> None:
    """SIGINT now (the trainer saves a checkpoint), SIGKILL for what is left after the grace.
    Without process groups (Windows) the tree is terminated, then killed."""
    if not interrupt_group_or_tree(child.pid):
        return

    def kill_the_rest() -> None:
        # Most often it finished saving and exited within the grace period.
        kill_group_or_tree(child.pid)

    if child.returncode is None:
        asyncio.get_running_loop().call_later(INTERRUPT_GRACE_SECONDS, kill_the_rest)


async def read_tail(stream: asyncio.StreamReader) -> str:
    """The last few kB of a stream, read to its end so the child never blocks on a full pipe."""
    tail = b""
    while chunk := await stream.read(64 * 1024):
        tail = (tail + chunk)[-STDERR_TAIL_BYTES:]
    return tail.decode(errors="replace")


def progress_of(event: dict) -> tuple[str, int | None]:
    """A progress message and percentage (training steps only) for one event."""
    if event["event"] == "step":
        step, max_steps = event["step"], max(1, event["max_steps"])
        return (f"step {step}/{max_steps} · loss {event['loss']:.3f} · "
                f"{event['tokens_per_second']:.0f} tokens/s · "
                f"{time_left(event['eta_seconds'])} left", min(100, 100 * step // max_steps))
    return "; ".join(str(event.get("message", "")).splitlines()), None


def time_left(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def failure_message(exit_code: int, stderr_tail: str, result: dict | None) -> str:
    """The CLI's own error line when it gave one, else the end of its stderr."""
    if result is not None and result.get("stopped_by") == "interrupt":
        return "training was interrupted; train again to resume from its checkpoint"
    lines = [line for line in stderr_tail.replace("\r", "\n").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(USER_ERROR_PREFIX):
            return line.removeprefix(USER_ERROR_PREFIX)
    shown = "\n".join(lines[-STDERR_TAIL_LINES:]) or "(nothing on stderr)"
    return f"training failed (the training process exited with {exit_code}):\n{shown}"


def result_for_client(summary: dict) -> dict:
    """The CLI's summary in the protocol's camelCase, with a sentence on the guard check."""
    guard_passed = summary.get("guard_passed")
    report = summary.get("report") or None
    if guard_passed is False:
        message = ("the adapter lost more than 2 points on the guard set (code unlike yours), "
                   "so the server will not enable it: train longer, or on more code")
    elif report is None:
        message = "the adapter was not evaluated (no held-out files): try it and judge"
    elif guard_passed is None:
        message = "the adapter has no guard-set score (the guard data is missing)"
    else:
        message = "the adapter kept its score on the guard set"
    return {"adapter": summary["adapter"], "report": report,
            "guardPassed": guard_passed, "steps": summary.get("steps"),
            "tokensPerSecond": summary.get("tokens_per_second"),
            "stoppedBy": summary.get("stopped_by"), "message": message}
