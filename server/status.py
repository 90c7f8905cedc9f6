"""`smallcoder/status` and `smallcoder/downloadModel`: what the model is doing, and getting it.

State changes are also pushed as `smallcoder/statusChanged` (server/app.py).
"""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from model import registry
from model.errors import ModelError
from server.app import SmallCoderServer


def register(server: SmallCoderServer) -> None:
    @server.feature("smallcoder/status")
    def status_request(ls: SmallCoderServer, params: Any) -> dict:
        """The pushed status plus the completion engine's memory for saved states."""
        return {**ls.host.status.to_json(), "stateCache": ls.host.cache_stats()}

    @server.feature("smallcoder/downloadModel")
    async def download_request(ls: SmallCoderServer, params: Any) -> dict:
        """Only registry models can be downloaded; a local path is the user's own file."""
        name = ls.settings.model
        if name not in registry.REGISTRY:
            raise JsonRpcInvalidParams(f"{name} is a local file, not a model SmallCoder can "
                                       f"download; known models: {', '.join(registry.REGISTRY)}")
        try:
            path = await ls.download_model(name)
        except ModelError as error:
            raise JsonRpcInvalidParams(str(error)) from error
        return {"path": str(path)}
