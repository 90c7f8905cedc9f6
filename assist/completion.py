"""Inline completion: from a document and a cursor to the text an editor shows as ghost text.

Shared by `smallcoder complete` and the language server; pure apart from the engine call and
the workspace context it asks for cross-file chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from analyzers.completion_cut import (
    MAX_COMPLETION_LINES,
    CompletionPlan,
    plan_for_request,
)
from analyzers.syntax import language_for_path
from assist.workspace import WorkspaceContext
from model.engine import CancelToken, Engine, GenerationParams, GenerationResult
from model.prompts import (
    PREFIX_LINES,
    PREFIX_STRIDE_LINES,
    SUFFIX_LINES,
    ContextChunk,
    FimRequest,
    fim_prompt_tokens,
    fim_request_at,
)

DEFAULT_MAX_TOKENS = 48
DEFAULT_TIME_BUDGET_MS = 1500.0
# Prompt evaluation a first answer may spend when the cache does not hold its prompt (after a
# jump, a switch, opening a file): a leaner window answers at once, and the editor's own window
# is warmed in the background for the requests that follow.
FIRST_ANSWER_PROMPT_BUDGET_MS = 700.0


@dataclass(frozen=True)
class Window:
    """How much a FIM prompt shows: lines before and after the cursor, other files or not."""

    prefix_lines: int
    suffix_lines: int
    with_context: bool
    # The prefix starts on a multiple of this many lines (model/prompts.py: the prompt head
    # stays put while the cursor moves down); a lean window keeps a grid of its own size.
    stride_lines: int = PREFIX_STRIDE_LINES


FULL_WINDOW = Window(PREFIX_LINES, SUFFIX_LINES, True)
# Leaner windows, richest first, for answers the cache cannot serve in time.
LEAN_WINDOWS = (Window(64, 16, False, 16), Window(16, 8, False, 4), Window(4, 2, False, 1))
# The order in which a region is warmed, leanest first: on a slow CPU the editor's own window
# (3-4k tokens) takes a minute to evaluate, and each leaner one is ready for the next keystroke
# long before it is, so the suggestions grow richer while the user types.
WARMING_LADDER = (*reversed(LEAN_WINDOWS), FULL_WINDOW)


@dataclass(frozen=True)
class CompletionSettings:
    max_tokens: int = DEFAULT_MAX_TOKENS
    time_budget_ms: float | None = DEFAULT_TIME_BUDGET_MS
    max_lines: int = MAX_COMPLETION_LINES


@dataclass(frozen=True)
class Completion:
    """What to insert at the cursor (may be empty: show nothing) and how it was made."""

    text: str
    generation: GenerationResult
    latency_ms: float
    # The prompts of the richer windows a leaner one answered for, leanest first: worth
    # evaluating in the background, in this order (the editor's own prompt comes last).
    warm_next: tuple[tuple[int, ...], ...] = ()

    def log_line(self) -> str:
        """How the server logs it (bench/lsp.py and bench/session.py read this line)."""
        generation = self.generation
        return (f"completion {self.latency_ms:.0f} ms, "
                f"{generation.evaluated_prompt_tokens}/{generation.prompt_tokens} "
                f"prompt tokens evaluated, {generation.generated_tokens} generated, "
                f"{generation.finish_reason}")


def plan_completion(text: str, line: int, character: int, *, path: str, repo_name: str,
                    settings: CompletionSettings = CompletionSettings(),
                    context: tuple[ContextChunk, ...] = (),
                    window: Window = FULL_WINDOW) -> CompletionPlan:
    request = fim_request_at(text, line, character, repo_name=repo_name, path=path,
                             context=context if window.with_context else (),
                             prefix_lines=window.prefix_lines, suffix_lines=window.suffix_lines,
                             stride_lines=window.stride_lines)
    return plan_for_request(request, document=text, offset=_offset(text, line, character),
                            language=language_for_path(path), max_lines=settings.max_lines)


def complete_at(
    engine: Engine,
    text: str,
    line: int,
    character: int,
    *,
    path: str,
    repo_name: str,
    settings: CompletionSettings = CompletionSettings(),
    context: tuple[ContextChunk, ...] = (),
    cancel: CancelToken | None = None,
    window: Window = FULL_WINDOW,
) -> Completion:
    """Complete `text` at the 0-based (line, character) cursor."""
    start = time.perf_counter()
    plan = plan_completion(text, line, character, path=path, repo_name=repo_name,
                           settings=settings, context=context, window=window)
    return _generate(engine, plan, fim_prompt_tokens(plan.request, engine), settings, cancel,
                     start)


def _generate(engine: Engine, plan: CompletionPlan, prompt: list[int],
              settings: CompletionSettings, cancel: CancelToken | None,
              start: float) -> Completion:
    params = GenerationParams(max_tokens=settings.max_tokens,
                              time_budget_ms=settings.time_budget_ms,
                              first_token_not_newline=_at_blank_line(plan.request))
    result = engine.generate(prompt, params, cancel=cancel, stop_rule=plan.stop_rule)
    insert = plan.finish(result.text, complete=result.finish_reason in ("stop", "eos"))
    return Completion(insert, result, (time.perf_counter() - start) * 1e3)


def _at_blank_line(request: FimRequest) -> bool:
    """At a line with nothing but indentation, a newline first would suggest nothing at all
    (about 1 completion in 20 did): the line is there to be written."""
    return not request.line_prefix and not request.suffix.split("\n", 1)[0].strip()


def _offset(text: str, line: int, character: int) -> int:
    lines = text.split("\n")
    return sum(len(row) + 1 for row in lines[:line]) + character


def complete_in_workspace(workspace: WorkspaceContext, engine: Engine, text: str, line: int,
                          character: int, *, path: str, repo_name: str,
                          settings: CompletionSettings, context_tokens: int,
                          cancel: CancelToken | None = None,
                          prompt_budget_ms: float | None = None) -> Completion:
    """`complete_at` with the workspace's cross-file chunks ahead of the FIM prefix.

    With `prompt_budget_ms`, a prompt the cache cannot serve within it is answered from the
    richest leaner window that fits, and the richer prompts are handed back to be warmed."""
    start = time.perf_counter()
    plan = workspace_plan(workspace, engine, text, line, character, path=path,
                          repo_name=repo_name, settings=settings, context_tokens=context_tokens)
    prompt, passed_over = fim_prompt_tokens(plan.request, engine), ()
    if prompt_budget_ms is not None:
        plan, prompt, passed_over = _fitting(engine, plan, prompt, prompt_budget_ms, settings)
    completion = _generate(engine, plan, prompt, settings, cancel, start)
    return replace(completion, warm_next=passed_over) if passed_over else completion


def warming_prompts(workspace: WorkspaceContext, engine: Engine, text: str, line: int,
                    character: int, *, path: str, repo_name: str,
                    settings: CompletionSettings, context_tokens: int) -> list[list[int]]:
    """The prompts of WARMING_LADDER's windows at a cursor, leanest first: what warming a
    region evaluates, each ready for a completion as soon as it is held."""
    prompts = [fim_prompt_tokens(plan_completion(text, line, character,
                                                 path=workspace.prompt_path(path),
                                                 repo_name=repo_name, settings=settings,
                                                 window=window).request, engine)
               for window in WARMING_LADDER[:-1]]
    full = workspace_plan(workspace, engine, text, line, character, path=path,
                          repo_name=repo_name, settings=settings, context_tokens=context_tokens)
    return [*prompts, fim_prompt_tokens(full.request, engine)]


def workspace_plan(workspace: WorkspaceContext, engine: Engine, text: str, line: int,
                   character: int, *, path: str, repo_name: str,
                   settings: CompletionSettings, context_tokens: int) -> CompletionPlan:
    """The plan of the editor's own window, cross-file chunks ahead: what a completion here
    sends, and what warming the region evaluates."""
    chunks = workspace.completion_context(path, text, line, context_tokens, engine.count_tokens)
    return plan_completion(text, line, character, path=workspace.prompt_path(path),
                           repo_name=repo_name, settings=settings, context=chunks)


def _fitting(engine: Engine, plan: CompletionPlan, prompt: list[int], budget_ms: float,
             settings: CompletionSettings
             ) -> tuple[CompletionPlan, list[int], tuple[tuple[int, ...], ...]]:
    """The richest window whose uncached prompt the engine evaluates within `budget_ms`, and
    the prompts of the richer windows passed over, leanest first."""
    speed = engine.prompt_tokens_per_second
    request = plan.request
    path, document, offset = request.path, plan.document, plan.offset
    line = document.count("\n", 0, offset)
    character = offset - (document.rfind("\n", 0, offset) + 1)
    passed_over: list[tuple[int, ...]] = []
    for window in LEAN_WINDOWS:
        if _cost_ms(engine, prompt, speed) <= budget_ms:
            break
        passed_over.insert(0, tuple(prompt))
        plan = plan_completion(document, line, character, path=path,
                               repo_name=request.repo_name, settings=settings, window=window)
        prompt = fim_prompt_tokens(plan.request, engine)
    return plan, prompt, tuple(passed_over)


def _cost_ms(engine: Engine, prompt: list[int], tokens_per_second: float | None) -> float:
    if not tokens_per_second:
        return 0.0
    uncached = len(prompt) - engine.cached_prefix_tokens(prompt)
    return uncached * 1000.0 / tokens_per_second
