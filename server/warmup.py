"""Background work on the completion engine while the user reads or decides: warm the region
the editor says they are about to type in, finish evaluating the editor's own prompt after a
lean first answer, and compute the completion that follows accepting the suggestion shown.

One job at a time, the newest wins. A foreground completion pauses the job at once (within one
prompt slice or one generated token) and the job resumes after it: evaluation done so far is
kept in the engine's cache, so it is never done twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from assist.completion import (
    FIRST_ANSWER_PROMPT_BUDGET_MS,
    Completion,
    CompletionSettings,
    complete_in_workspace,
)
from model.engine import CancelToken, Engine
from server.app import SmallCoderServer

# What the background job is: a description for the status bar ("warming x.py:12", or None for
# work the user need not know about) and the work, run in a worker thread until it returns True
# (finished) or its token is cancelled.
Work = Callable[[CancelToken], bool]


@dataclass(frozen=True)
class Job:
    warming: str | None
    work: Work


@dataclass(frozen=True)
class Speculation:
    """The completion computed for a document as it will be once a suggestion is accepted."""

    uri: str
    text: str
    line: int
    character: int
    completion: Completion
    # The weights it was computed with: another model or adapter would answer otherwise.
    engine: Engine
    adapter: object


class Warmer:
    def __init__(self, ls: SmallCoderServer) -> None:
        self._ls = ls
        self._job: Job | None = None
        self._token = CancelToken()
        self._running: asyncio.Future | None = None
        # One worker thread of its own: a paused job ends within a slice and the next waits for
        # it here, never in the event loop's pool that foreground requests need.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smallcoder-warm")
        self.speculation: Speculation | None = None
        ls.on_exit.append(self.stop)
        ls.on_disk_change.append(self.forget_speculation)

    def start(self, job: Job) -> None:
        """Run `job` instead of whatever ran before."""
        self.pause()
        self._job = job
        self._ls.host.set_warming(job.warming)
        self.resume()

    def stop(self) -> None:
        """Stop the job and forget it."""
        self._job = None
        self._token.cancel()
        self._worker.shutdown(wait=False, cancel_futures=True)

    def pause(self) -> None:
        """Stop the job where it is (a foreground request needs the engine); it is kept."""
        self._token.cancel()

    def resume(self) -> None:
        job = self._job
        if job is None:
            return
        token = self._token = CancelToken()

        def run() -> None:
            finished = job.work(token)
            if finished and self._job is job:
                self._job = None
                self._ls.host.set_warming(None)

        self._running = asyncio.ensure_future(self._run(run))

    async def _run(self, run: Callable[[], None]) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._worker, run)
        except Exception as error:  # background work must never take the server down
            self._ls.log("warning", f"background warming failed: {error!r}")
            self._job = None
            self._ls.host.set_warming(None)

    def forget_speculation(self) -> None:
        self.speculation = None

    def speculated(self, uri: str, text: str, line: int, character: int,
                   engine: Engine) -> Completion | None:
        """The completion computed ahead for exactly this document and cursor, by the same
        weights, if any."""
        hit = self.speculation
        if hit is None or (hit.uri, hit.text, hit.line, hit.character, hit.engine,
                           hit.adapter) != (uri, text, line, character, engine,
                                            getattr(engine, "adapter", None)):
            return None
        self.speculation = None
        return hit.completion


def prefill_job(engine: Engine, prompts: Callable[[], Sequence[Sequence[int]]],
                warming: str | None) -> Job:
    """Evaluate the prompts `prompts()` builds (once, in the worker: packing and tokenizing
    are not for the event loop) into the engine's cache in turn, a slice at a time; a prompt
    the cache already holds, live or saved, is passed over. A foreground request pauses the
    job by its token, so it ends within one slice: it never waits for a turn (a job waiting
    while a foreground request waited for a thread was a deadlock)."""
    built: list[Sequence[Sequence[int]]] = []

    def work(token: CancelToken) -> bool:
        if not built:
            built.append(prompts())
        for prompt in built[0]:
            if engine.cached_prefix_tokens(prompt) >= len(prompt) - 1:
                continue
            if not engine.prefill(prompt, cancel=token).finished:
                return False
        return True

    return Job(warming, work)


def in_turn(jobs: Sequence[Job]) -> Job:
    """One job doing `jobs` one after the other; resumed, it starts again from the first
    unfinished one."""
    done: set[int] = set()

    def work(token: CancelToken) -> bool:
        for index, job in enumerate(jobs):
            if index in done:
                continue
            if not job.work(token):
                return False
            done.add(index)
        return True

    return Job(next((job.warming for job in jobs if job.warming), None), work)


def accepted(text: str, line: int, character: int, insert: str) -> tuple[str, int, int]:
    """The document and cursor after `insert` is accepted at (line, character)."""
    lines = text.split("\n")
    offset = sum(len(row) + 1 for row in lines[:line]) + character
    new_text = text[:offset] + insert + text[offset:]
    new_offset = offset + len(insert)
    new_line = new_text.count("\n", 0, new_offset)
    return new_text, new_line, new_offset - (new_text.rfind("\n", 0, new_offset) + 1)


def speculation_job(warmer: Warmer, engine: Engine, uri: str, path: str, text: str,
                    line: int, character: int, settings: CompletionSettings,
                    context_tokens: int) -> Job:
    """The completion after the suggestion at (line, character) is accepted, kept for the
    request that will ask for it."""
    ls = warmer._ls

    def work(token: CancelToken) -> bool:
        completion = complete_in_workspace(
            ls.context, engine, text, line, character, path=path,
            repo_name=ls.context.repo_name(path), settings=settings,
            context_tokens=context_tokens, cancel=token,
            prompt_budget_ms=FIRST_ANSWER_PROMPT_BUDGET_MS)
        if token.cancelled or completion.generation.finish_reason == "cancelled":
            return False
        warmer.speculation = Speculation(uri, text, line, character, completion, engine,
                                         getattr(engine, "adapter", None))
        ls.log("debug", f"computed ahead: the completion at {line + 1}:{character + 1} once "
                        f"the suggestion is accepted")
        return True

    return Job(None, work)
