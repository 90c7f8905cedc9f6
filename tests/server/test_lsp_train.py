"""`smallcoder/train` over stdio: progress from the child, Cancel kills it, bad input is refused.

The server is the fake-engine one (nothing here generates text), serving a tiny random-weight
Qwen2 GGUF made in the test session: training runs on that very file, in seconds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient

from server.train import INTERRUPT_GRACE_SECONDS, job_from_params
from tests.conftest import REPO_ROOT
from tests.server.test_lsp import start, wait_for_state
from tests.server.test_lsp_solve import plain
from tests.tiny_qwen import write_tiny_qwen_gguf
from tests.training.test_training import MODULE, git, module_variant, write
from training.evaluate import GUARD_FILE

pytest.importorskip("torch")

SERVER = [sys.executable, str(REPO_ROOT / "tests" / "lsp_fake_server.py")]
# What the issue asks of Cancel: the trainer saved its checkpoint and is gone.
CANCEL_SECONDS = 2.0
assert CANCEL_SECONDS < INTERRUPT_GRACE_SECONDS  # the trainer stops itself: nothing is killed
# Adapters trained without params.out land here, not in the user's SmallCoder home.
HOME = Path(tempfile.mkdtemp(prefix="smallcoder-train-home-"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_qwen_gguf(tmp_path_factory.mktemp("tiny-model") / "tiny-qwen2.gguf")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A small git repository of distinct Python modules, the last one changed most recently."""
    repo = tmp_path_factory.mktemp("user-repo")
    git(repo, "init", "-q")
    write(repo, "shop/orders.py", MODULE)
    for index in range(6):
        write(repo, f"shop/helpers_{index}.py", module_variant(index))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    write(repo, "shop/recent.py", module_variant(30))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "second", when="2026-06-01T00:00:00")
    return repo


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER, server_env={**os.environ, "SMALLCODER_HOME": str(HOME)}))
async def client(lsp_client: LanguageClient, tiny_model):
    await start(lsp_client, {"model": str(tiny_model)})
    await wait_for_state(lsp_client, "ready")
    yield
    await lsp_client.shutdown_session()


async def train(client: LanguageClient, **params) -> dict:
    return plain(await client.protocol.send_request_async("smallcoder/train", params))


def messages(client: LanguageClient, token: str) -> list[str]:
    return [report.message for report in client.progress_reports.get(token, [])
            if getattr(report, "message", None)]


def trainer_processes(out: Path) -> list[int]:
    """Processes whose command line names `out`: the child and anything it started."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(out).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # it ended while we looked
    return found


async def test_train_relays_progress_and_returns_the_adapter_and_its_report(client, repo):
    client.progress_reports["train-1"] = []
    result = await train(client, repositories=[repo.as_uri()], maxSteps=3,
                         workDoneToken="train-1")
    adapter = Path(result["adapter"])
    assert adapter.parent == HOME / "adapters" and adapter.name.startswith(repo.name)
    assert adapter.is_file() and result["steps"] == 3
    assert Path(result["report"]).read_text().startswith("#")
    # The guard set is read from ../shared/data beside the checkout; a clone elsewhere has none.
    if GUARD_FILE.is_file():
        assert isinstance(result["guardPassed"], bool) and result["message"]
    else:
        assert result["guardPassed"] is None and "no guard-set score" in result["message"]
    shown = messages(client, "train-1")
    assert any(message.startswith("step 3/3 · loss ") and "tokens/s" in message
               and "left" in message for message in shown), shown
    assert any(message.startswith("mining ") for message in shown)
    percentages = [report.percentage for report in client.progress_reports["train-1"]
                   if getattr(report, "percentage", None) is not None]
    assert percentages[-1] == 100
    assert client.progress_reports["train-1"][-1].kind == "end"


async def test_cancel_kills_the_trainer_within_seconds_and_keeps_its_checkpoint(client, repo,
                                                                              tmp_path):
    out = tmp_path / "cancelled.gguf"
    client.progress_reports["train-2"] = []
    future = client.protocol.send_request("smallcoder/train", {
        "repositories": [str(repo)], "out": str(out), "maxSteps": 100_000,
        "workDoneToken": "train-2"}, msg_id="train-to-cancel")
    deadline = time.monotonic() + 120
    while not any(message.startswith("step 2/") for message in messages(client, "train-2")):
        assert time.monotonic() < deadline, messages(client, "train-2")
        await asyncio.sleep(0.1)
    assert trainer_processes(out)
    with pytest.raises(Exception, match="already being trained"):
        await train(client, repositories=[str(repo)])

    started = time.monotonic()
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="train-to-cancel"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(asyncio.wrap_future(future), 5)
    assert time.monotonic() - started < 2
    while trainer_processes(out):
        # SIGINT makes it save a checkpoint and exit within a moment (training/stopping.py),
        # long before the grace period after which the server kills what is left.
        assert time.monotonic() - started < CANCEL_SECONDS, "the trainer still runs after Cancel"
        await asyncio.sleep(0.1)
    assert (out.parent / "cancelled.gguf.work" / "checkpoint" / "trainer_state.pt").is_file()


def test_the_train_request_asks_the_child_to_start_fresh_with_the_settings_threads(repo):
    job = job_from_params({"repositories": [str(repo)], "start": "fresh"}, "tiny", threads=3,
                          accepted_work=True)
    command = job.command()
    assert "--fresh" in command and "--accepted-work" in command
    assert command[command.index("--threads") + 1] == "3"
    default = job_from_params({"repositories": [str(repo)]}, "tiny").command()
    assert not {"--fresh", "--continue", "--threads", "--accepted-work"} & set(default)
    with pytest.raises(JsonRpcInvalidParams, match=r"params\.start"):
        job_from_params({"repositories": [str(repo)], "start": "later"}, "tiny")


async def test_train_without_repositories_is_refused(client):
    with pytest.raises(Exception, match="no repositories"):
        await train(client, repositories=[])


async def test_train_on_a_folder_without_code_says_which_folder(client, tmp_path):
    (tmp_path / "README.md").write_text("# Notes\n\nNothing to learn from here.\n")
    (tmp_path / "data.json").write_text('{"rows": []}\n')
    with pytest.raises(Exception, match=f"{tmp_path} has no Python, JavaScript or TypeScript"):
        await train(client, repositories=[tmp_path.as_uri()])


async def test_a_failed_training_answers_with_the_trainers_error(client, tmp_path):
    write(tmp_path, "tiny.py", "x = 1\n")  # code, but too small to make an example of
    with pytest.raises(Exception, match="gave no training examples"):
        await train(client, repositories=[str(tmp_path)], out=str(tmp_path / "none.gguf"))


def test_an_adapter_that_lost_on_the_guard_set_comes_back_saying_so():
    from server.train import result_for_client

    result = result_for_client({"adapter": "/a.gguf", "report": "/a.report.md", "steps": 400,
                                "tokens_per_second": 60.0, "stopped_by": "time",
                                "guard_passed": False})
    assert result["guardPassed"] is False and result["report"] == "/a.report.md"
    assert "will not enable it" in result["message"]


def test_a_python_without_the_training_packages_is_told_what_to_install(monkeypatch):
    import training.preflight

    real_find_spec = training.preflight.find_spec
    monkeypatch.setattr(training.preflight, "find_spec",
                        lambda name: None if name == "peft" else real_find_spec(name))
    problem = training.preflight.training_packages_problem()
    assert problem is not None and "optional packages peft," in problem
    assert f"`{sys.executable} -m pip install peft==" in problem


def test_the_missing_training_packages_are_named_by_their_pins(monkeypatch):
    import training.preflight

    real_find_spec = training.preflight.find_spec
    monkeypatch.setattr(training.preflight, "find_spec",
                        lambda name: None if name in ("torch", "peft") else real_find_spec(name))
    missing = training.preflight.missing_training_packages()
    assert [pin.split("==")[0] for pin in missing] == ["torch", "peft"]
    assert all("==" in pin for pin in missing)


async def test_the_editor_asks_which_training_packages_to_install(client):
    # This Python has them all (the module is skipped without torch).
    answer = plain(await client.protocol.send_request_async("smallcoder/trainingPackages", {}))
    assert answer == {"missing": []}
