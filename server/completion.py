"""`textDocument/inlineCompletion` and `smallcoder/prefill`: ghost text at the cursor, latest
request wins, and the prompt of the region the user is about to type in evaluated ahead.

The work is assist/completion's; the background machinery is server/warmup's. This module turns
requests into calls on them and answers into lsprotocol types.
"""

from __future__ import annotations

import functools
from typing import Any

from lsprotocol import types
from pygls.workspace import TextDocument

from assist.completion import (
    FIRST_ANSWER_PROMPT_BUDGET_MS,
    Completion,
    CompletionSettings,
    complete_in_workspace,
    warming_prompts,
)
from model.engine import Engine
from server.app import SmallCoderServer
from server.model_host import ModelUnavailable
from server.protocol import cursor, open_document, path_of, text_position
from server.warmup import Warmer, accepted, in_turn, prefill_job, speculation_job

PREFILL_METHOD = "smallcoder/prefill"


def register(server: SmallCoderServer) -> None:
    warmer = Warmer(server)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: SmallCoderServer, params: types.InlineCompletionParams
                                ) -> types.InlineCompletionList | None:
        """Latest wins: a newer request for the same document stops the older one at once,
        and a superseded answer is never shown. Background work pauses meanwhile."""
        if (why := ls.why_no_completion(params.text_document.uri)) is not None:
            ls.log("debug", f"no completion in {params.text_document.uri}: {why}")
            return None
        document = ls.document(params.text_document.uri)
        try:
            engine = ls.host.interactive_engine
        except ModelUnavailable:
            return None
        line, character = cursor(document, params.position)
        await ls.disk_changes_read()
        warmer.pause()
        completion = None
        try:
            completion = await _answer(ls, warmer, engine, document, line, character)
        finally:
            if completion is None:
                warmer.resume()
            else:
                _after_answer(ls, warmer, engine, document, line, character, completion)
        if completion is None or not completion.text:
            return None
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=completion.text,
            range=types.Range(start=params.position, end=params.position))])

    @server.feature(PREFILL_METHOD)
    def prefill(ls: SmallCoderServer, params: Any) -> None:
        """The editor says where the user is about to type (a file opened or switched to, a
        jump): evaluate that region's prompt while they read, so the first suggestion there
        costs only what they typed."""
        uri, position = text_position(params)
        if open_document(ls.workspace, uri) is None or not ls.completes_in(uri):
            return
        try:
            engine = ls.host.interactive_engine
        except ModelUnavailable:
            return
        document = ls.document(uri)
        line, character = cursor(document, position)
        region = f"{ls.context.prompt_path(path_of(uri))}:{line + 1}"
        ls.log("info", f"warming {region}")
        prompts = functools.partial(warming_prompts, ls.context, engine, document.source,
                                    line, character, path=path_of(uri),
                                    repo_name=ls.context.repo_name(path_of(uri)),
                                    settings=_settings(ls),
                                    context_tokens=ls.settings.inline_context_tokens)
        warmer.start(prefill_job(engine, prompts, region))


async def _answer(ls: SmallCoderServer, warmer: Warmer, engine: Engine, document: TextDocument,
                  line: int, character: int) -> Completion | None:
    """The speculated completion when it was made for exactly this text and cursor, else a
    fresh one within the first-answer budget; None when superseded or impossible."""
    completion = warmer.speculated(document.uri, document.source, line, character, engine)
    if completion is not None:
        ls.log("debug", f"{completion.log_line()}, speculated")
        return completion
    path = path_of(document.uri)
    with ls.latest_request(document.uri) as token:
        completion = await ls.run_interactive(
            f"{document.uri}:{line + 1}:{character + 1}",
            lambda: complete_in_workspace(
                ls.context, engine, document.source, line, character, path=path,
                repo_name=ls.context.repo_name(path), settings=_settings(ls),
                context_tokens=ls.settings.inline_context_tokens, cancel=token,
                prompt_budget_ms=FIRST_ANSWER_PROMPT_BUDGET_MS), token)
    return None if token.cancelled else completion


def _settings(ls: SmallCoderServer) -> CompletionSettings:
    return CompletionSettings(max_tokens=ls.settings.inline_max_tokens,
                              time_budget_ms=ls.settings.inline_time_budget_ms)


def _after_answer(ls: SmallCoderServer, warmer: Warmer, engine: Engine,
                  document: TextDocument, line: int, character: int,
                  completion: Completion) -> None:
    """What the engine does next while the user reads the suggestion: compute what follows
    accepting it, then warm the richer windows when a leaner one answered."""
    jobs = []
    if completion.text:
        text, next_line, next_character = accepted(document.source, line, character,
                                                   completion.text)
        jobs.append(speculation_job(warmer, engine, document.uri, path_of(document.uri),
                                    text, next_line, next_character, _settings(ls),
                                    ls.settings.inline_context_tokens))
    if completion.warm_next:
        prompts = completion.warm_next
        jobs.append(prefill_job(engine, lambda: prompts, None))
    if jobs:
        warmer.start(in_turn(jobs))
    else:
        warmer.resume()
