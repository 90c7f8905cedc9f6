"""Code actions and the explain / refactor requests: LSP in, assist/actions out.

The refactor's edit is computed on `codeAction/resolve`, so offering the action costs nothing;
both run on the long-job engine, cancellable, and yield to completions between tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.workspace import TextDocument

from analyzers.syntax import enclosing_function
from assist import actions
from assist.workspace import related_for
from model.engine import CancelToken
from server.app import SmallCoderServer
from server.model_host import ModelUnavailable
from server.protocol import cursor, language_of, path_of, span_range, text_position

REFACTOR_TITLE = "Refactor this function"
EXPLAIN_TITLE = "Explain this function"
EXPLAIN_COMMAND = "smallcoder.explainFunction"


def register(server: SmallCoderServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.RefactorRewrite], resolve_provider=True))
    def code_actions(ls: SmallCoderServer, params: types.CodeActionParams
                     ) -> list[types.CodeAction] | None:
        """Offered only inside a function; the refactor's edit is computed on resolve."""
        document = ls.document(params.text_document.uri)
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
        action.edit, _name = await _refactor(ls, uri, position, "")
        return action

    @server.feature("smallcoder/refactor")
    async def refactor_request(ls: SmallCoderServer, params: Any) -> dict:
        uri, position = text_position(params)
        instruction = getattr(params, "instruction", None) or ""
        if not isinstance(instruction, str):
            raise JsonRpcInvalidParams("params.instruction must be a string")
        edit, name = await _refactor(ls, uri, position, instruction)
        return {"edit": ls.protocol._converter.unstructure(edit), "functionName": name}

    @server.feature("smallcoder/explain")
    async def explain_request(ls: SmallCoderServer, params: Any) -> dict:
        uri, position = text_position(params)
        document = ls.document(uri)
        language = _language_or_error(document)
        line, character = cursor(document, position)
        explanation = await _long_action(
            ls, f"explaining the function at line {line + 1}",
            lambda run: actions.explain(run, document.source, language, line, character,
                                        related=related_for(ls.context, path_of(uri),
                                                            document.source, line, run.engine)))
        return {"markdown": explanation.markdown, "functionName": explanation.function_name}


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


async def _refactor(ls: SmallCoderServer, uri: str, position: types.Position,
                    instruction: str) -> tuple[types.WorkspaceEdit, str]:
    document = ls.document(uri)
    language = _language_or_error(document)
    line, character = cursor(document, position)
    source, version_at_start = document.source, document.version
    result = await _long_action(
        ls, f"refactoring the function at line {line + 1}",
        lambda run: actions.refactor(run, source, language, line, character, instruction,
                                     related=related_for(ls.context, path_of(uri), source,
                                                         line, run.engine)))
    if document.version != version_at_start:
        raise JsonRpcInvalidParams("the document changed while the refactor ran: try again")
    edit = types.TextEdit(range=span_range(document, result.span), new_text=result.new_function)
    workspace_edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri,
                                                                    version=document.version),
        edits=[edit])])
    return workspace_edit, result.span.qualified_name


async def _long_action(ls: SmallCoderServer, description: str,
                       work: Callable[[actions.Run], Any]) -> Any:
    """Run an explain/refactor on the long-job context; cancellable, yields to completions."""
    token = CancelToken()

    def run_on_model() -> Any:
        with ls.host.long_job(description) as engine:
            return work(actions.Run(engine, token, ls.host.gate.wait_turn))

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
