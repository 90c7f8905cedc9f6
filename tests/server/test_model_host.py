"""The model's lifecycle under the settings a user (or a cloned workspace) can give it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from model.llama_server import free_loopback_port
from model.remote import RemoteConfig
from server.model_host import ModelHost, ModelState, Remote, Status
from tests.conftest import small_model_path
from tests.fakes import ScriptedEngine
from tests.model.test_adapters import write_adapter


class CountingFactory:
    """Builds fake engines slowly and remembers how many it was building at once."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._lock = threading.Lock()
        self.building = 0
        self.most_at_once = 0

    def __call__(self, path: Path, vram_budget_mb: int) -> ScriptedEngine:
        with self._lock:
            self.building += 1
            self.most_at_once = max(self.most_at_once, self.building)
        time.sleep(self._seconds)
        with self._lock:
            self.building -= 1
        return ScriptedEngine([""])


def fake_model(tmp_path: Path, name: str = "fake.gguf") -> str:
    model = tmp_path / name
    model.write_bytes(b"GGUF")
    return str(model)


def test_a_model_path_longer_than_a_file_name_may_be_is_an_error_that_says_so(tmp_path):
    statuses: list[Status] = []
    host = ModelHost(statuses.append, engine_factory=CountingFactory(0))
    host.load(str(tmp_path / ("m" * 300 + ".gguf")), 2048)
    assert host.status.state == ModelState.ERROR
    assert "name too long" in host.status.message
    assert "smallcoder.model" in host.status.message
    assert [status.state for status in statuses] == [ModelState.LOADING, ModelState.ERROR]


def test_two_loads_never_build_engines_at_the_same_time(tmp_path):
    factory = CountingFactory(0.3)
    host = ModelHost(lambda status: None, engine_factory=factory)
    first, second = fake_model(tmp_path, "first.gguf"), fake_model(tmp_path, "second.gguf")
    loads = [threading.Thread(target=host.load, args=(model, 2048))
             for model in (first, second)]
    for load in loads:
        load.start()
        time.sleep(0.05)
    for load in loads:
        load.join()
    assert factory.most_at_once == 1
    assert host.status.state == ModelState.READY and host.status.model == second


class AdapterEngine(ScriptedEngine):
    """A fake engine that remembers the adapters it was given."""

    def __init__(self) -> None:
        super().__init__([""])
        self.adapters: list[tuple[Path | None, float]] = []

    def set_adapter(self, path: Path | None, scale: float) -> None:
        self.adapters.append((path, scale))


def test_an_adapter_chosen_while_the_model_loads_is_applied_to_the_loaded_model(tmp_path):
    write_adapter(tmp_path / "personal.gguf")
    built: list[AdapterEngine] = []

    def slow_factory(path: Path, vram_budget_mb: int) -> AdapterEngine:
        time.sleep(0.5)
        built.append(AdapterEngine())
        return built[-1]

    host = ModelHost(lambda status: None, engine_factory=slow_factory)
    load = threading.Thread(target=host.load, args=(fake_model(tmp_path), 2048))
    load.start()
    time.sleep(0.1)  # the load has begun: no engine yet
    switch = threading.Thread(target=host.set_adapter,
                              args=(str(tmp_path / "personal.gguf"), 0.5))
    switch.start()
    load.join()
    switch.join()
    assert [engine.adapters for engine in built] == [[(tmp_path / "personal.gguf", 0.5)]]
    assert host.status.adapter == str(tmp_path / "personal.gguf")
    assert host.status.state == ModelState.READY


def test_a_model_loaded_with_an_adapter_is_never_announced_ready_without_it(tmp_path):
    # Completions start at "ready": the first ones after a start would miss the user's adapter.
    write_adapter(tmp_path / "personal.gguf")
    statuses: list[Status] = []
    built: list[AdapterEngine] = []

    def factory(path: Path, vram_budget_mb: int) -> AdapterEngine:
        built.append(AdapterEngine())
        return built[-1]

    host = ModelHost(statuses.append, engine_factory=factory)
    host.load(fake_model(tmp_path), 2048, adapter=str(tmp_path / "personal.gguf"))
    ready = [status for status in statuses if status.state == ModelState.READY]
    assert ready and all(status.adapter == str(tmp_path / "personal.gguf") for status in ready)
    assert "with adapter" in host.status.message
    assert [engine.adapters for engine in built] == [[(tmp_path / "personal.gguf", 1.0)]]


def test_an_adapter_that_fails_unexpectedly_leaves_the_model_ready_without_it(tmp_path):
    write_adapter(tmp_path / "personal.gguf")

    class BrokenAdapterEngine(AdapterEngine):
        def set_adapter(self, path: Path | None, scale: float) -> None:
            raise ValueError("tensor shapes differ")

    host = ModelHost(lambda status: None,
                     engine_factory=lambda path, vram_budget_mb: BrokenAdapterEngine())
    host.load(fake_model(tmp_path), 2048, adapter=str(tmp_path / "personal.gguf"))
    assert host.status.state == ModelState.READY and host.status.adapter is None
    assert "adapter was not applied: tensor shapes differ" in host.status.message


def _unreachable_team_server(fallback: bool) -> Remote:
    return Remote(RemoteConfig("llama-server", f"http://127.0.0.1:{free_loopback_port()}"),
                  fallback)


def test_an_unreachable_team_server_is_an_error_that_says_so(tmp_path):
    host = ModelHost(lambda status: None, engine_factory=CountingFactory(0))
    host.load(str(small_model_path()), 0, remote=_unreachable_team_server(fallback=False))
    assert host.status.state == ModelState.ERROR
    assert "cannot connect" in host.status.message


def test_an_unreachable_team_server_falls_back_to_the_local_model_when_allowed(tmp_path):
    host = ModelHost(lambda status: None, engine_factory=CountingFactory(0))
    host.load(str(small_model_path()), 0, remote=_unreachable_team_server(fallback=True))
    assert host.status.state == ModelState.READY
    assert "team server not used" in host.status.message
    assert isinstance(host.interactive_engine, ScriptedEngine)
