"""`smallcoder/solve` over stdio with the fake engine: progress, the edit, cancel, completions."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import REPO_ROOT
from tests.server.test_lsp import fake_model, inline_params, open_document, start, wait_for_state

SERVER = [sys.executable, str(REPO_ROOT / "tests" / "lsp_fake_server.py")]
PYTEST = f"{sys.executable} -m pytest -q"


# Transcripts of these runs go here, not into the user's SmallCoder home.
HOME = tempfile.mkdtemp(prefix="smallcoder-solve-home-")


def solve_config(**env: str) -> ClientServerConfig:
    return ClientServerConfig(server_command=SERVER,
                              server_env={**os.environ, "SMALLCODER_HOME": HOME, **env})


def examples_copy(tmp_path: Path) -> Path:
    workspace = tmp_path / "examples"
    shutil.copytree(REPO_ROOT / "examples", workspace,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return workspace


def replaced(text: str, edit: dict) -> str:
    start, end = edit["range"]["start"], edit["range"]["end"]
    assert (start["line"], start["character"]) == (0, 0)
    assert end["line"] == text.count("\n")
    return edit["newText"]


async def solve(client: LanguageClient, workspace: Path, **extra) -> dict:
    result = await client.protocol.send_request_async("smallcoder/solve", {
        "workspaceFolder": workspace.as_uri(), "testCommand": PYTEST, **extra})
    return plain(result)


def plain(value):
    """pygls hands custom results over as named tuples: back to JSON-like dicts and lists."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@pytest_lsp.fixture(config=solve_config())
async def client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path)})
    await wait_for_state(lsp_client, "ready")
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=solve_config(SMALLCODER_FAKE_TOKEN_SECONDS="0.03"))
async def slow_client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path)})
    await wait_for_state(lsp_client, "ready")
    open_document(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def test_solve_returns_the_fix_as_an_edit_and_reports_progress(client, tmp_path):
    workspace = examples_copy(tmp_path)
    before = (workspace / "inventory.py").read_text()
    client.progress_reports["solve-1"] = []
    result = await solve(client, workspace, workDoneToken="solve-1", maxRounds=2)
    assert result["status"] == "solved"
    assert result["rounds"] == 1
    assert "+    return price_cents * (100 - percent) // 100" in result["diff"]
    (change,) = result["edit"]["documentChanges"]
    assert change["textDocument"]["uri"] == (workspace / "inventory.py").as_uri()
    after = replaced(before, change["edits"][0])
    assert after == before.replace("price_cents * percent // 100",
                                   "price_cents * (100 - percent) // 100")
    assert (workspace / "inventory.py").read_text() == before
    messages = [getattr(report, "message", None) for report in client.progress_reports["solve-1"]]
    assert "round 1: 1 → 0 failing" in messages
    assert client.progress_reports["solve-1"][-1].kind == "end"


SLUG = """function slugify(title) {
  // fake-engine fix: return title.trim().toLowerCase().split(/\\s+/).join('-');
  return title.trim().toLowerCase().split(/\\s+/).join('_');
}

module.exports = { slugify };
"""
SLUG_TEST = """const test = require('node:test');
const assert = require('node:assert');
const { slugify } = require('./slug');

test('slugify joins the words with hyphens', () => {
  assert.strictEqual(slugify('  Hello Big World '), 'hello-big-world');
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_solve_fixes_a_node_test_project_the_fake_engine_is_shown(client, tmp_path):
    """The e2e JavaScript Solve scenario's project: the fake engine fixes the line its marker
    names only if the agent read node --test's failure and showed the helper the test calls."""
    workspace = tmp_path / "slugs"
    workspace.mkdir()
    (workspace / "slug.js").write_text(SLUG)
    (workspace / "slug.test.js").write_text(SLUG_TEST)
    result = await solve(client, workspace, testCommand="node --test", maxRounds=2)
    assert result["status"] == "solved", result["message"]
    assert "+  return title.trim().toLowerCase().split(/\\s+/).join('-');" in result["diff"]
    (change,) = result["edit"]["documentChanges"]
    assert change["textDocument"]["uri"] == (workspace / "slug.js").as_uri()
    assert (workspace / "slug.js").read_text() == SLUG


async def test_solve_without_a_test_command_says_what_to_set(client, tmp_path):
    with pytest.raises(Exception, match=r"smallcoder\.testCommand"):
        await client.protocol.send_request_async("smallcoder/solve", {
            "workspaceFolder": str(examples_copy(tmp_path))})


async def test_completions_answer_while_the_agent_runs(slow_client, tmp_path):
    client = slow_client
    solving = asyncio.ensure_future(solve(client, examples_copy(tmp_path)))
    await asyncio.sleep(2.5)
    started = time.monotonic()
    completion = await client.text_document_inline_completion_async(inline_params())
    assert completion.items[0].insert_text == "return total / len(values)"
    assert not solving.done()
    assert time.monotonic() - started < 3
    assert (await solving)["status"] == "solved"


async def test_cancel_stops_the_agent_within_two_seconds(slow_client, tmp_path):
    client = slow_client
    workspace = examples_copy(tmp_path)
    before = (workspace / "inventory.py").read_text()
    future = client.protocol.send_request("smallcoder/solve", {
        "workspaceFolder": str(workspace), "testCommand": PYTEST}, msg_id="solve-to-cancel")
    await asyncio.sleep(2.0)
    started = time.monotonic()
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="solve-to-cancel"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(asyncio.wrap_future(future), 5)
    assert time.monotonic() - started < 2
    status = await wait_for_state(client, "ready", timeout_s=2)
    assert status.state == "ready"
    assert (workspace / "inventory.py").read_text() == before
