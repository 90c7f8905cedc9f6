"""The remote engine against a real llama-server on loopback, serving the 0.5B model with an API
key, through both dialects: completion, cancel mid-stream, a wrong key, a wrong vocabulary, a
server killed mid-stream and one restarted. Skipped only when llama-server cannot be built."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request

import pytest

from model.chat import ask
from model.engine import CancelToken, GenerationParams
from model.errors import ModelError
from model.llama_server import LlamaServerProcess, ServerOptions, llama_server_binary
from model.prompts import fim_prompt_tokens, fim_request_at
from model.remote import RemoteConfig, RemoteEngine
from model.remote_http import RemoteError, RemoteProblem
from tests.conftest import REPO_ROOT, small_model_path

pytestmark = pytest.mark.model
API_KEY = "team-secret-for-tests"
SOURCE = ("def fibonacci(n):\n    if n < 2:\n        return n\n    return \n\n\n"
          "print(fibonacci(10))\n")
LONG_PROMPT = "Write a long story about a robot who learns to program, in ten chapters.\n"


@pytest.fixture(scope="session")
def llama_server_built() -> None:
    """Build llama-server the way scripts/setup.sh does (a file test once built)."""
    if llama_server_binary() is None:
        build = subprocess.run([str(REPO_ROOT / "scripts" / "build_llama_server.sh")],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               env={**os.environ,
                                    "PIP": str(REPO_ROOT / ".venv" / "bin" / "pip")})
        if build.returncode != 0 or llama_server_binary() is None:
            pytest.skip(f"llama-server could not be built: {build.stderr[-500:]}")


def _options(**changes) -> ServerOptions:
    return ServerOptions(model_path=small_model_path(), api_key=API_KEY, parallel=2,
                         context_tokens=4096, **changes)


@pytest.fixture(scope="session")
def team_server(llama_server_built, tmp_path_factory):
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with LlamaServerProcess(_options(), log) as server:
        yield server


@pytest.fixture
def own_server(llama_server_built, tmp_path):
    """A server this test may kill."""
    server = LlamaServerProcess(_options(), tmp_path / "server.log").start()
    yield server
    server.stop()


def _engine(url: str, dialect: str = "llama-server", key: str = API_KEY, **config
            ) -> RemoteEngine:
    return RemoteEngine(small_model_path(), RemoteConfig(dialect, url, api_key=key, **config))


def _fim_prompt(engine) -> list[int]:
    line = SOURCE.splitlines()[3]
    request = fim_request_at(SOURCE, 3, len(line), path="fib.py", repo_name="team")
    return fim_prompt_tokens(request, engine)


def _slots_busy(server: LlamaServerProcess) -> bool:
    request = urllib.request.Request(f"{server.url}/slots",
                                     headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return any(slot.get("is_processing") for slot in json.load(answer))


def _wait_idle(server: LlamaServerProcess, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _slots_busy(server):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("dialect", ["llama-server", "openai"])
def test_completion_streams_the_text_it_returns(team_server, dialect):
    engine = _engine(team_server.url, dialect)
    pieces: list[str] = []
    result = engine.generate(_fim_prompt(engine), GenerationParams(max_tokens=24),
                             on_text=pieces.append)
    assert result.text.strip()
    assert "".join(pieces) == result.text
    assert 0 < result.generated_tokens <= 24
    assert result.finish_reason in ("eos", "length", "stop")


def test_native_greedy_completion_equals_the_embedded_engines(team_server, real_engine):
    engine = _engine(team_server.url)
    prompt = _fim_prompt(engine)
    assert prompt == _fim_prompt(real_engine)
    params = GenerationParams(max_tokens=24)
    assert engine.generate(prompt, params).text == real_engine.generate(prompt, params).text


def test_first_token_not_newline_is_honoured_remotely(team_server, real_engine):
    engine = _engine(team_server.url)
    text = "def area(radius):\n    \n"
    prompt = fim_prompt_tokens(fim_request_at(text, 1, 4, path="a.py", repo_name="team"), engine)
    params = GenerationParams(max_tokens=12, first_token_not_newline=True)
    remote = engine.generate(prompt, params)
    assert not remote.text.startswith(("\n", "\r"))
    assert remote.text == real_engine.generate(prompt, params).text


def test_a_stop_string_is_cut_as_locally(team_server):
    engine = _engine(team_server.url)
    prompt = engine.chat_prompt([{"role": "user", "content": "Count from 1 to 20, separated "
                                  "by commas, nothing else."}])
    result = engine.generate(prompt, GenerationParams(max_tokens=80, stop=("5",)))
    assert result.finish_reason == "stop"
    assert "5" not in result.text and "4" in result.text


def test_explain_style_chat_works_remotely(team_server):
    engine = _engine(team_server.url)
    result = ask(engine, "You explain Python code briefly.", f"Explain:\n```python\n{SOURCE}```",
                 GenerationParams(max_tokens=40))
    assert len(result.text.split()) > 5


@pytest.mark.parametrize("dialect", ["llama-server", "openai"])
def test_cancel_mid_stream_closes_it_and_the_server_stops(team_server, dialect):
    engine = _engine(team_server.url, dialect)
    cancel = CancelToken()
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            threading.Thread(target=cancel.cancel).start()  # as the server's event loop does

    prompt = engine.chat_prompt([{"role": "user", "content": LONG_PROMPT}])
    result = engine.generate(prompt, GenerationParams(max_tokens=1500), cancel=cancel,
                             on_text=on_text)
    assert result.finish_reason == "cancelled"
    assert result.generated_tokens < 100
    assert _wait_idle(team_server), "the server went on generating after the stream closed"


def test_cancel_while_the_prompt_is_evaluated_returns_at_once(team_server):
    engine = _engine(team_server.url)
    cancel = CancelToken()
    prompt = engine.tokenize("def unrelated_helper(value):\n    return value * 3\n" * 60)
    threading.Timer(0.05, cancel.cancel).start()
    started = time.monotonic()
    result = engine.generate(prompt, GenerationParams(max_tokens=200), cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("dialect", ["llama-server", "openai"])
def test_a_wrong_api_key_is_refused_at_connect(team_server, dialect):
    with pytest.raises(RemoteError) as refused:
        _engine(team_server.url, dialect, key="not-the-key")
    assert refused.value.problem == RemoteProblem.UNAUTHORIZED
    assert "not-the-key" not in str(refused.value)


def test_no_server_is_unreachable_quickly(llama_server_built):
    from model.llama_server import free_loopback_port

    started = time.monotonic()
    with pytest.raises(RemoteError) as failed:
        _engine(f"http://127.0.0.1:{free_loopback_port()}")
    assert failed.value.problem == RemoteProblem.UNREACHABLE
    assert time.monotonic() - started < 5


def test_another_models_vocabulary_is_refused_at_connect(team_server, tmp_path):
    from tests.tiny_qwen import write_tiny_qwen_gguf

    tiny = write_tiny_qwen_gguf(tmp_path / "tiny.gguf")
    with pytest.raises(RemoteError) as refused:
        RemoteEngine(tiny, RemoteConfig("llama-server", team_server.url, api_key=API_KEY))
    assert refused.value.problem == RemoteProblem.VOCABULARY


def test_an_openai_model_the_server_does_not_serve_is_refused(team_server):
    with pytest.raises(RemoteError) as refused:
        _engine(team_server.url, "openai", model="some-other-model")
    assert refused.value.problem == RemoteProblem.VOCABULARY


@pytest.mark.parametrize("dialect", ["llama-server", "openai"])
def test_a_server_killed_mid_stream_fails_that_request_then_restarted_serves_again(
        own_server, dialect):
    engine = _engine(own_server.url, dialect)
    prompt = engine.chat_prompt([{"role": "user", "content": LONG_PROMPT}])
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 3:
            own_server.kill()

    with pytest.raises(ModelError):
        engine.generate(prompt, GenerationParams(max_tokens=1500), on_text=on_text)
    assert len(pieces) >= 3
    with pytest.raises(RemoteError) as down:
        engine.generate(_fim_prompt(engine), GenerationParams(max_tokens=8))
    assert down.value.problem == RemoteProblem.UNREACHABLE
    own_server.start()  # same port
    result = engine.generate(_fim_prompt(engine), GenerationParams(max_tokens=8))
    assert result.text.strip()


def test_prefill_fills_a_slot_the_next_request_reuses(team_server):
    engine = _engine(team_server.url)
    prompt = engine.tokenize("class Inventory:\n    def __init__(self):\n        self.items = {}\n"
                             * 8)
    prefilled = engine.prefill(prompt)
    assert prefilled.finished and prefilled.evaluated_tokens > 0
    assert engine.cached_prefix_tokens(prompt) == len(prompt) - 1
    result = engine.generate(prompt, GenerationParams(max_tokens=4))
    assert result.evaluated_prompt_tokens < len(prompt) // 4


def test_a_server_dies_with_the_process_that_started_it(llama_server_built, tmp_path):
    """A bench or test killed from the shell (SIGKILL: no cleanup runs) takes its llama-server
    along, instead of leaving it on a port and the CPU."""
    starter = subprocess.Popen(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from model.llama_server import LlamaServerProcess, ServerOptions\n"
         f"server = LlamaServerProcess(ServerOptions(Path({str(small_model_path())!r})),\n"
         f"                            Path({str(tmp_path / 'server.log')!r})).start()\n"
         "print(server.process.pid, flush=True)\n"
         "time.sleep(600)\n"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child = int(starter.stdout.readline())
        os.kill(child, 0)  # running
        starter.kill()
        starter.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(child, 9)
        pytest.fail("llama-server outlived the process that started it")
    finally:
        starter.kill()
