"""Explain and refactor report on the client's `partialResultToken` while the model writes.

The fake engine is slowed down (SMALLCODER_FAKE_TOKEN_SECONDS) so that writing takes about a
second: long enough for partial results to come before the answer.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from server.actions import PARTIAL_RESULT_INTERVAL_S
from tests.server.test_lsp import SERVER, URI, fake_model, open_document, start, wait_for_state

SECONDS_PER_TOKEN = "0.02"
MEAN_BODY = {"textDocument": {"uri": URI}, "position": {"line": 4, "character": 4}}


def client_keeping_partial_results() -> LanguageClient:
    """pytest-lsp's client, but `$/progress` values without a `kind` (partial results, not
    work-done progress) are kept as they come, with the time they came, in
    `client.partial_results[token]`."""
    client = LanguageClient(converter_factory=default_converter)
    client.partial_results = {}
    work_done_progress = DEFAULT_CLIENT_FEATURES[types.PROGRESS]

    def progress(client: LanguageClient, params: types.ProgressParams) -> None:
        if isinstance(params.value, dict) and "kind" not in params.value:
            client.partial_results.setdefault(params.token, []).append(
                (time.monotonic(), params.value))
        else:
            work_done_progress(client, params)

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.PROGRESS: progress})
    return client


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=SERVER, client_factory=client_keeping_partial_results,
    server_env={**os.environ, "SMALLCODER_FAKE_TOKEN_SECONDS": SECONDS_PER_TOKEN}))
async def client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path)})
    await wait_for_state(lsp_client, "ready")
    open_document(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def request_with_partial_results(client: LanguageClient, method: str, params: dict,
                                       token: str) -> tuple[Any, float, list[tuple[float, dict]]]:
    """The answer, when it came, and the partial results (time, value) sent on `token`."""
    answer = await client.protocol.send_request_async(method, {**params,
                                                               "partialResultToken": token})
    return answer, time.monotonic(), client.partial_results.get(token, [])


async def test_explain_sends_the_markdown_so_far_before_it_answers(client):
    answer, answered_at, partials = await request_with_partial_results(
        client, "smallcoder/explain", MEAN_BODY, "explain-1")
    assert len(partials) >= 3
    assert all(at < answered_at for at, _ in partials)
    markdowns = [value["markdown"] for _, value in partials]
    assert markdowns[0].startswith("### `mean`\n\n")
    assert all(answer.markdown.startswith(markdown) for markdown in markdowns)
    assert markdowns == sorted(markdowns, key=len)
    assert {value["functionName"] for _, value in partials} == {"mean"}
    # The reply is about 60 tokens: a partial result per token would be 60.
    elapsed_s = partials[-1][0] - partials[0][0]
    assert len(partials) <= elapsed_s / PARTIAL_RESULT_INTERVAL_S + 2


async def test_refactor_counts_the_tokens_generated_before_it_answers(client):
    answer, answered_at, partials = await request_with_partial_results(
        client, "smallcoder/refactor", MEAN_BODY, "refactor-1")
    assert answer.functionName == "mean"
    assert len(partials) >= 3
    assert all(at < answered_at for at, _ in partials)
    counts = [value["generatedTokens"] for _, value in partials]
    assert counts == sorted(counts) and counts[0] >= 1
    assert {value["functionName"] for _, value in partials} == {"mean"}


async def test_explain_outside_a_function_is_refused_before_the_model_starts(client):
    started = time.monotonic()
    try:
        await client.protocol.send_request_async("smallcoder/explain", {
            "textDocument": {"uri": URI}, "position": {"line": 8, "character": 0},
            "partialResultToken": "explain-3"})
    except Exception as error:
        assert "no function at the cursor" in str(error)
    else:
        raise AssertionError("explain answered outside a function")
    assert time.monotonic() - started < 0.5
    status = await client.protocol.send_request_async("smallcoder/status", {})
    assert status.state == "ready"
