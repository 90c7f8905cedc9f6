"""The language server over stdio, driven as an editor drives it, with the fake engine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import REPO_ROOT

EMPTY_HOME = tempfile.mkdtemp(prefix="smallcoder-empty-home-")
SERVER = [sys.executable, str(REPO_ROOT / "tests" / "lsp_fake_server.py")]
URI = "file:///work/project/stats.py"
MEAN = "import math\n\n\ndef mean(values):\n    total = sum(values)\n    \n\n\nx = 1\n"
CURSOR = types.Position(line=5, character=4)
JS_URI = "file:///work/project/add.js"
JS = "function add(a, b) {\n  return a + b;\n}\n"


def fake_model(tmp_path: Path) -> str:
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF")
    return str(model)


async def start(client: LanguageClient, options: dict,
                folder_uri: str = "file:///work/project") -> None:
    """Initialize as VS Code does; registrations the server asks for land in
    `client.registrations`."""
    client.registrations = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)

    capabilities = client_capabilities("visual-studio-code")
    client.init_result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities, initialization_options=options,
        workspace_folders=[types.WorkspaceFolder(uri=folder_uri, name="project")]))


async def wait_for_state(client: LanguageClient, state: str, timeout_s: float = 10) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = await client.protocol.send_request_async("smallcoder/status", {})
        if status.state == state:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"server never reached {state}: {status}")


def open_document(client: LanguageClient, uri: str = URI, text: str = MEAN,
                  language: str = "python") -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))


def inline_params(uri: str = URI, position: types.Position = CURSOR):
    return types.InlineCompletionParams(
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        text_document=types.TextDocumentIdentifier(uri=uri), position=position)


def code_action_params(line: int, character: int) -> types.CodeActionParams:
    where = types.Position(line=line, character=character)
    return types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=URI),
                                  range=types.Range(start=where, end=where),
                                  context=types.CodeActionContext(diagnostics=[]))


def apply(text: str, edit: types.TextEdit) -> str:
    lines = text.split("\n")
    start = sum(len(row) + 1 for row in lines[:edit.range.start.line]) + edit.range.start.character
    end = sum(len(row) + 1 for row in lines[:edit.range.end.line]) + edit.range.end.character
    return text[:start] + edit.new_text + text[end:]


def server_config(**env: str) -> ClientServerConfig:
    import os

    return ClientServerConfig(server_command=SERVER, server_env={**os.environ, **env})


@pytest_lsp.fixture(config=server_config())
async def client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path), "logLevel": "debug"})
    await wait_for_state(lsp_client, "ready")
    open_document(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=server_config(SMALLCODER_FAKE_TOKEN_SECONDS="0.03"))
async def slow_client(lsp_client: LanguageClient, tmp_path):
    await start(lsp_client, {"model": fake_model(tmp_path)})
    await wait_for_state(lsp_client, "ready")
    open_document(lsp_client)
    yield
    await lsp_client.shutdown_session()


# ---------------------------------------------------------------- capabilities and completion


async def test_server_advertises_inline_completion_and_resolvable_code_actions(client):
    capabilities = client.init_result.capabilities
    assert capabilities.inline_completion_provider
    assert capabilities.code_action_provider.resolve_provider is True
    assert types.CodeActionKind.RefactorRewrite in (
        capabilities.code_action_provider.code_action_kinds)


async def test_inline_completion_inserts_the_rest_of_the_scope_at_the_cursor(client):
    result = await client.text_document_inline_completion_async(inline_params())
    (item,) = result.items
    assert item.insert_text == "return total / len(values)"
    assert item.range == types.Range(start=CURSOR, end=CURSOR)


async def test_disabled_inline_completions_return_nothing(client):
    client.set_configuration({"inlineCompletions": {"enabled": False}}, section="smallcoder")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if await client.text_document_inline_completion_async(inline_params()) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("completions still came after they were disabled")


async def test_a_newer_completion_request_stops_the_older_one(slow_client):
    client = slow_client
    started = time.monotonic()
    older = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params()))
    await asyncio.sleep(0.2)
    newer = await client.text_document_inline_completion_async(inline_params())
    older_result = await older
    # Each reply takes about 1.5 s at this speed: both in turn would take twice that.
    assert time.monotonic() - started < 2.6
    assert older_result is None
    assert newer.items[0].insert_text == "return total / len(values)"


async def test_cancel_request_stops_a_completion_at_once(slow_client):
    client = slow_client
    future = client.protocol.send_request("textDocument/inlineCompletion", inline_params(),
                                          msg_id="to-cancel")
    await asyncio.sleep(0.2)
    started = time.monotonic()
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="to-cancel"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(asyncio.wrap_future(future), 5)
    assert time.monotonic() - started < 0.5


async def test_completions_answer_while_a_refactor_runs(slow_client):
    client = slow_client
    refactor = asyncio.ensure_future(client.protocol.send_request_async(
        "smallcoder/refactor", {"textDocument": {"uri": URI}, "position": {"line": 4,
                                                                          "character": 4}}))
    await asyncio.sleep(0.3)
    completion = await client.text_document_inline_completion_async(inline_params())
    assert completion.items[0].insert_text == "return total / len(values)"
    assert not refactor.done()
    result = await refactor
    assert result.functionName == "mean"


async def test_a_completion_answers_while_more_explains_run_than_worker_threads(slow_client):
    """Found by the fuzzer: a completion held the turn gate while it waited for a worker
    thread, and every thread held a long job waiting at the gate for it."""
    client = slow_client
    explain = {"textDocument": {"uri": URI}, "position": {"line": 4, "character": 4}}
    explains = [asyncio.ensure_future(client.protocol.send_request_async(
        "smallcoder/explain", explain)) for _ in range(min(32, os.cpu_count() + 4) + 1)]
    await asyncio.sleep(0.3)
    completion = await asyncio.wait_for(
        client.text_document_inline_completion_async(inline_params()), 30)
    assert completion.items[0].insert_text == "return total / len(values)"
    for answer in await asyncio.wait_for(asyncio.gather(*explains), 60):
        assert answer.functionName == "mean"


# ---------------------------------------------------------------- code actions


async def test_code_actions_are_offered_inside_a_function(client):
    actions = await client.text_document_code_action_async(code_action_params(4, 6))
    assert [action.title for action in actions] == ["Refactor this function",
                                                    "Explain this function"]
    assert actions[0].kind == types.CodeActionKind.RefactorRewrite
    assert actions[0].edit is None
    # lsprotocol's client-side hook reads any action with a `command` as a bare Command and
    # keeps the nested command as text; VS Code reads the same JSON as a CodeAction.
    assert "'command': 'smallcoder.explainFunction'" in str(actions[1].command)


async def test_no_code_actions_outside_a_function(client):
    actions = await client.text_document_code_action_async(code_action_params(0, 0))
    assert actions is None


async def test_resolving_the_refactor_replaces_exactly_the_function(client):
    actions = await client.text_document_code_action_async(code_action_params(4, 6))
    resolved = await client.code_action_resolve_async(actions[0])
    (change,) = resolved.edit.document_changes
    (edit,) = change.edits
    assert apply(MEAN, edit) == MEAN.replace(
        "def mean(values):\n", "def mean(values):\n    # rewritten\n")


async def test_refactor_request_works_in_javascript(client):
    open_document(client, JS_URI, JS, "javascript")
    result = await client.protocol.send_request_async("smallcoder/refactor", {
        "textDocument": {"uri": JS_URI}, "position": {"line": 1, "character": 2},
        "instruction": "use a template literal"})
    edit = result.edit.documentChanges[0].edits[0]
    assert edit.newText == "function add(a, b) {\n  // rewritten\n  return a + b;\n}"
    assert (edit.range.start.line, edit.range.start.character) == (0, 0)
    assert (edit.range.end.line, edit.range.end.character) == (2, 1)


async def test_explain_returns_markdown_named_after_the_function(client):
    result = await client.protocol.send_request_async("smallcoder/explain", {
        "textDocument": {"uri": URI}, "position": {"line": 4, "character": 0}})
    assert result.functionName == "mean"
    assert result.markdown.startswith("### `mean`")
    assert "**mean**" in result.markdown


async def test_explain_flags_a_caller_the_index_does_not_know(client):
    text = MEAN.replace("    total = sum(values)\n", "    # fake-engine explanation: It is used "
                        "by `apply_discount` to average prices.\n    total = sum(values)\n")
    open_document(client, uri="file:///work/project/grounded.py", text=text)
    result = await client.protocol.send_request_async("smallcoder/explain", {
        "textDocument": {"uri": "file:///work/project/grounded.py"},
        "position": {"line": 4, "character": 0}})
    claim = next(note for note in result.notes if note.startswith("“called by"))
    assert claim.startswith("“called by `apply_discount`”: the index finds no call of `mean`")
    # The fake engine has no rewrite for the sentence: it is removed, and the note says so.
    assert f"- {claim} Removed: “It is used by `apply_discount` to average prices.”\n" in \
        result.markdown.split("Checked against the workspace index")[1]
    assert "apply_discount" not in result.markdown.split("---")[0]


async def test_explain_a_selection_or_a_whole_file(client):
    selected = await client.protocol.send_request_async("smallcoder/explain", {
        "textDocument": {"uri": URI}, "position": {"line": 3, "character": 0},
        "range": {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}})
    assert selected.functionName == "lines 4-5"
    whole = await client.protocol.send_request_async("smallcoder/explain", {
        "textDocument": {"uri": URI}, "position": {"line": 8, "character": 0}, "scope": "file"})
    assert whole.functionName == "stats.py" and whole.markdown.startswith("### `stats.py`")


async def test_explain_outside_a_function_says_where_to_put_the_cursor(client):
    with pytest.raises(Exception, match="no function at the cursor"):
        await client.protocol.send_request_async("smallcoder/explain", {
            "textDocument": {"uri": URI}, "position": {"line": 8, "character": 0}})


# ---------------------------------------------------------------- status and model


async def test_status_names_the_model_and_its_state(client, tmp_path):
    status = await client.protocol.send_request_async("smallcoder/status", {})
    assert status.state == "ready"
    assert status.model.endswith("fake.gguf")
    assert status.adapter is None


@pytest_lsp.fixture(config=server_config(SMALLCODER_HOME=EMPTY_HOME))
async def client_without_model(lsp_client: LanguageClient, tmp_path, monkeypatch):
    requests: list[types.ShowMessageRequestParams] = []

    @lsp_client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def show_message_request(params: types.ShowMessageRequestParams):
        requests.append(params)
        return None

    lsp_client.requests = requests
    await start(lsp_client, {"model": "qwen2.5-coder-1.5b-instruct-q4_k_m"})
    yield
    await lsp_client.shutdown_session()


async def test_a_missing_model_is_reported_and_its_download_offered(client_without_model,
                                                                    monkeypatch):
    client = client_without_model
    status = await wait_for_state(client, "missing-model")
    assert "smallcoder model pull" in status.message
    deadline = time.monotonic() + 5
    while not client.requests and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    (offer,) = client.requests
    assert "is not downloaded" in offer.message
    assert [action.title for action in offer.actions] == ["Download"]
    open_document(client)
    assert await client.text_document_inline_completion_async(inline_params()) is None


# ---------------------------------------------------------------- robustness


async def test_unknown_document_is_an_error_and_the_server_stays_up(client):
    with pytest.raises(Exception, match="not open"):
        await client.text_document_inline_completion_async(
            inline_params("file:///nowhere/else.py"))
    assert (await client.protocol.send_request_async("smallcoder/status", {})).state == "ready"


async def test_malformed_params_are_refused_clearly(client):
    with pytest.raises(Exception, match=r"params.position"):
        await client.protocol.send_request_async("smallcoder/explain",
                                                 {"textDocument": {"uri": URI}})
    answer: concurrent.futures.Future = concurrent.futures.Future()
    client.protocol._request_futures["raw-1"] = answer
    body = b'{"jsonrpc": "2.0", "id": "raw-1", "method": "textDocument/inlineCompletion", ' \
           b'"params": {"nope": 1}}'
    client.protocol.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    with pytest.raises(JsonRpcInvalidParams):
        await asyncio.wait_for(asyncio.wrap_future(answer), 5)
    assert (await client.protocol.send_request_async("smallcoder/status", {})).state == "ready"


async def test_a_position_past_the_end_answers_without_crashing(client):
    result = await client.text_document_inline_completion_async(
        inline_params(position=types.Position(line=500, character=3)))
    assert result is None or result.items
    actions = await client.text_document_code_action_async(code_action_params(900, 0))
    assert actions is None
    assert (await client.protocol.send_request_async("smallcoder/status", {})).state == "ready"


async def test_invalid_utf8_on_the_wire_does_not_bring_the_server_down(client):
    body = b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": "\xff\xfe\xfd"}'
    client.protocol.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await asyncio.sleep(0.2)
    assert (await client.protocol.send_request_async("smallcoder/status", {})).state == "ready"


async def test_a_five_megabyte_document_gets_an_answer(client):
    big = "def mean(values):\n    total = sum(values)\n    \n" + "x = 1\n" * 850_000
    assert len(big) > 5_000_000
    open_document(client, "file:///work/project/big.py", big)
    result = await client.text_document_inline_completion_async(
        inline_params("file:///work/project/big.py", types.Position(line=2, character=4)))
    assert result.items[0].insert_text == "return total / len(values)"


async def test_a_file_too_large_to_parse_gets_no_code_actions_and_explain_says_why(client):
    """Parsing it held the event loop for seconds at every cursor move (found by the fuzzer)."""
    big_uri = "file:///work/project/big.py"
    open_document(client, big_uri, "def mean(values):\n    total = sum(values)\n"
                                   + "x = 1\n" * 100_000)
    where = types.Position(line=1, character=6)
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=big_uri),
        range=types.Range(start=where, end=where), context=types.CodeActionContext(diagnostics=[])))
    assert actions is None
    with pytest.raises(JsonRpcInvalidParams, match="characters"):
        await client.protocol.send_request_async("smallcoder/explain", {
            "textDocument": {"uri": big_uri}, "position": {"line": 1, "character": 6}})


async def test_rapid_typing_gets_an_answer_for_the_last_keystroke(slow_client):
    client = slow_client
    text = MEAN
    pending = []
    for number in range(200):
        text = text.replace("\n    \n", "\n    \n", 1)
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=number + 2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        pending.append(asyncio.ensure_future(
            client.text_document_inline_completion_async(inline_params())))
    results = await asyncio.wait_for(asyncio.gather(*pending), 30)
    assert results[-1].items[0].insert_text == "return total / len(values)"
    assert sum(result is not None for result in results) < 20
