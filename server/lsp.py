"""The language server: one thin handler per LSP feature over completion, actions and the model.

Blocking work runs in `asyncio.to_thread` (never pygls' thread pool, which also reads stdin);
a request the client cancels stops its generation within one token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.workspace import TextDocument

from analyzers.syntax import FunctionSpan, enclosing_function, language_for_id, language_for_path
from model import registry
from model.engine import CancelToken
from model.errors import ModelError
from server import actions, workspace_index
from server.completion import CompletionSettings
from server.model_host import EngineFactory, ModelHost, ModelState, ModelUnavailable, Status
from server.settings import LOG_LEVELS, Settings, settings_from_client

REFACTOR_TITLE = "Refactor this function"
EXPLAIN_TITLE = "Explain this function"
EXPLAIN_COMMAND = "smallcoder.explainFunction"
STATUS_CHANGED = "smallcoder/statusChanged"
MESSAGE_TYPES = {"error": types.MessageType.Error, "warning": types.MessageType.Warning,
                 "info": types.MessageType.Info, "debug": types.MessageType.Log}
log = logging.getLogger("smallcoder")


class SmallCoderProtocol(LanguageServerProtocol):
    """Answers a request whose params do not fit the protocol with an error, not silence,
    and accepts requests without params."""

    def structure_message(self, data: dict[str, Any]):
        if isinstance(data, dict) and "method" in data and "params" not in data:
            # vscode-jsonrpc leaves `params` out of parameterless requests; pygls requires it.
            data = {**data, "params": None}
        try:
            return super().structure_message(data)
        except JsonRpcInvalidParams:
            if isinstance(data, dict) and "id" in data and "method" in data:
                self._send_response(data["id"], error=JsonRpcInvalidParams(
                    f"the params of {data['method']} do not match the protocol"
                ).to_response_error())
            raise


class SmallCoderServer(LanguageServer):
    def __init__(self, engine_factory: EngineFactory | None = None) -> None:
        super().__init__("smallcoder", version("smallcoder"), protocol_cls=SmallCoderProtocol)
        self.settings = Settings()
        factory = {} if engine_factory is None else {"engine_factory": engine_factory}
        self.host = ModelHost(self._status_changed, **factory)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inline_requests: dict[str, CancelToken] = {}
        self.context = workspace_index.WorkspaceContext()
        self.loading: asyncio.Task | None = None
        self.switching: asyncio.Future | None = None

    # ------------------------------------------------------------ logging and status

    def log(self, level: str, message: str) -> None:
        """Send a log line to the client's output when the level setting lets it through."""
        if LOG_LEVELS.index(level) > LOG_LEVELS.index(self.settings.log_level):
            return
        self._from_any_thread(lambda: self.window_log_message(
            types.LogMessageParams(type=MESSAGE_TYPES[level], message=message)))

    def _status_changed(self, status: Status) -> None:
        self._from_any_thread(lambda: self.protocol.notify(STATUS_CHANGED, status.to_json()))

    def _from_any_thread(self, send: Callable[[], None]) -> None:
        if self.loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            send()
        else:
            self.loop.call_soon_threadsafe(send)

    # ------------------------------------------------------------ model lifecycle

    def start_loading(self) -> None:
        if self.loading is not None and not self.loading.done():
            self.loading.cancel()
        self.loading = asyncio.ensure_future(self.load_model())

    async def load_model(self) -> None:
        """Load the configured model with progress; offer the download when it is missing."""
        settings = self.settings
        await self._with_progress(
            f"SmallCoder: loading {settings.model}",
            asyncio.to_thread(self.host.load, settings.model, settings.vram_budget_mb,
                              settings.adapter, settings.adapter_scale),
        )
        status = self.host.status
        if status.state == ModelState.READY:
            self.log("info", status.message)
        elif status.state == ModelState.MISSING:
            self.log("warning", status.message)
            await self.offer_download(settings.model)
        else:
            self.log("error", status.message)
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Error, message=f"SmallCoder: {status.message}"))

    async def offer_download(self, name: str) -> None:
        spec = registry.REGISTRY[name]
        choice = await self.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Warning,
            message=f"SmallCoder: the model {name} ({spec.size_bytes / 1e9:.2f} GB) is not "
                    f"downloaded.",
            actions=[types.MessageActionItem(title="Download")],
        ))
        if choice is not None and choice.title == "Download":
            await self.download_model(name)

    async def download_model(self, name: str) -> Path:
        spec = registry.lookup(name)
        path = await self._with_progress(
            f"SmallCoder: downloading {name}",
            asyncio.to_thread(registry.pull, spec, progress=False))
        self.log("info", f"{name} downloaded and verified at {path}")
        await self.load_model()
        return path

    async def _with_progress(self, title: str, work: Awaitable[Any]) -> Any:
        token = f"smallcoder-{id(work)}"
        supported = bool(self.client_capabilities.window
                         and self.client_capabilities.window.work_done_progress)
        if supported:
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title))
            except Exception as error:  # a client may refuse progress; the work goes on
                self.log("debug", f"progress refused: {error}")
                supported = False
        try:
            return await work
        finally:
            if supported:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd())

    def apply_settings(self, options: Any, *, reload: bool = True) -> None:
        before = self.settings
        self.settings, warnings = settings_from_client(options, before)
        for warning in warnings:
            self.log("warning", warning)
        if not reload:
            return
        if self.settings.engine_key() != before.engine_key():
            self.log("info", f"model setting changed to {self.settings.model}: reloading")
            self.start_loading()
        elif (self.settings.adapter, self.settings.adapter_scale) != (before.adapter,
                                                                       before.adapter_scale):
            self.log("info", f"adapter setting changed to {self.settings.adapter or 'none'}")
            self.switching = asyncio.ensure_future(asyncio.to_thread(
                self.host.set_adapter, self.settings.adapter, self.settings.adapter_scale))

    # ------------------------------------------------------------ documents

    def document(self, uri: str) -> TextDocument:
        """An open document; unknown URIs are an error the client can act on."""
        if uri not in self.workspace.text_documents:
            raise JsonRpcInvalidParams(f"{uri} is not open in the editor")
        return self.workspace.get_text_document(uri)


def language_of(document: TextDocument) -> str | None:
    return language_for_id(document.language_id or "") or language_for_path(document.uri)


def cursor(document: TextDocument, position: types.Position) -> tuple[int, int]:
    """A client position as (line, character) in Python string units."""
    converted = document.position_codec.position_from_client_units(document.lines, position)
    return converted.line, converted.character


def span_range(document: TextDocument, span: FunctionSpan) -> types.Range:
    """A function's span as an LSP range in the client's units."""
    source = document.source.encode()
    start = _position_of_byte(source, span.start_byte)
    end = _position_of_byte(source, span.end_byte)
    return document.position_codec.range_to_client_units(document.lines,
                                                         types.Range(start=start, end=end))


def _position_of_byte(source: bytes, offset: int) -> types.Position:
    line = source.count(b"\n", 0, offset)
    line_start = source.rfind(b"\n", 0, offset) + 1
    return types.Position(line=line, character=len(source[line_start:offset].decode()))


def path_of(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else parsed.path or uri


def field(params: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    """A field of a custom request's params, or an InvalidParams error saying what is wrong."""
    value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
    if not isinstance(value, kind):
        raise JsonRpcInvalidParams(f"params.{name} is missing or not a {kind}")
    return value


def optional_field(params: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    """A field of a custom request's params that may be left out (None), or an InvalidParams
    error when it has the wrong type (a bool is not a number here, though Python says so)."""
    value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise JsonRpcInvalidParams(f"params.{name} must be a {kind}")
    return value


def text_position(params: Any) -> tuple[str, types.Position]:
    document = field(params, "textDocument", (dict, tuple))
    uri = field(document, "uri", str)
    position = field(params, "position", (dict, tuple))
    line, character = field(position, "line", int), field(position, "character", int)
    if line < 0 or character < 0:
        raise JsonRpcInvalidParams("params.position must not be negative")
    return uri, types.Position(line=line, character=character)


def create_server(engine_factory: EngineFactory | None = None) -> SmallCoderServer:
    server = SmallCoderServer(engine_factory)

    @server.feature(types.INITIALIZE)
    def initialize(ls: SmallCoderServer, params: types.InitializeParams) -> None:
        """Settings arrive first as initializationOptions; loading waits for `initialized`."""
        ls.loop = asyncio.get_running_loop()
        ls.apply_settings(params.initialization_options, reload=False)

    @server.feature(types.INITIALIZED)
    def initialized(ls: SmallCoderServer, params: types.InitializedParams) -> None:
        ls.start_loading()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def configuration_changed(ls: SmallCoderServer,
                                    params: types.DidChangeConfigurationParams) -> None:
        """Pull the settings when the client can answer, else take what it pushed."""
        workspace = ls.client_capabilities.workspace
        if workspace is not None and workspace.configuration:
            answer = await ls.workspace_configuration_async(types.ConfigurationParams(
                items=[types.ConfigurationItem(section="smallcoder")]))
            ls.apply_settings(answer[0] if answer else None)
        else:
            ls.apply_settings(params.settings)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: SmallCoderServer, params: types.InlineCompletionParams
                                ) -> types.InlineCompletionList | None:
        """Latest wins: a newer request for the same document stops the older one at once."""
        settings = ls.settings
        if not settings.inline_enabled:
            return None
        uri = params.text_document.uri
        document = ls.document(uri)
        try:
            engine = ls.host.interactive_engine
        except ModelUnavailable:
            return None
        line, character = cursor(document, params.position)
        token = CancelToken()
        if (older := ls.inline_requests.get(uri)) is not None:
            older.cancel()
        ls.inline_requests[uri] = token
        completion_settings = CompletionSettings(max_tokens=settings.inline_max_tokens,
                                                 time_budget_ms=settings.inline_time_budget_ms)
        try:
            with ls.host.gate.interactive():
                completion = await asyncio.to_thread(
                    workspace_index.complete_in_workspace, ls.context, engine, document.source,
                    line, character, path=path_of(uri), repo_name=_repo_name(ls, uri),
                    settings=completion_settings, context_tokens=settings.inline_context_tokens,
                    cancel=token)
        except asyncio.CancelledError:
            token.cancel()
            raise
        except (ValueError, ModelError) as error:
            ls.log("debug", f"no completion at {uri}:{line + 1}:{character + 1}: {error}")
            return None
        finally:
            if ls.inline_requests.get(uri) is token:
                del ls.inline_requests[uri]
        generation = completion.generation
        ls.host.note_speed(generation.tokens_per_second)
        ls.log("debug", f"completion {completion.latency_ms:.0f} ms, "
                        f"{generation.evaluated_prompt_tokens}/{generation.prompt_tokens} "
                        f"prompt tokens evaluated, {generation.generated_tokens} generated, "
                        f"{generation.finish_reason}")
        if token.cancelled or not completion.text:
            return None
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=completion.text,
            range=types.Range(start=params.position, end=params.position))])

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.RefactorRewrite], resolve_provider=True))
    def code_actions(ls: SmallCoderServer, params: types.CodeActionParams
                     ) -> list[types.CodeAction] | None:
        """Offered only inside a function; the refactor's edit is computed on resolve."""
        uri = params.text_document.uri
        document = ls.document(uri)
        language = language_of(document)
        if language is None:
            return None
        line, character = cursor(document, params.range.start)
        span = enclosing_function(document.source, language, line, character)
        if span is None:
            return None
        where = {"line": params.range.start.line, "character": params.range.start.character}
        offered = [
            types.CodeAction(title=REFACTOR_TITLE, kind=types.CodeActionKind.RefactorRewrite,
                             data={"uri": uri, "position": where,
                                   "version": document.version}),
            types.CodeAction(title=EXPLAIN_TITLE, kind=types.CodeActionKind.Empty,
                             command=types.Command(title=EXPLAIN_TITLE, command=EXPLAIN_COMMAND,
                                                   arguments=[uri, where])),
        ]
        only = params.context.only
        if only:
            offered = [action for action in offered
                       if any(str(action.kind).startswith(str(kind)) for kind in only)]
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
                                        related=workspace_index.related_for(
                                            ls.context, path_of(uri), document.source, line,
                                            run.engine)))
        return {"markdown": explanation.markdown, "functionName": explanation.function_name}

    @server.feature("smallcoder/status")
    def status_request(ls: SmallCoderServer, params: Any) -> dict:
        return ls.host.status.to_json()

    @server.feature("smallcoder/downloadModel")
    async def download_request(ls: SmallCoderServer, params: Any) -> dict:
        name = ls.settings.model
        if name not in registry.REGISTRY:
            raise JsonRpcInvalidParams(f"{name} is a local file, not a model SmallCoder can "
                                       f"download; known models: {', '.join(registry.REGISTRY)}")
        try:
            path = await ls.download_model(name)
        except ModelError as error:
            raise JsonRpcInvalidParams(str(error)) from error
        return {"path": str(path)}

    workspace_index.register(server)
    from server import lsp_solve, lsp_train  # they build on this module's server class

    lsp_solve.register(server)
    lsp_train.register(server)
    return server


def _language_or_error(document: TextDocument) -> str:
    language = language_of(document)
    if language is None:
        raise JsonRpcInvalidParams(f"SmallCoder cannot parse {document.uri}: it handles "
                                   f"Python, JavaScript and TypeScript")
    return language


def _repo_name(ls: SmallCoderServer, uri: str) -> str:
    path = path_of(uri)
    for folder in ls.workspace.folders.values():
        root = path_of(folder.uri)
        if path.startswith(root.rstrip("/") + "/"):
            return Path(root).name
    return Path(path).parent.name


async def _refactor(ls: SmallCoderServer, uri: str, position: types.Position,
                    instruction: str) -> tuple[types.WorkspaceEdit, str]:
    document = ls.document(uri)
    language = _language_or_error(document)
    line, character = cursor(document, position)
    source, version_at_start = document.source, document.version
    result = await _long_action(
        ls, f"refactoring the function at line {line + 1}",
        lambda run: actions.refactor(run, source, language, line, character, instruction,
                                     related=workspace_index.related_for(
                                         ls.context, path_of(uri), source, line, run.engine)))
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


def serve(engine_factory: EngineFactory | None = None) -> None:
    """Run the language server on stdin/stdout until the client exits.

    The protocol gets a private copy of stdout and file descriptor 1 becomes stderr: native
    code prints to fd 1, and llama-cpp-python even points it at /dev/null while it loads a
    model, which would swallow any message the server sent meanwhile.
    """
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.flush()
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    create_server(engine_factory).start_io(sys.stdin.buffer, protocol_out)
