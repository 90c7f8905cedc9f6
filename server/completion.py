"""`textDocument/inlineCompletion`: ghost text at the cursor, latest request wins.

The work is assist/completion's; this module turns the request into a call and the answer
into lsprotocol types.
"""

from __future__ import annotations

from lsprotocol import types

from assist.completion import CompletionSettings, complete_in_workspace
from server.app import SmallCoderServer
from server.model_host import ModelUnavailable
from server.protocol import cursor, path_of


def register(server: SmallCoderServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: SmallCoderServer, params: types.InlineCompletionParams
                                ) -> types.InlineCompletionList | None:
        """Latest wins: a newer request for the same document stops the older one at once,
        and a superseded answer is never shown."""
        if not ls.settings.inline_enabled:
            return None
        document = ls.document(params.text_document.uri)
        try:
            engine = ls.host.interactive_engine
        except ModelUnavailable:
            return None
        line, character = cursor(document, params.position)
        path = path_of(document.uri)
        settings = CompletionSettings(max_tokens=ls.settings.inline_max_tokens,
                                      time_budget_ms=ls.settings.inline_time_budget_ms)
        with ls.latest_request(document.uri) as token:
            completion = await ls.run_interactive(
                f"{document.uri}:{line + 1}:{character + 1}",
                lambda: complete_in_workspace(
                    ls.context, engine, document.source, line, character, path=path,
                    repo_name=ls.context.repo_name(path), settings=settings,
                    context_tokens=ls.settings.inline_context_tokens, cancel=token), token)
        if completion is None or token.cancelled or not completion.text:
            return None
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=completion.text,
            range=types.Range(start=params.position, end=params.position))])

