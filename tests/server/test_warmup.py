"""Work ahead of the user over LSP, with the fake engine: the region the editor names is
warmed in the background, and the completion after an accepted suggestion is ready when the
editor asks for it."""

from __future__ import annotations

import asyncio
import time

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from model.engine import CancelToken
from server.warmup import in_turn, prefill_job
from tests.fakes import ScriptedEngine
from tests.server.test_lsp import (
    CURSOR,
    MEAN,
    URI,
    fake_model,
    inline_params,
    open_document,
    server_config,
    start,
    wait_for_state,
)


@pytest_lsp.fixture(config=server_config())
async def client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path), "logLevel": "debug"})
    await wait_for_state(lsp_client, "ready")
    open_document(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def wait_for_log(client: LanguageClient, text: str, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in client.log_messages:
            if text in message.message:
                return message.message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line with {text!r}: {[m.message for m in client.log_messages]}")


def prefill(client: LanguageClient, uri: str, line: int, character: int = 0) -> None:
    client.protocol.notify("smallcoder/prefill", {"textDocument": {"uri": uri},
                                                  "position": {"line": line,
                                                               "character": character}})


async def test_prefill_warms_the_named_region_and_says_so(client):
    prefill(client, URI, 5, 4)
    await wait_for_log(client, "warming stats.py:6")


async def test_a_prefill_of_a_file_that_is_not_open_changes_nothing(client):
    prefill(client, "file:///work/project/elsewhere.py", 3)
    status = await client.protocol.send_request_async("smallcoder/status", {})
    assert status.state == "ready" and status.warming is None
    assert not any("warming" in message.message for message in client.log_messages)


async def test_the_completion_after_an_accepted_suggestion_is_computed_ahead(client):
    shown = await client.text_document_inline_completion_async(inline_params())
    insert = shown.items[0].insert_text
    await wait_for_log(client, "computed ahead")
    lines = MEAN.split("\n")
    lines[CURSOR.line] = lines[CURSOR.line][:CURSOR.character] + insert
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="\n".join(lines))]))
    after = types.Position(line=CURSOR.line, character=CURSOR.character + len(insert))
    await client.text_document_inline_completion_async(inline_params(position=after))
    await wait_for_log(client, "speculated")


async def test_a_completion_computed_ahead_is_not_served_for_other_text(client):
    await client.text_document_inline_completion_async(inline_params())
    await wait_for_log(client, "computed ahead")
    await client.text_document_inline_completion_async(inline_params())
    assert not any("speculated" in message.message for message in client.log_messages)


@pytest_lsp.fixture(config=server_config(SMALLCODER_FAKE_TOKEN_SECONDS="0.02"))
async def slow_client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path), "logLevel": "debug"})
    await wait_for_state(lsp_client, "ready")
    long_text = "".join(f"value_{n} = {n}\n" for n in range(400)) + MEAN
    open_document(lsp_client, text=long_text)
    yield long_text
    await lsp_client.shutdown_session()


async def test_completions_keep_answering_while_warming_is_paused_and_resumed(slow_client):
    # Each completion pauses the warming of the region and each superseded one resumes it; a
    # paused job used to wait for its turn in a worker thread, and once six of them waited no
    # thread was left for the completion they waited for.
    client = slow_client
    pending = []
    for round_number in range(16):
        prefill(client, URI, 400 + (round_number % 3), 4)
        pending.append(client.text_document_inline_completion_async(
            inline_params(position=types.Position(line=405, character=4))))
        await asyncio.sleep(0.05)
    await asyncio.wait_for(pending[-1], timeout=60)
    status = await client.protocol.send_request_async("smallcoder/status", {})
    assert status.state == "ready"


def test_a_warming_job_resumed_after_a_pause_finishes_what_it_was_doing():
    engine = ScriptedEngine(["unused"])
    lean, rich = list(range(1, 40)), list(range(100, 300))
    job = in_turn([prefill_job(engine, lambda: [lean, rich], "x.py:1")])
    paused = CancelToken()
    paused.cancel()
    assert not job.work(paused)
    assert engine.cached_prefix_tokens(rich) == 0
    assert job.work(CancelToken())
    assert engine.cached_prefix_tokens(rich) == len(rich) - 1
    assert [len(prompt) for prompt in engine.prefilled] == [len(lean), len(lean), len(rich)]


def test_a_warming_job_passes_over_a_prompt_the_cache_holds():
    engine = ScriptedEngine(["unused"])
    held = list(range(100, 300))
    assert prefill_job(engine, lambda: [held], None).work(CancelToken())
    engine.prefilled.clear()
    assert prefill_job(engine, lambda: [held], None).work(CancelToken())
    assert engine.prefilled == []
