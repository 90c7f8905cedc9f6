"""The language server put together: every feature registered, run on stdin/stdout.

`smallcoder serve` and the tests start it here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from lsprotocol import types

from server import accepted, actions, completion, documents, solve, status, train
from server.app import SmallCoderServer
from server.model_host import EngineFactory


def create_server(engine_factory: EngineFactory | None = None) -> SmallCoderServer:
    server = SmallCoderServer(engine_factory)

    @server.feature(types.INITIALIZE)
    def initialize(ls: SmallCoderServer, params: types.InitializeParams) -> None:
        """Settings arrive first as initializationOptions; loading waits for `initialized`."""
        ls.loop = asyncio.get_running_loop()
        ls.apply_settings(params.initialization_options, reload=False)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: SmallCoderServer, params: types.InitializedParams) -> None:
        ls.start_loading()
        await documents.watch_files(ls)

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

    @server.feature(types.EXIT)
    def exit_(ls: SmallCoderServer, params: None) -> None:
        """Stop what runs in worker threads: the process ends only when they have returned."""
        for token in list(ls.inline_requests.values()):
            token.cancel()
        for stop in ls.on_exit:
            stop()

    for feature in (completion, actions, status, documents, solve, train, accepted):
        feature.register(server)
    return server


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
