"""Accepted work over LSP: with `smallcoder.training.learnFromAccepted` on, a solved fix comes
with an offer id, and the client's `smallcoder/accepted` keeps it for training; off, nothing."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from assist.accepted import refactor_change
from tests.server.test_lsp import URI, fake_model, open_document, start, wait_for_state
from tests.server.test_lsp_solve import SERVER, examples_copy, solve

HOME = Path(tempfile.mkdtemp(prefix="smallcoder-accepted-home-"))
CONFIG = ClientServerConfig(server_command=SERVER,
                            server_env={**os.environ, "SMALLCODER_HOME": str(HOME)})


@pytest_lsp.fixture(config=CONFIG)
async def learning_client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path),
                             "training": {"learnFromAccepted": True}})
    await wait_for_state(lsp_client, "ready")
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIG)
async def client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path)})
    await wait_for_state(lsp_client, "ready")
    yield
    await lsp_client.shutdown_session()


async def kept_files(count: int, kind: str = "fix", timeout_s: float = 10) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    while len(found := sorted((HOME / "accepted").glob(f"{kind}-*.json"))) < count:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.1)
    return found


async def test_an_accepted_fix_is_kept_with_the_tests_it_made_pass(learning_client, tmp_path):
    client = learning_client
    workspace = examples_copy(tmp_path)
    result = await solve(client, workspace, maxRounds=2)
    assert result["status"] == "solved" and result["offerId"]
    client.protocol.notify("smallcoder/accepted", {"offerId": result["offerId"]})
    [kept] = await kept_files(1)
    record = json.loads(kept.read_text())
    assert record["kind"] == "fix" and record["path"] == "inventory.py"
    assert record["workspace"] == str(workspace)
    assert "price_cents * (100 - percent) // 100" in record["after"]
    assert record["evidence"]["failing_before"] and record["evidence"]["passing_after"]
    assert oct(kept.stat().st_mode & 0o777) == "0o600"


async def test_an_applied_refactoring_is_kept_relative_to_the_workspace(learning_client):
    client = learning_client
    open_document(client)
    answer = await client.protocol.send_request_async("smallcoder/refactor", {
        "textDocument": {"uri": URI}, "position": {"line": 4, "character": 4},
        "instruction": "tidy it"})
    assert answer.offerId
    client.protocol.notify("smallcoder/accepted", {"offerId": answer.offerId})
    [kept] = await kept_files(1, "refactor")
    record = json.loads(kept.read_text())
    assert (record["workspace"], record["evidence"]) == (
        "/work/project", {"function": "mean", "instruction": "tidy it"})
    assert record["before"] != record["after"]


async def test_without_the_setting_no_fix_is_offered_for_training(client, tmp_path):
    result = await solve(client, examples_copy(tmp_path), maxRounds=2)
    assert result["status"] == "solved" and result["offerId"] is None


def test_a_refactoring_is_kept_relative_to_its_workspace_folder(tmp_path):
    [change] = refactor_change([tmp_path / "other", tmp_path / "project"],
                               tmp_path / "project" / "pkg" / "mod.py",
                               "def f():\n    return 1\n", "def f() -> int:\n    return 1\n",
                               "f", "add type hints")
    assert (change.kind, change.workspace, change.path) == (
        "refactor", str(tmp_path / "project"), "pkg/mod.py")
    assert change.evidence == {"function": "f", "instruction": "add type hints"}
