"""The language server object: settings, the model's lifecycle, logging and status.

Features register their handlers on it (server/serve.py puts them together). Blocking work runs
in `asyncio.to_thread` (never pygls' thread pool, which also reads stdin).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from assist.completion import Completion
from assist.workspace import WorkspaceContext
from model import registry
from model.engine import CancelToken
from model.errors import ModelError
from model.remote import RemoteConfig
from model.remote_http import unencrypted_warning
from server.accepted import AcceptedOffers
from server.jsonrpc import SmallCoderProtocol
from server.model_host import EngineFactory, ModelHost, ModelState, Remote, Status
from server.protocol import open_document, path_of
from server.settings import LOG_LEVELS, Settings, settings_from_client
from server.transport import read_frames

STATUS_CHANGED = "smallcoder/statusChanged"
MESSAGE_TYPES = {"error": types.MessageType.Error, "warning": types.MessageType.Warning,
                 "info": types.MessageType.Info, "debug": types.MessageType.Log}


class SmallCoderServer(LanguageServer):
    protocol: SmallCoderProtocol

    def __init__(self, engine_factory: EngineFactory | None = None) -> None:
        super().__init__("smallcoder", version("smallcoder"), protocol_cls=SmallCoderProtocol)
        self.settings = Settings()
        factory = {} if engine_factory is None else {"engine_factory": engine_factory}
        self.host = ModelHost(self._status_changed, **factory)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inline_requests: dict[str, CancelToken] = {}
        self.context = WorkspaceContext()
        self.loading: asyncio.Task | None = None
        # Called on `exit`: background work must stop, or its worker thread keeps the process.
        self.on_exit: list[Callable[[], None]] = []
        self.switching: asyncio.Future | None = None
        self.reindexing: asyncio.Future | None = None  # after smallcoder.exclude changed
        # Called when files changed on disk: work computed ahead with the old ones is dropped.
        self.on_disk_change: list[Callable[[], None]] = []
        # Files changed on disk being read into the index: the next completion waits for them.
        self.reading_disk_changes: asyncio.Future | None = None
        # Solve fixes and refactorings offered, kept for training if the user accepts them.
        self.accepted_offers = AcceptedOffers()

    # ------------------------------------------------------------ transport and errors

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve on stdio with SmallCoder's own framing (server/transport.py): pygls' reader
        takes only `Content-Length: N` spelled exactly, and waits for any length it is told."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(read_frames(stdin or sys.stdin.buffer, self.protocol.receive))
        except BrokenPipeError:
            logging.getLogger(__name__).error("the editor closed the connection")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A failed notification goes to the log, not to a popup: the user did not ask for
        anything and can do nothing about it. Features whose failure matters to the user
        (a model that does not load) show their own message."""
        self.log("error", f"{getattr(source, '__name__', source)}: {error}")

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
        remote = self.team_server()
        await self._with_progress(
            f"SmallCoder: loading {settings.model}" if remote is None else
            f"SmallCoder: connecting to {settings.server_url}",
            asyncio.to_thread(self.host.load, settings.model, settings.vram_budget_mb,
                              settings.adapter, settings.adapter_scale, remote),
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

    def team_server(self) -> Remote | None:
        """The team server the settings choose (None: the local engine); an http:// URL to
        another machine is warned about, since prompts hold the user's code."""
        settings = self.settings
        if settings.engine == "local":
            return None
        if (warning := unencrypted_warning(settings.server_url)) is not None:
            self.log("warning", warning)
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Warning, message=f"SmallCoder: {warning}"))
        config = RemoteConfig(settings.engine, settings.server_url, settings.server_model,
                              RemoteConfig.api_key_from_environment())
        return Remote(config, settings.engine_fallback)

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
        self.host.set_state_cache_limit(self.settings.state_cache_mb)
        self._follow_exclude(before)
        for uri, token in list(self.inline_requests.items()):
            if not self.completes_in(uri):
                token.cancel()  # its language was turned off, or the file excluded
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

    def _follow_exclude(self, before: Settings) -> None:
        """New exclude patterns hold for completions at once; the indexes follow in a worker."""
        if self.settings.exclude == before.exclude:
            return
        self.context.set_exclude(self.settings.exclude)
        self.report_ignore_problems()
        self.reindexing = asyncio.ensure_future(self._refresh_indexes())

    async def _refresh_indexes(self) -> None:
        try:
            await asyncio.to_thread(self.context.refresh_indexes)
        except OSError as error:
            self.log("warning", f"re-indexing after smallcoder.exclude changed failed: {error}")

    def report_ignore_problems(self) -> None:
        """Ignore patterns that cannot be read, each shown once: the rest still hold."""
        for problem in self.context.new_problems():
            self.log("warning", problem)
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Warning, message=f"SmallCoder: {problem}"))

    def completes_in(self, uri: str) -> bool:
        return self.why_no_completion(uri) is None

    def why_no_completion(self, uri: str) -> str | None:
        """Why inline completions are off for the document at `uri` (off altogether, off in
        its language, or a file excluded or named by a `.smallcoderignore`), or None."""
        if not self.settings.inline_enabled:
            return "inline completions are off"
        document = open_document(self.workspace, uri)
        language = document.language_id if document is not None else None
        if language and not self.settings.language_enabled(language):
            return f"{language} is off (smallcoder.enable)"
        if self.context.ignored(path_of(uri)):
            return "the file is excluded (smallcoder.exclude or .smallcoderignore)"
        return None

    async def apply_disk_changes(self, paths: list[str]) -> None:
        """Read files changed on disk into the index; completions asked meanwhile wait, so
        that the next one sees them."""
        reading = asyncio.ensure_future(asyncio.to_thread(self.context.files_changed, paths))
        self.reading_disk_changes = reading
        for forget in self.on_disk_change:
            forget()  # what was computed ahead saw the old files
        await reading
        for forget in self.on_disk_change:
            forget()  # and what was computed ahead while they were being read
        self.report_ignore_problems()

    async def disk_changes_read(self) -> None:
        if self.reading_disk_changes is not None and not self.reading_disk_changes.done():
            await asyncio.shield(self.reading_disk_changes)

    # ------------------------------------------------------------ interactive requests

    @contextmanager
    def latest_request(self, uri: str) -> Iterator[CancelToken]:
        """A cancel token for a request on `uri` that stops the older request on it."""
        token = CancelToken()
        if (older := self.inline_requests.get(uri)) is not None:
            older.cancel()
        self.inline_requests[uri] = token
        try:
            yield token
        finally:
            if self.inline_requests.get(uri) is token:
                del self.inline_requests[uri]

    async def run_interactive(self, where: str, work: Callable[[], Completion],
                              token: CancelToken) -> Completion | None:
        """Run a completion in a worker ahead of long jobs; None when it cannot be made."""
        def gated() -> Completion:
            # The gate is held only while the completion runs: held while it waited for a
            # worker thread, long jobs filling every thread would wait for it, and it for them.
            with self.host.gate.interactive():
                return work()

        try:
            completion = await asyncio.to_thread(gated)
        except asyncio.CancelledError:
            token.cancel()
            raise
        except (ValueError, ModelError) as error:
            self.log("debug", f"no completion at {where}: {error}")
            return None
        self.host.note_speed(completion.generation.tokens_per_second)
        self.log("debug", completion.log_line())
        return completion

    # ------------------------------------------------------------ documents

    def document(self, uri: str) -> TextDocument:
        """An open document; unknown URIs are an error the client can act on."""
        if (document := open_document(self.workspace, uri)) is None:
            raise JsonRpcInvalidParams(f"{uri} is not open in the editor")
        return document
