"""Document and workspace events: they feed the workspace context (assist/workspace.py).

Opening, editing and saving only remember the text; folders are indexed in a worker thread on
the first open, and files changed on disk (a checkout, a formatter, a generator) are read again:
the server asks the client to watch the source files and `.smallcoderignore` files.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types

from analyzers.ignore import IGNORE_FILE_NAME
from analyzers.syntax import LANGUAGES
from assist.workspace import WorkspaceContext
from server.app import SmallCoderServer
from server.memory import release_soon
from server.protocol import open_document, path_of

WATCH_REGISTRATION_ID = "smallcoder-watched-files"


async def watch_files(ls: SmallCoderServer) -> None:
    """Ask the client to report changes on disk to the files the index holds and to the ignore
    files, when it can register the watch dynamically (VS Code can)."""
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace is not None else None
    if watched is None or not watched.dynamic_registration:
        ls.log("info", "the editor cannot watch files for the server: changes made outside "
                       "it reach the index when the file is opened or saved")
        return
    extensions = sorted({extension.lstrip(".") for language in LANGUAGES
                         for extension in language.extensions})
    globs = [f"**/*.{{{','.join(extensions)}}}", f"**/{IGNORE_FILE_NAME}"]
    options = types.DidChangeWatchedFilesRegistrationOptions(
        watchers=[types.FileSystemWatcher(glob_pattern=glob) for glob in globs])
    try:
        await ls.client_register_capability_async(types.RegistrationParams(registrations=[
            types.Registration(id=WATCH_REGISTRATION_ID,
                               method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                               register_options=options)]))
        ls.log("debug", f"the editor watches {' and '.join(globs)} for the server")
    except Exception as error:  # the client refused: the server works on without it
        ls.log("warning", f"the editor refused to watch files for the server ({error}): "
                          f"changes made outside it reach the index when the file is opened "
                          f"or saved")


def register(server: SmallCoderServer) -> None:
    """Document and workspace events feed the context; folders are indexed on first use."""

    def ensure_indexed(ls: SmallCoderServer) -> None:
        context: WorkspaceContext = ls.context
        if context.folders_requested:
            return
        context.folders_requested = True
        roots = [Path(path_of(folder.uri)) for folder in ls.workspace.folders.values()]
        if not roots and ls.workspace.root_path:
            roots = [Path(ls.workspace.root_path)]
        for root in roots:
            context.add_folder(root)
        context.indexing = [asyncio.ensure_future(_index_folder(ls, root)) for root in roots]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SmallCoderServer, params: types.DidOpenTextDocumentParams) -> None:
        """Opening a file counts as viewing it: its first lines enter the ring buffer."""
        ensure_indexed(ls)
        ls.context.document_changed(path_of(params.text_document.uri), params.text_document.text)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SmallCoderServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if (document := open_document(ls.workspace, uri)) is None:
            return
        edited = [change.range.start.line for change in params.content_changes
                  if isinstance(change, types.TextDocumentContentChangePartial)]
        ls.context.document_changed(path_of(uri), document.source,
                                    edited[-1] if edited else None)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    async def did_save(ls: SmallCoderServer, params: types.DidSaveTextDocumentParams) -> None:
        """Only the editor's copy is read: the file itself may be anything, even a FIFO."""
        uri = params.text_document.uri
        document = open_document(ls.workspace, uri)
        text = document.source if document is not None else None
        await asyncio.to_thread(ls.context.document_saved, path_of(uri), text)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SmallCoderServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.context.document_closed(path_of(params.text_document.uri))
        release_soon()  # its text, lines and syntax tree were freed

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def watched_files_changed(ls: SmallCoderServer,
                                    params: types.DidChangeWatchedFilesParams) -> None:
        paths = [path_of(change.uri) for change in params.changes]
        ls.log("debug", f"changed on disk: {', '.join(paths)}")
        await ls.apply_disk_changes(paths)

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def folders_changed(ls: SmallCoderServer,
                              params: types.DidChangeWorkspaceFoldersParams) -> None:
        for folder in params.event.removed:
            ls.context.close_folder(Path(path_of(folder.uri)))
        for folder in params.event.added:
            ls.context.add_folder(Path(path_of(folder.uri)))
            await _index_folder(ls, Path(path_of(folder.uri)))


async def _index_folder(ls: SmallCoderServer, root: Path) -> None:
    started = time.perf_counter()
    try:
        index = await asyncio.to_thread(ls.context.open_folder, root)
    except OSError as error:
        ls.log("warning", f"cannot index {root}: {error}; completions go without its context")
        return
    finally:
        ls.report_ignore_problems()
    ls.log("info", f"indexed {len(index.files())} files of {root} in "
                   f"{(time.perf_counter() - started) * 1e3:.0f} ms")
