"""`smallcoder/refactor` with a test command, over stdio with the fake engine: the tests run in a
scratch copy before the edit is offered, and the answer says which checks ran."""

from __future__ import annotations

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient

from tests.server.test_lsp import fake_model, open_document, start, wait_for_state
from tests.server.test_lsp_solve import PYTEST, examples_copy, plain, solve_config


@pytest.fixture
def workspace(tmp_path):
    return examples_copy(tmp_path)


@pytest_lsp.fixture(config=solve_config())
async def client(lsp_client: LanguageClient, tmp_path, workspace):
    await start(lsp_client, {"model": fake_model(tmp_path), "testCommand": PYTEST},
                folder_uri=workspace.as_uri())
    await wait_for_state(lsp_client, "ready")
    yield
    await lsp_client.shutdown_session()


async def refactor_low_stock(client: LanguageClient, workspace) -> dict:
    uri = (workspace / "inventory.py").as_uri()
    open_document(client, uri=uri, text=(workspace / "inventory.py").read_text())
    return plain(await client.protocol.send_request_async("smallcoder/refactor", {
        "textDocument": {"uri": uri}, "position": {"line": 26, "character": 4}}))


async def test_the_refactor_names_the_checks_it_passed_tests_included(client, workspace):
    result = await refactor_low_stock(client, workspace)
    checks = {check["name"]: check for check in result["checks"]}
    assert list(checks) == ["parses", "signature", "callers", "names", "tests"]
    assert all(check["passed"] for check in checks.values())
    # examples/ has one failing test (apply_discount's bug): it failed before the rewrite too.
    assert "failed before the rewrite too" in checks["tests"]["detail"]
    assert "# rewritten" in result["edit"]["documentChanges"][0]["edits"][0]["newText"]
    assert "# rewritten" not in (workspace / "inventory.py").read_text()


async def test_a_refactor_whose_tests_fail_is_refused_and_says_so(client, workspace):
    (workspace / "tests" / "test_untouched.py").write_text(
        "from pathlib import Path\n\n\ndef test_inventory_is_as_written():\n"
        "    text = (Path(__file__).parent.parent / 'inventory.py').read_text()\n"
        "    assert 'rewritten' not in text\n")
    with pytest.raises(Exception, match=r"no rewrite passed the checks in 3 candidates; the "
                                        r"last failed tests: .*test_inventory_is_as_written"):
        await refactor_low_stock(client, workspace)
