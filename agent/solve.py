"""The fix-until-tests-pass loop: propose whole functions, verify with the tests, keep or revert.

Everything happens in a scratch copy; the result carries the diff and the new file texts for
the user to review, and a JSONL transcript is kept under $SMALLCODER_HOME/transcripts/.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.context import (
    CONTEXT_BUDGET_TOKENS,
    Coverage,
    FailureContext,
    gather_context,
    is_test_file,
)
from agent.failures import Failure
from agent.isolation import isolation_description, isolation_name
from agent.limits import DEFAULT_MEMORY_LIMIT_BYTES
from agent.proposals import (
    Proposal,
    ProposalError,
    apply_proposal,
    closing_fence,
    full_reply,
    parse_proposal,
    proposal_prompt,
    reply_budget_tokens,
    reply_start,
)
from agent.reports import environment_problem
from agent.runner import (
    Limits,
    TestCommand,
    TestRun,
    find_program,
    run_tests,
)
from agent.sandbox import (
    DEFAULT_MAX_COPY_BYTES,
    FileChange,
    Sandbox,
    SandboxError,
    unified_diff,
)
from agent.transcript import RoundTime, Transcript, run_record
from analyzers.index import WorkspaceIndex
from model import chat
from model.engine import CancelToken, Engine, GenerationParams, GenerationResult

DEFAULT_ROUNDS = 6
DEFAULT_WALL_TIME_S = 300.0
DEFAULT_CANDIDATES = 3
# Draws per round at most, as a multiple of the candidates that are tested.
WASTED_DRAWS_FACTOR = 2
DEFAULT_TEST_TIMEOUT_S = 60.0
REPLY_MAX_TOKENS = 1024
SAMPLING_TEMPERATURE = 0.7
# Room in the model's context for the prompt's own words and the chat template.
PROMPT_MARGIN_TOKENS = 512
# Another run of a failing command that is not pytest (which reruns only the failing tests),
# to tell a flaky test from a bug, when the whole run is at most this long.
FLAKY_RERUN_MAX_S = 20.0
SYSTEM_PROMPT = "You are SmallCoder, a precise coding assistant that fixes bugs."


@dataclass(frozen=True)
class Budget:
    max_rounds: int = DEFAULT_ROUNDS
    wall_time_s: float = DEFAULT_WALL_TIME_S
    candidates_per_round: int = DEFAULT_CANDIDATES
    test_timeout_s: float = DEFAULT_TEST_TIMEOUT_S
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES
    context_tokens: int = CONTEXT_BUDGET_TOKENS
    reply_max_tokens: int = REPLY_MAX_TOKENS
    max_copy_bytes: int = DEFAULT_MAX_COPY_BYTES


@dataclass(frozen=True)
class SolveResult:
    # "solved" | "already-passing" | "unsolved" | "out-of-time" | "cancelled" | "flaky"
    status: str
    rounds: int
    failing_before: int
    failing_after: int
    changes: tuple[FileChange, ...]
    diff: str
    transcript: Path
    duration_s: float
    message: str
    isolation: str = "none"  # how the test command was confined (agent.isolation)
    notes: tuple[str, ...] = ()  # what the copy left out or copied in place of a link
    times: tuple[RoundTime, ...] = ()  # per round, round 0 first
    flaky: tuple[str, ...] = ()  # failing tests that passed on a rerun with nothing changed

    @property
    def green(self) -> bool:
        return self.status in ("solved", "already-passing")

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "rounds": self.rounds,
                "failingBefore": self.failing_before, "failingAfter": self.failing_after,
                "diff": self.diff, "files": {change.path: change.new_text
                                             for change in self.changes},
                "transcript": str(self.transcript), "durationS": round(self.duration_s, 1),
                "message": self.message, "isolation": self.isolation,
                "notes": list(self.notes), "times": [t.to_json() for t in self.times],
                "flaky": list(self.flaky)}


class _Loop:
    """One solve: the state the steps share, so that each step reads as one thing."""

    def __init__(self, sandbox: Sandbox, command: TestCommand, budget: Budget, engine: Engine,
                 cancel: CancelToken, yield_turn: Callable[[], None] | None,
                 on_progress: Callable[[str], None], transcript: Transcript) -> None:
        self.sandbox, self.command, self.budget, self.engine = sandbox, command, budget, engine
        self.cancel, self.yield_turn, self.progress = cancel, yield_turn, on_progress
        self.transcript = transcript
        self.deadline = time.monotonic() + budget.wall_time_s
        self.seen: set[tuple] = set()
        self._located: tuple[TestRun, tuple[Failure, ...]] | None = None
        self.times = [RoundTime(0)]
        self.coverage: Coverage = {}
        self.flaky: frozenset[str] = frozenset()
        self._index: WorkspaceIndex | None = None

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def stopped(self) -> bool:
        return self.cancel.cancelled or self.remaining_s() <= 0

    def test(self, only: tuple[str, ...] = (), stop_at_first_failure: bool = False,
             trace: bool = False) -> TestRun:
        limits = Limits(timeout_s=max(1.0, min(self.budget.test_timeout_s, self.remaining_s())),
                        memory_bytes=self.budget.memory_limit_bytes)
        run = run_tests(self.command, self.sandbox.root, limits=limits, only=only,
                        stop_at_first_failure=stop_at_first_failure, cancel=self.cancel,
                        shared_folders=self.sandbox.shared_folders, trace=trace)
        self.times[-1].tests_ms += run.duration_s * 1e3
        return run

    def localise(self, baseline: TestRun) -> bool:
        """Run the failing tests once more before any edit: traced when pytest runs them (which
        functions they run, for the ranking), and to tell a flaky test (it passes now, with
        nothing changed) from a bug. Other runners rerun the whole command when it is short.
        True when every failing test is flaky: there is nothing to fix."""
        if self.stopped() or baseline.timed_out:
            return False
        if self.command.is_pytest:
            rerun = self.test(self._quick_ids(baseline), trace=True)
            self.coverage = rerun.covered
        elif baseline.duration_s <= FLAKY_RERUN_MAX_S:
            rerun = self.test()
        else:
            return False
        if not (rerun.cancelled or rerun.timed_out or rerun.build_failed):
            self.flaky = baseline.failing_ids - rerun.failing_ids
        self.transcript.write("localised", flaky=sorted(self.flaky),
                              covered={test: [list(item) for item in found]
                                       for test, found in self.coverage.items()})
        return bool(self.flaky) and self.flaky == baseline.failing_ids

    def context(self, current: TestRun) -> FailureContext:
        """The prompt's context for `current`, from an index of the copy kept current."""
        if self._index is None:
            self._index = WorkspaceIndex(self.sandbox.root)
        self._index.refresh()
        self._index.prepare_lookups()
        room = self.engine.context_tokens - self.budget.reply_max_tokens - PROMPT_MARGIN_TOKENS
        return gather_context(self.sandbox.root, self.failures_to_show(current),
                              self.engine.count_tokens, min(self.budget.context_tokens, room),
                              coverage=self.coverage, index=self._index)

    def failures_to_show(self, current: TestRun) -> tuple[Failure, ...]:
        """What the model is shown of `current`.

        A pytest run killed at its timeout wrote no report, so nothing says which function to
        fix. A second run that stops at the first failure names the test that hangs and (with
        pytest-timeout, or an assertion) where it was. It only informs the prompt: whether a
        change helps is still judged against the whole run.
        """
        if not (current.timed_out and self.command.is_pytest):
            return current.failures
        if self._located is None or self._located[0] is not current:
            located = () if self.stopped() else self.test(stop_at_first_failure=True).failures
            self.transcript.write("located", failing=[f.test_id for f in located])
            self._located = (current, located)
        return current.failures + tuple(failure for failure in self._located[1]
                                        if failure.test_id != str(self.command))

    def ask(self, prompt: str, context: FailureContext, candidate: int,
            round_number: int) -> str:
        # Only the very first answer is greedy: the others sample, so that they differ from it
        # (a greedy answer after feedback mostly repeats the first one).
        reply, result = ask_for_proposal_timed(
            self.engine, prompt, context, candidate=candidate,
            greedy=candidate == 0 and round_number == 1,
            seed=round_number * 100 + candidate, max_tokens=self.budget.reply_max_tokens,
            time_budget_ms=max(1.0, self.remaining_s()) * 1e3, cancel=self.cancel,
            yield_turn=self.yield_turn)
        self.times[-1].add_generation(result)
        return reply

    def verify(self, proposal: Proposal, current: TestRun) -> tuple[TestRun | None, str]:
        """Apply in the copy and test: the failing tests first, then the whole suite.
        Returns the full run when the change strictly helps, else None and why not;
        the copy is left as it was either way."""
        tests = sorted({item.path for item in proposal.replacements if is_test_file(item.path)})
        if tests:  # the tests say what is right: a change to them is never a fix
            return None, f"it edits {', '.join(tests)}: change the code, not the tests"
        before = {item.path: self.sandbox.read(item.path) for item in proposal.replacements}
        try:
            apply_proposal(proposal, self.sandbox.read, self.sandbox.write)
            quick_ids = self._quick_ids(current)
            if quick_ids:
                quick = self.test(quick_ids)
                if not self.cancel.cancelled and not quick.better_than(current):
                    return None, _why_not(current, quick)
            run = self.test()
            if run.better_than(current):
                return run, ""
            return None, _why_not(current, run)
        except (ProposalError, SandboxError) as error:
            return None, str(error)
        finally:
            for path, text in before.items():
                if self.sandbox.read(path) != text:  # a refused write left it as it was
                    self.sandbox.write(path, text)

    def _quick_ids(self, current: TestRun) -> tuple[str, ...]:
        return failing_test_ids(self.command, self.sandbox.root, current)

    def round(self, number: int, current: TestRun, feedback: str
              ) -> tuple[TestRun | None, Proposal | None, str]:
        """Ask for candidates and verify each; the best strict improvement, or the feedback."""
        self.times.append(RoundTime(number))
        context = self.context(current)
        if not context.editable:
            return None, None, ""
        prompt = proposal_prompt(context, feedback)
        best: tuple[TestRun, Proposal] | None = None
        last_problem, last_code = "", ""
        tested = 0
        # A reply that changes nothing, or repeats a tried change, costs a few seconds and no
        # test run: another is drawn in its place, up to a limit.
        for candidate in range(WASTED_DRAWS_FACTOR * self.budget.candidates_per_round):
            started = time.monotonic()
            if self.stopped() or tested == self.budget.candidates_per_round:
                break
            reply = self.ask(prompt, context, candidate, number)
            record = {"round": number, "candidate": candidate, "prompt": prompt,
                      "output": reply}
            if self.cancel.cancelled:
                self.transcript.write("proposal", **record, verdict="cancelled")
                break
            try:
                proposal = parse_proposal(reply, context)
            except ProposalError as error:
                self.transcript.write("proposal", **record, verdict="unusable",
                                      reason=str(error))
                if not last_code:  # a tried change's test result says more
                    last_problem = str(error)
                continue
            if proposal.key in self.seen:
                self.transcript.write("proposal", **record, verdict="repeated")
                if not last_code:
                    last_problem, last_code = ("it was the same as an earlier attempt",
                                               proposal.as_code())
                continue
            self.seen.add(proposal.key)
            tested += 1
            run, problem = self.verify(proposal, current)
            self.transcript.write("proposal", **record, verdict="kept" if run else "reverted",
                                  reason=problem, tests=run_record(run) if run else None)
            if run is not None and (best is None or (run.build_failed, len(run.failing_ids))
                                    < (best[0].build_failed, len(best[0].failing_ids))):
                best = run, proposal
            elif run is None:
                last_problem, last_code = problem, proposal.as_code()
            if best is not None and best[0].passed:
                break
            # Another candidate only when it would likely finish within the time left.
            if time.monotonic() - started > self.remaining_s():
                break
        if best is not None:
            return best[0], best[1], ""
        return None, None, _feedback(last_code, last_problem)


def ask_for_proposal(engine: Engine, prompt: str, context: FailureContext, *,
                     candidate: int = 0, greedy: bool = True, seed: int = 0,
                     max_tokens: int = REPLY_MAX_TOKENS,
                     time_budget_ms: float | None = None, cancel: CancelToken | None = None,
                     yield_turn: Callable[[], None] | None = None) -> str:
    """One answer to `prompt`, its start written for the model (see `reply_start`)."""
    return ask_for_proposal_timed(engine, prompt, context, candidate=candidate, greedy=greedy,
                                  seed=seed, max_tokens=max_tokens,
                                  time_budget_ms=time_budget_ms, cancel=cancel,
                                  yield_turn=yield_turn)[0]


def ask_for_proposal_timed(engine: Engine, prompt: str, context: FailureContext, *,
                           candidate: int = 0, greedy: bool = True, seed: int = 0,
                           max_tokens: int = REPLY_MAX_TOKENS,
                           time_budget_ms: float | None = None,
                           cancel: CancelToken | None = None,
                           yield_turn: Callable[[], None] | None = None
                           ) -> tuple[str, GenerationResult]:
    """`ask_for_proposal`, with the generation's timings and token counts. The reply ends at
    the fence that closes its code block (`closing_fence`): nothing after the edit is paid for."""
    start = reply_start(context, candidate)
    params = GenerationParams(
        max_tokens=reply_budget_tokens(context, engine.count_tokens, max_tokens),
        time_budget_ms=time_budget_ms,
        temperature=0.0 if greedy else SAMPLING_TEMPERATURE, seed=seed)
    result = chat.ask(engine, SYSTEM_PROMPT, prompt, params, reply_start=start, cancel=cancel,
                      stop_rule=closing_fence, yield_turn=yield_turn)
    return full_reply(start, result.text), result


def solve(workspace: Path, test_command: str, budget: Budget = Budget(), *, engine: Engine,
          cancel: CancelToken | None = None, yield_turn: Callable[[], None] | None = None,
          on_progress: Callable[[str], None] | None = None) -> SolveResult:
    """Edit a scratch copy of `workspace` until `test_command` passes or the budget is spent.

    The workspace itself is never written; the result says what would change.
    """
    started = time.monotonic()
    command = TestCommand.parse(test_command)
    find_program(command, Path(workspace))
    cancel, progress = cancel or CancelToken(), on_progress or (lambda _message: None)
    transcript = Transcript(Path(workspace))
    transcript.write("start", workspace=str(workspace), test_command=str(command),
                     model=engine.name, budget=budget.__dict__)
    with Sandbox(Path(workspace), budget.max_copy_bytes) as sandbox:
        _announce_copy(sandbox, transcript, progress)
        loop = _Loop(sandbox, command, budget, engine, cancel, yield_turn, progress, transcript)
        baseline = current = loop.test()
        transcript.write("tests", round=0, **run_record(baseline))
        status, rounds, message = "unsolved", 0, ""
        if (no_edit := _no_edit_to_try(loop, baseline)) is not None:
            status, message = no_edit
        else:
            progress(f"round 0: {len(baseline.failing_ids)} failing")
            feedback = ""
            for number in range(1, budget.max_rounds + 1):
                if loop.stopped():
                    break
                rounds = number
                improved, proposal, feedback = loop.round(number, current, feedback)
                if improved is not None and proposal is not None:
                    apply_proposal(proposal, sandbox.read, sandbox.write)
                    progress(f"round {number}: {len(current.failing_ids)} → "
                             f"{len(improved.failing_ids)} failing")
                    transcript.write("kept", round=number, tests=run_record(improved))
                    current = improved
                    if current.passed:
                        status = "solved"
                        break
                elif not feedback:
                    message = _nothing_to_edit(current)
                    break
                else:
                    progress(f"round {number}: {len(current.failing_ids)} failing, "
                             f"no candidate helped")
            if status != "solved":
                status = ("cancelled" if cancel.cancelled else
                          "out-of-time" if loop.remaining_s() <= 0 else "unsolved")
        changes = tuple(sandbox.changes())
    result = SolveResult(status, rounds, len(baseline.failing_ids), len(current.failing_ids),
                         changes, unified_diff(list(changes)), transcript.path,
                         time.monotonic() - started, message or _summary(status, current),
                         isolation_name(), tuple(sandbox.notes), tuple(loop.times),
                         tuple(sorted(loop.flaky)))
    transcript.write("end", status=status, rounds=rounds, diff=result.diff,
                     failing=sorted(current.failing_ids))
    return result


def _announce_copy(sandbox: Sandbox, transcript: Transcript,
                   progress: Callable[[str], None]) -> None:
    """Say what the copy left out or copied in place of a link, and how the tests are confined."""
    isolation = isolation_description()
    transcript.write("copy", isolation=isolation, notes=sandbox.notes)
    for note in sandbox.notes:
        progress(note)
    progress(f"running the tests (isolation: {isolation})")


def _no_edit_to_try(loop: _Loop, baseline: TestRun) -> tuple[str, str] | None:
    """The status and message of a solve that edits nothing: the tests pass, it was cancelled,
    they need a service that is not there, or they are flaky. None: localised, go on."""
    if baseline.passed:
        return "already-passing", "the tests already pass"
    if baseline.cancelled:
        return "cancelled", ""
    if message := _environment_problem(baseline):
        loop.transcript.write("environment", message=message)
        return "unsolved", message
    if loop.localise(baseline):
        return "flaky", _flaky_message(loop.flaky)
    return None


def _flaky_message(flaky: frozenset[str]) -> str:
    return (f"{', '.join(sorted(flaky)[:3])} failed, then passed when run again with nothing "
            f"changed: flaky, not a bug an edit can be shown to fix; make it deterministic "
            f"(time, order, randomness, shared state) and solve again")


def _environment_problem(run: TestRun) -> str:
    """Why no code is edited when every failing test wanted the network or a service."""
    problems = [environment_problem(failure) for failure in run.failures]
    if run.passed or not all(problems):
        return ""
    return (f"the failing tests need the network or a service that is not there where the agent "
            f"runs them ({problems[0]}): that is not a bug to fix in the code; run them where "
            f"the service is reachable")


def _nothing_to_edit(run: TestRun) -> str:
    """Why the agent stops: nothing of the workspace was found from what the tests said."""
    ids = ", ".join(sorted(run.failing_ids)[:3])
    said = [line.strip() for line in run.failures[0].message.strip().splitlines()
            if line.strip()][:3]
    return (f"no function of the workspace shows up in the failing tests ({ids}) nor in what "
            f"they call; they say: " + " / ".join(said))


def _why_not(current: TestRun, run: TestRun) -> str:
    new = sorted(run.failing_ids - current.failing_ids)
    if run.cancelled:
        return "cancelled"
    if new:
        shown = "\n".join(failure.message for failure in run.failures
                          if failure.test_id in new)[:1500]
        return f"it made tests fail that passed before ({', '.join(new)}):\n{shown}"
    still = "\n".join(failure.message for failure in run.failures)[:1500]
    return f"the same tests still fail:\n{still}"


def _feedback(code: str, problem: str) -> str:
    if not problem:
        return "No usable answer yet."
    if not code:
        return f"Your previous answer could not be used: {problem}."
    return (f"Your previous answer was tried and reverted:\n```\n{code}\n```\nResult: {problem}"
            f"\nWrite a different fix.")


def _summary(status: str, current: TestRun) -> str:
    failing = len(current.failing_ids)
    return {"solved": "the tests pass with the proposed change",
            "cancelled": "cancelled",
            "out-of-time": f"the time budget ran out with {failing} test(s) failing",
            }.get(status, f"{failing} test(s) still failing after the rounds allowed")


def failing_test_ids(command: TestCommand, root: Path, run: TestRun) -> tuple[str, ...]:
    """pytest node ids of the failing tests of `run`, when the command lets us add them and
    each names a file of the copy at `root`; else nothing (the whole command runs)."""
    if not command.is_pytest or command.pytest_selects_tests:
        return ()
    ids = tuple(sorted(run.failing_ids))
    if not all("::" in test_id and (root / test_id.split("::")[0]).is_file() for test_id in ids):
        return ()
    return ids
