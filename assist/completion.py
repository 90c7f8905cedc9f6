"""Inline completion: from a document and a cursor to the text an editor shows as ghost text.

Shared by `smallcoder complete` and the language server; pure apart from the engine call and
the workspace context it asks for cross-file chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from analyzers.completion_cut import (
    MAX_COMPLETION_LINES,
    CompletionPlan,
    plan_for_request,
)
from analyzers.syntax import language_for_path
from assist.workspace import WorkspaceContext
from model.engine import CancelToken, Engine, GenerationParams, GenerationResult
from model.prompts import ContextChunk, fim_prompt_tokens, fim_request_at

DEFAULT_MAX_TOKENS = 48
DEFAULT_TIME_BUDGET_MS = 1500.0


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

    def log_line(self) -> str:
        """How the server logs it (bench/lsp.py and bench/session.py read this line)."""
        generation = self.generation
        return (f"completion {self.latency_ms:.0f} ms, "
                f"{generation.evaluated_prompt_tokens}/{generation.prompt_tokens} "
                f"prompt tokens evaluated, {generation.generated_tokens} generated, "
                f"{generation.finish_reason}")


def plan_completion(text: str, line: int, character: int, *, path: str, repo_name: str,
                    settings: CompletionSettings = CompletionSettings(),
                    context: tuple[ContextChunk, ...] = ()) -> CompletionPlan:
    request = fim_request_at(text, line, character, repo_name=repo_name, path=path,
                             context=context)
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
) -> Completion:
    """Complete `text` at the 0-based (line, character) cursor."""
    start = time.perf_counter()
    plan = plan_completion(text, line, character, path=path, repo_name=repo_name,
                           settings=settings, context=context)
    params = GenerationParams(max_tokens=settings.max_tokens,
                              time_budget_ms=settings.time_budget_ms)
    result = engine.generate(fim_prompt_tokens(plan.request, engine), params, cancel=cancel,
                             stop_rule=plan.stop_rule)
    insert = plan.finish(result.text, complete=result.finish_reason in ("stop", "eos"))
    return Completion(insert, result, (time.perf_counter() - start) * 1e3)


def _offset(text: str, line: int, character: int) -> int:
    lines = text.split("\n")
    return sum(len(row) + 1 for row in lines[:line]) + character


def complete_in_workspace(workspace: WorkspaceContext, engine: Engine, text: str, line: int,
                          character: int, *, path: str, repo_name: str,
                          settings: CompletionSettings, context_tokens: int,
                          cancel: CancelToken | None = None) -> Completion:
    """`complete_at` with the workspace's cross-file chunks ahead of the FIM prefix."""
    chunks = workspace.completion_context(path, text, line, context_tokens, engine.count_tokens)
    return complete_at(engine, text, line, character, path=workspace.prompt_path(path),
                       repo_name=repo_name, settings=settings, context=chunks, cancel=cancel)
