"""`smallcoder serve` end to end with the real 0.5B model: one completion, one refactor."""

from __future__ import annotations

import ast
import os
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.conftest import REPO_ROOT
from tests.server.test_lsp import apply, open_document, start, wait_for_state

pytestmark = pytest.mark.model
EXAMPLES = REPO_ROOT / "examples"
STATS_URI = (EXAMPLES / "stats.py").as_uri()
INVENTORY_URI = (EXAMPLES / "inventory.py").as_uri()


@pytest_lsp.fixture(config=ClientServerConfig(
    server_command=[sys.executable, "-m", "cli", "serve"],
    server_env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}))
async def client(lsp_client: LanguageClient):
    await start(lsp_client, {"model": os.environ["SMALLCODER_MODEL"]})
    await wait_for_state(lsp_client, "ready", timeout_s=120)
    yield
    await lsp_client.shutdown_session()


async def test_real_model_completes_the_median_body(client):
    text = (EXAMPLES / "stats.py").read_text().replace('is empty."""\n\n', 'is empty."""\n    \n')
    open_document(client, STATS_URI, text)
    row = text.split("\n").index("    ")
    where = types.Position(line=row, character=4)
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        context=types.InlineCompletionContext(
            trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        text_document=types.TextDocumentIdentifier(uri=STATS_URI), position=where))
    (item,) = result.items
    completed = apply(text, types.TextEdit(range=item.range, new_text=item.insert_text))
    ast.parse(completed)
    assert "values" in item.insert_text


async def test_real_model_refactors_a_function_that_still_parses(client):
    text = (EXAMPLES / "inventory.py").read_text()
    open_document(client, INVENTORY_URI, text)
    row = next(i for i, line in enumerate(text.split("\n")) if line.startswith("def low_stock"))
    result = await client.protocol.send_request_async("smallcoder/refactor", {
        "textDocument": {"uri": INVENTORY_URI}, "position": {"line": row + 2, "character": 4},
        "instruction": "use an explicit for loop instead of the list comprehension"})
    assert result.functionName == "low_stock"
    raw = result.edit.documentChanges[0].edits[0]
    edit = types.TextEdit(
        range=types.Range(
            start=types.Position(line=raw.range.start.line, character=raw.range.start.character),
            end=types.Position(line=raw.range.end.line, character=raw.range.end.character)),
        new_text=raw.newText)
    assert edit.range.start.line == row
    refactored = apply(text, edit)
    tree = ast.parse(refactored)
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert names == ["stock_value_cents", "apply_discount", "low_stock"]
    assert "def low_stock(items: list[Item], threshold: int) -> list[str]:" in refactored
    assert refactored != text
