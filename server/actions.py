"""Code actions and the explain / refactor requests: LSP in, assist/actions out.

The refactor's edit is computed on `codeAction/resolve`, so offering the action costs nothing,
and is offered only once the rewrite passed its checks (`assist/checks.py`: callers, the
workspace's linters, its tests in a scratch copy when a test command is set);
both run on the long-job engine, cancellable, and yield to completions between tokens. While
the model writes, the requests report on the client's `partialResultToken`: the explanation so
far, or how many tokens the refactor has generated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.workspace import TextDocument

from analyzers.completion_cut import SYNTAX_CHECK_MAX_CHARACTERS
from analyzers.functions import enclosing_function
from assist import actions, explain
from assist.accepted import refactor_change
from model.engine import CancelToken
from server.app import SmallCoderServer
from server.model_host import ModelUnavailable
from server.protocol import (
    cursor,
    field,
    language_of,
    optional_field,
    path_of,
    span_range,
    text_position,
)

REFACTOR_TITLE = "Refactor this function"
EXPLAIN_TITLE = "Explain this function"
EXPLAIN_COMMAND = "smallcoder.explainFunction"
# Partial results go out at most this often: the client re-renders on each one.
PARTIAL_RESULT_INTERVAL_S = 0.1
# Finding the function means parsing the whole file on the event loop, with the GIL held
# (a 6 MB file: 3.5 s, every request waiting): larger files, data dumps, are not parsed.
MAX_PARSED_CHARACTERS = SYNTAX_CHECK_MAX_CHARACTERS


def register(server: SmallCoderServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.RefactorRewrite], resolve_provider=True))
    def code_actions(ls: SmallCoderServer, params: types.CodeActionParams
                     ) -> list[types.CodeAction] | None:
        """Offered only inside a function; the refactor's edit is computed on resolve."""
        document = ls.document(params.text_document.uri)
        if len(document.source) > MAX_PARSED_CHARACTERS:
            return None  # asked at every cursor move: no answer rather than a stall
        language = language_of(document)
        line, character = cursor(document, params.range.start)
        if language is None or enclosing_function(document.source, language, line,
                                                  character) is None:
            return None
        offered = _offered_actions(document, params.range.start)
        if params.context.only:
            offered = [action for action in offered if any(
                str(action.kind).startswith(str(kind)) for kind in params.context.only)]
        return offered or None

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve_code_action(ls: SmallCoderServer, action: types.CodeAction
                                  ) -> types.CodeAction:
        """Rewrites the function; the edit replaces exactly that function's range."""
        if action.title != REFACTOR_TITLE or not isinstance(action.data, dict):
            return action
        uri, position = text_position({"textDocument": {"uri": action.data.get("uri")},
                                       "position": action.data.get("position")})
        action.edit, _refactoring = await _refactor(ls, uri, position, "")
        return action

    @server.feature("smallcoder/refactor")
    async def refactor_request(ls: SmallCoderServer, params: Any) -> dict:
        """Partial results: {"functionName", "generatedTokens"} while the model writes. The
        answer says which checks the offered rewrite passed (`checks`: name, passed, detail)
        and how many candidates the model wrote; when none passes, the error says why."""
        uri, position = text_position(params)
        instruction = getattr(params, "instruction", None) or ""
        if not isinstance(instruction, str):
            raise JsonRpcInvalidParams("params.instruction must be a string")
        edit, refactoring = await _refactor(ls, uri, position, instruction,
                                            partial_result_token(params))
        return _refactor_answer(ls, uri, edit, refactoring, instruction)

    @server.feature("smallcoder/explain")
    async def explain_request(ls: SmallCoderServer, params: Any) -> dict:
        """Partial results: {"functionName", "markdown"}, the explanation so far, each one the
        start of the final answer's markdown."""
        return await _explain(ls, params)


def _refactor_answer(ls: SmallCoderServer, uri: str, edit: types.WorkspaceEdit,
                     refactoring: actions.Refactoring, instruction: str) -> dict:
    """The edit, the function's name, and while learning from accepted work is on, the id
    under which the refactoring is kept if the user accepts it (server/accepted.py). The
    document is as the refactoring began: _refactor refuses one that changed meanwhile."""
    offer_id = None
    if ls.settings.training_learn_from_accepted:
        folders = [Path(path_of(folder.uri)) for folder in ls.workspace.folders.values()]
        offer_id = ls.accepted_offers.offer(refactor_change(
            folders, Path(path_of(uri)), ls.document(uri).source, refactoring.new_document,
            refactoring.span.qualified_name, instruction))
    return {"edit": ls.protocol._converter.unstructure(edit),
            "functionName": refactoring.span.qualified_name, "offerId": offer_id,
            "checks": [check.to_json() for check in refactoring.checks],
            "candidates": refactoring.candidates}


class PartialResults:
    """Streams what a long action has written so far to the client as `$/progress` on the
    request's `partialResultToken`, at most every PARTIAL_RESULT_INTERVAL_S; silent without
    a token. `on_text` is called on the worker thread that runs the model."""

    def __init__(self, ls: SmallCoderServer, token: str | int | None,
                 value_of: Callable[[str, int], dict]) -> None:
        """`value_of(text so far, pieces so far)` is the partial result sent."""
        self.ls, self.token, self.value_of = ls, token, value_of
        self.text, self.pieces = "", 0
        self.sent_at = float("-inf")

    def on_text(self, piece: str) -> None:
        self.text += piece
        self.pieces += 1
        now = time.monotonic()
        if self.token is None or now - self.sent_at < PARTIAL_RESULT_INTERVAL_S:
            return
        self.sent_at = now
        params = types.ProgressParams(token=self.token, value=self.value_of(self.text,
                                                                            self.pieces))
        # Sent from the event loop: the response, scheduled there after the worker
        # returns, can never overtake a partial result.
        self.ls._from_any_thread(lambda: self.ls.progress(params))


def partial_result_token(params: Any) -> str | int | None:
    token = getattr(params, "partialResultToken", None)
    if token is not None and not isinstance(token, str | int):
        raise JsonRpcInvalidParams("params.partialResultToken must be a string or a number")
    return token


def _function_name(document: TextDocument, language: str, line: int, character: int) -> str:
    """Found before the model starts: the partial results carry the name, and a cursor
    outside any function is refused without loading the long-job context."""
    return _subject(document, language, line, character, "function", None).name


def _subject(document: TextDocument, language: str, line: int, character: int, scope: str,
             selection: tuple[int, int] | None) -> explain.Subject:
    if (size := len(document.source)) > MAX_PARSED_CHARACTERS:
        raise JsonRpcInvalidParams(f"{document.uri} has {size:,} characters: explain and "
                                   f"refactor work in files up to {MAX_PARSED_CHARACTERS:,}")
    try:
        return explain.subject_at(document.source, language, document.uri, line, character,
                                  scope, selection)
    except actions.ActionError as error:
        raise JsonRpcInvalidParams(str(error)) from error


def _selected_lines(document: TextDocument, params: Any) -> tuple[int, int] | None:
    """The lines of `params.range` (0-based, inclusive), or None without a range or when it is
    empty; a range ending at column 0 leaves that line out, as the editor shows it."""
    selected = optional_field(params, "range", (dict, tuple))
    if selected is None:
        return None
    start, end = (cursor(document, text_position({
        "textDocument": {"uri": document.uri},
        "position": field(selected, end, (dict, tuple))})[1]) for end in ("start", "end"))
    if start == end:
        return None
    last = end[0] - 1 if end[1] == 0 and end[0] > start[0] else end[0]
    return start[0], last


def _offered_actions(document: TextDocument, start: types.Position) -> list[types.CodeAction]:
    where = {"line": start.line, "character": start.character}
    return [
        types.CodeAction(title=REFACTOR_TITLE, kind=types.CodeActionKind.RefactorRewrite,
                         data={"uri": document.uri, "position": where,
                               "version": document.version}),
        types.CodeAction(title=EXPLAIN_TITLE, kind=types.CodeActionKind.Empty,
                         command=types.Command(title=EXPLAIN_TITLE, command=EXPLAIN_COMMAND,
                                               arguments=[document.uri, where])),
    ]


def _language_or_error(document: TextDocument) -> str:
    language = language_of(document)
    if language is None:
        raise JsonRpcInvalidParams(f"SmallCoder cannot parse {document.uri}: it handles "
                                   f"Python, JavaScript and TypeScript")
    return language


async def _explain(ls: SmallCoderServer, params: Any) -> dict:
    """Explain the function, class, file or selection the request names (see explain_request)."""
    uri, position = text_position(params)
    document = ls.document(uri)
    language = _language_or_error(document)
    line, character = cursor(document, position)
    scope = optional_field(params, "scope", str) or "function"
    selection = _selected_lines(document, params)
    if selection is not None and scope == "function":
        scope = "selection"
    subject = _subject(document, language, line, character, scope, selection)
    name = subject.name
    partial = PartialResults(ls, partial_result_token(params),
                             lambda text, _pieces: {"functionName": name, "markdown": text})
    path, source = path_of(uri), document.source
    explanation = await _long_action(
        ls, f"explaining {name}",
        lambda run: explain.explain_in_workspace(run, ls.context, path, source, language, line,
                                                 character, scope=scope, selection=selection),
        on_text=partial.on_text)
    return {"markdown": explanation.markdown, "functionName": explanation.function_name,
            "notes": list(explanation.notes), "outline": explanation.outline}


async def _refactor(ls: SmallCoderServer, uri: str, position: types.Position,
                    instruction: str, partial_token: str | int | None = None
                    ) -> tuple[types.WorkspaceEdit, actions.Refactoring]:
    document = ls.document(uri)
    language = _language_or_error(document)
    line, character = cursor(document, position)
    source, version_at_start = document.source, document.version
    name = _function_name(document, language, line, character)
    # The engine streams a piece per token (a character split over two tokens comes once).
    partial = PartialResults(ls, partial_token, lambda _text, pieces: {
        "functionName": name, "generatedTokens": pieces})
    path = path_of(uri)
    result = await _long_action(
        ls, f"refactoring {name}",
        lambda run: actions.refactor_in_workspace(
            run, ls.context, path, source, language, line, character, instruction,
            test_command=ls.settings.test_command,
            max_copy_bytes=ls.settings.agent_max_copy_mb * 1024**2),
        on_text=partial.on_text)
    if document.version != version_at_start:
        raise JsonRpcInvalidParams("the document changed while the refactor ran: try again")
    edit = types.TextEdit(range=span_range(document, result.span), new_text=result.new_function)
    workspace_edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri,
                                                                    version=document.version),
        edits=[edit])])
    return workspace_edit, result


async def _long_action(ls: SmallCoderServer, description: str,
                       work: Callable[[actions.Run], Any],
                       on_text: Callable[[str], None] | None = None) -> Any:
    """Run an explain/refactor on the long-job context; cancellable, yields to completions."""
    token = CancelToken()

    def run_on_model() -> Any:
        with ls.host.long_job(description) as engine:
            return work(actions.Run(engine, token, ls.host.gate.wait_turn, on_text))

    try:
        return await asyncio.to_thread(run_on_model)
    except asyncio.CancelledError:
        token.cancel()
        raise
    except ModelUnavailable as error:
        raise JsonRpcInvalidParams(f"the model is not ready: {error}") from error
    except actions.ActionError as error:
        if token.cancelled:
            raise JsonRpcRequestCancelled("cancelled") from error
        raise JsonRpcInvalidParams(str(error)) from error
