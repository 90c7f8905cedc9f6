"""The server's model: loading it, reporting its state, and sharing the CPU between jobs.

Two engine contexts share the model's weights (mmap): one for inline completions, one for long
jobs (explain, refactor, the agent), so a completion never destroys a long job's KV cache. A
long job yields to completions between tokens: completions answer within one token's time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from model import registry
from model.adapters import read_adapter_info
from model.engine import Engine
from model.errors import ModelError
from model.remote import RemoteConfig, RemoteEngine

EngineFactory = Callable[[Path, int], Engine]


@dataclass(frozen=True)
class Remote:
    """A team server to use instead of the local engine, and whether to fall back to it."""

    config: RemoteConfig
    fallback: bool = False


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    BUSY = "busy"
    ERROR = "error"
    MISSING = "missing-model"


@dataclass(frozen=True)
class Status:
    model: str
    adapter: str | None
    state: ModelState
    message: str
    tokens_per_second: float | None = None
    # The region whose prompt is being evaluated in the background ("core.py:120"), if any.
    warming: str | None = None

    def to_json(self) -> dict:
        return {"model": self.model, "adapter": self.adapter, "state": self.state.value,
                "message": self.message, "tokensPerSecond": self.tokens_per_second,
                "warming": self.warming}


class ModelUnavailable(Exception):
    """The model is not loaded (yet, or at all); the message says why."""


class TurnGate:
    """Long jobs wait here, between tokens, while any interactive request is running."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._interactive = 0

    @contextmanager
    def interactive(self) -> Iterator[None]:
        with self._condition:
            self._interactive += 1
        try:
            yield
        finally:
            with self._condition:
                self._interactive -= 1
                self._condition.notify_all()

    def wait_turn(self) -> None:
        with self._condition:
            while self._interactive:
                self._condition.wait()


def cannot_open(model: str, error: OSError) -> str:
    shown = model if len(model) <= 120 else f"{model[:60]}...{model[-40:]}"
    return (f"cannot open the model {shown!r} ({len(model)} characters): "
            f"{error.strerror or error}; check smallcoder.model")


def load_llama_engine(path: Path, vram_budget_mb: int) -> Engine:
    from model.engine import LlamaCppEngine

    return LlamaCppEngine(path, vram_budget_bytes=vram_budget_mb * 1024**2)


class ModelHost:
    """Owns the engines; every state change is reported through `on_status`."""

    def __init__(self, on_status: Callable[[Status], None],
                 engine_factory: EngineFactory = load_llama_engine) -> None:
        self._on_status = on_status
        self._factory = engine_factory
        self._lock = threading.RLock()
        self._interactive: Engine | None = None
        self._background: Engine | None = None
        self._path: Path | None = None
        self._vram_budget_mb = 2048
        self._busy_jobs = 0
        self._state_cache_mb: int | None = None
        # The adapter the engines apply (path, scale); a background context gets it too.
        self._adapter: tuple[Path, float] | None = None
        self.gate = TurnGate()
        self._one_load = threading.Lock()
        self._status = Status("", None, ModelState.LOADING, "starting")

    # ------------------------------------------------------------ state

    @property
    def status(self) -> Status:
        return self._status

    def _set_status(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)
            status = self._status
        self._on_status(status)

    def note_speed(self, tokens_per_second: float | None) -> None:
        if tokens_per_second is not None:
            self._set_status(tokens_per_second=round(tokens_per_second, 1))

    def set_warming(self, region: str | None) -> None:
        if region != self._status.warming:
            self._set_status(warming=region)

    def cache_stats(self) -> dict | None:
        """The completion engine's saved-state cache (entries, bytes, limit), if it has one."""
        with self._lock:
            engine = self._interactive
        stats = getattr(engine, "cache_stats", None)
        return stats() if stats is not None else None

    def set_state_cache_limit(self, limit_mb: int) -> None:
        """Memory for saved states of recently visited regions (0: none); kept across loads.
        Only the completion engine keeps them: long jobs run one prompt after another."""
        with self._lock:
            self._state_cache_mb = limit_mb
            engine = self._interactive
        if engine is not None and hasattr(engine, "set_state_cache_limit"):
            engine.set_state_cache_limit(limit_mb * 1024**2)

    # ------------------------------------------------------------ loading

    def load(self, model: str, vram_budget_mb: int, adapter: str | None = None,
             adapter_scale: float = 1.0, remote: Remote | None = None) -> None:
        """Load `model` (a registry name or a path); blocking, run it off the event loop.
        With `remote`, a team server evaluates the tokens and `model` is only the vocabulary
        prompts are laid out with (its GGUF must be here).

        One load at a time: a settings change while a model loads waits for it, or two
        engines would be built at once and the slower one would win, whichever it was. An
        adapter switch waits for it too (`set_adapter`)."""
        with self._one_load:
            self._load(model, vram_budget_mb, adapter, adapter_scale, remote)

    def _load(self, model: str, vram_budget_mb: int, adapter: str | None,
              adapter_scale: float, remote: Remote | None) -> None:
        with self._lock:
            self._interactive = self._background = None
            self._path = None
            self._adapter = None
            self._vram_budget_mb = vram_budget_mb
        self._set_status(model=model, adapter=None, state=ModelState.LOADING,
                         message=f"loading {model}", tokens_per_second=None)
        try:
            path = registry.resolve_model(model)
        except ModelError as error:
            state = ModelState.MISSING if model in registry.REGISTRY else ModelState.ERROR
            self._set_status(state=state, message=str(error))
            return
        except OSError as error:  # a name too long for the file system, a folder not allowed
            self._set_status(state=ModelState.ERROR, message=cannot_open(model, error))
            return
        try:
            engine, note = self._engine_for(path, vram_budget_mb, remote)
        except ModelError as error:
            self._set_status(state=ModelState.ERROR, message=str(error))
            return
        with self._lock:
            self._interactive = engine
            self._path = path
            # A server runs long jobs beside completions in its own slots: one engine for both.
            self._background = engine if remote is not None and note is None else None
        if self._state_cache_mb is not None:
            self.set_state_cache_limit(self._state_cache_mb)
        ready = f"{engine.name} ready{note or ''}"
        if adapter:
            # Ready only with the adapter on: completions start at "ready".
            try:
                self._set_adapter(adapter, adapter_scale, note or "", state=ModelState.READY)
            except Exception as error:  # the model itself loaded: it must not stay "loading"
                self._set_status(state=ModelState.READY, adapter=None,
                                 message=f"{ready}; the adapter was not applied: {error}")
        else:
            self._set_status(state=ModelState.READY, message=ready)

    def _engine_for(self, path: Path, vram_budget_mb: int, remote: Remote | None
                    ) -> tuple[Engine, str | None]:
        """The engine, and why it is the local one when a server was asked for (fallback)."""
        if remote is None:
            return self._factory(path, vram_budget_mb), None
        self._set_status(message=f"connecting to {remote.config.url}")
        try:
            return RemoteEngine(path, remote.config), None
        except ModelError as error:
            if not remote.fallback:
                raise
            return self._factory(path, vram_budget_mb), f" (team server not used: {error})"

    def set_adapter(self, adapter: str, scale: float) -> None:
        """Apply a GGUF LoRA adapter ('' for none) over the loaded base, without reloading it.

        An adapter whose evaluation says it lost on the guard set is not enabled: it would make
        completions worse on code unlike the user's, and the user should decide to retrain.
        Serialised with loads: a switch during a load applies to the engine the load builds,
        not to the one it replaces (the status would name an adapter no engine has).
        """
        with self._one_load:
            self._set_adapter(adapter, scale)

    def _set_adapter(self, adapter: str, scale: float, note: str = "", **status) -> None:
        """Apply the adapter to the engines and say so (`note` after "ready"); `status`: more
        of the status to set with it (a load's READY)."""
        with self._lock:
            engines = [engine for engine in (self._interactive, self._background)
                       if engine is not None]
        if not engines:
            return
        path = label = None
        if adapter:
            try:
                info = read_adapter_info(Path(adapter).expanduser())
            except ModelError as error:
                self._set_status(adapter=None, message=str(error), **status)
                return
            if info.guard_passed is False:
                self._set_status(adapter=None, message=(
                    f"adapter {info.label} not enabled: its evaluation report says it lost more "
                    f"than 2 points on the guard set; train it again (longer, or at a lower "
                    f"adapterScale)"), **status)
                return
            path, label = info.path, info.label
        try:
            for engine in engines:
                if not hasattr(engine, "set_adapter"):
                    raise ModelError(f"{engine.name} cannot apply LoRA adapters")
                engine.set_adapter(path, scale)
        except ModelError as error:
            self._set_status(adapter=None, message=str(error), **status)
            return
        with self._lock:
            self._adapter = None if path is None else (path, scale)
        name = engines[0].name
        self._set_status(adapter=str(path) if path else None, message=f"{name} ready{note}" + (
            f" with adapter {label} at scale {scale:g}" if label else ""), **status)

    @property
    def interactive_engine(self) -> Engine:
        with self._lock:
            if self._interactive is None:
                raise ModelUnavailable(self._status.message)
            return self._interactive

    def background_engine(self) -> Engine:
        """The long-job context, created on first use from the same file."""
        with self._lock:
            if self._interactive is None or self._path is None:
                raise ModelUnavailable(self._status.message)
            if self._background is None:
                background = self._factory(self._path, self._vram_budget_mb)
                if hasattr(background, "set_state_cache_limit"):
                    background.set_state_cache_limit(0)
                if self._adapter is not None:
                    background.set_adapter(*self._adapter)
                self._background = background
            return self._background

    @contextmanager
    def long_job(self, description: str) -> Iterator[Engine]:
        """Run a long job on the background context; state shows busy meanwhile."""
        engine = self.background_engine()
        with self._lock:
            self._busy_jobs += 1
        self._set_status(state=ModelState.BUSY, message=description)
        try:
            yield engine
        finally:
            with self._lock:
                self._busy_jobs -= 1
                idle = self._busy_jobs == 0
            if idle and self._interactive is not None:
                self._set_status(state=ModelState.READY, message=f"{engine.name} ready")
