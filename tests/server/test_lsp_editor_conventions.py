"""What a user of other assistants expects on day one, over the protocol with the fake engine:
completions per language, files kept away by `smallcoder.exclude` and `.smallcoderignore`,
and files changed on disk reaching the next completion."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.server.test_lsp import (
    MEAN,
    fake_model,
    inline_params,
    open_document,
    server_config,
    start,
    wait_for_state,
)

CURSOR = types.Position(line=5, character=4)  # MEAN's blank line in `mean`'s body
HELPER = "def shout(text):\n    # fake-engine reply: {reply}\n    return text.upper()\n"
GREET = "from helper import shout\n\n\ndef greet(name):\n    loud = shout(name)\n    \n"


async def begin(client: LanguageClient, folder: Path, options: dict | None = None) -> None:
    await start(client, {"model": fake_model(folder.parent), "logLevel": "debug",
                         **(options or {})}, folder_uri=folder.as_uri())
    await wait_for_state(client, "ready")


def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "helper.py").write_text(HELPER.format(reply="return shout(old)"))
    (folder / "greet.py").write_text(GREET)
    return folder


def change_settings(client: LanguageClient, settings: dict) -> None:
    client.set_configuration(settings, section="smallcoder")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={}))


async def completion_text(client: LanguageClient, uri: str,
                          position: types.Position = CURSOR) -> str | None:
    result = await client.text_document_inline_completion_async(inline_params(uri, position))
    return None if result is None else result.items[0].insert_text


async def eventually(what: str, check, timeout_s: float = 10):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


@pytest_lsp.fixture(config=server_config())
async def client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=server_config(SMALLCODER_FAKE_TOKEN_SECONDS="0.05"))
async def slow_client(lsp_client: LanguageClient):
    yield
    await lsp_client.shutdown_session()


# ---------------------------------------------------------------- per language


async def test_markdown_gets_no_completion_by_default_and_one_once_enabled(client, tmp_path):
    folder = workspace(tmp_path)
    await begin(client, folder)
    uri = (folder / "notes.md").as_uri()
    open_document(client, uri, MEAN, language="markdown")
    assert await completion_text(client, uri) is None
    change_settings(client, {"enable": {"markdown": True}})
    assert await eventually("a completion in Markdown", lambda: completion_text(client, uri))


async def test_a_language_left_out_of_the_setting_follows_the_star(client, tmp_path):
    folder = workspace(tmp_path)
    await begin(client, folder, {"enable": {"*": False, "python": True}})
    go_uri = (folder / "main.go").as_uri()
    open_document(client, go_uri, MEAN, language="go")
    open_document(client, (folder / "stats.py").as_uri(), MEAN)
    assert await completion_text(client, go_uri) is None
    assert await completion_text(client, (folder / "stats.py").as_uri()) is not None


async def test_turning_a_language_off_stops_its_request_at_once(slow_client, tmp_path):
    folder = workspace(tmp_path)
    await begin(slow_client, folder)
    uri = (folder / "stats.py").as_uri()
    open_document(slow_client, uri, MEAN)
    started = time.monotonic()
    request = asyncio.ensure_future(completion_text(slow_client, uri))
    await asyncio.sleep(0.3)  # the fake writes a token per 50 ms: the request is under way
    change_settings(slow_client, {"enable": {"python": False}})
    assert await request is None
    # Written to the end, the fake's 30-odd tokens would take over 1.5 s.
    assert time.monotonic() - started < 1.4


# ---------------------------------------------------------------- files kept away


async def test_an_excluded_file_gets_no_completion(client, tmp_path):
    folder = workspace(tmp_path)
    await begin(client, folder, {"exclude": ["generated/"]})
    kept_away = (folder / "generated" / "stats.py").as_uri()
    open_document(client, kept_away, MEAN)
    open_document(client, (folder / "stats.py").as_uri(), MEAN)
    assert await completion_text(client, kept_away) is None
    assert await completion_text(client, (folder / "stats.py").as_uri()) is not None


async def test_a_file_the_ignore_file_names_gets_no_completion(client, tmp_path):
    folder = workspace(tmp_path)
    (folder / ".smallcoderignore").write_text("# secrets stay local\nsecret_*.py\n")
    await begin(client, folder)
    uri = (folder / "secret_keys.py").as_uri()
    open_document(client, uri, MEAN)
    assert await completion_text(client, uri) is None


async def test_a_bad_pattern_is_reported_once_and_the_others_still_hold(client, tmp_path):
    folder = workspace(tmp_path)
    (folder / ".smallcoderignore").write_text("broken\\\nsecret_*.py\n")
    await begin(client, folder)
    uri = (folder / "secret_keys.py").as_uri()
    open_document(client, uri, MEAN)
    open_document(client, (folder / "other.py").as_uri(), MEAN)
    assert await completion_text(client, uri) is None
    change_settings(client, {"exclude": ["[z-a]"]})
    await eventually("the bad exclude pattern reported", lambda: asyncio.sleep(
        0, [m for m in client.messages if "[z-a]" in m.message]))
    change_settings(client, {"logLevel": "info"})
    await asyncio.sleep(0.3)
    reports = [m.message for m in client.messages if m.type == types.MessageType.Warning]
    assert len([m for m in reports if "broken" in m]) == 1, reports
    assert len([m for m in reports if "[z-a]" in m]) == 1, reports
    assert ".smallcoderignore:1" in next(m for m in reports if "broken" in m)


# ---------------------------------------------------------------- files changed on disk


async def test_the_server_asks_the_editor_to_watch_source_and_ignore_files(client, tmp_path):
    await begin(client, workspace(tmp_path))
    (registration,) = await eventually("a registration", lambda: asyncio.sleep(
        0, client.registrations))
    assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    globs = [watcher["globPattern"] for watcher in registration.register_options["watchers"]]
    assert "**/.smallcoderignore" in globs
    assert any("py" in glob and "ts" in glob for glob in globs)


async def test_a_file_changed_on_disk_reaches_the_next_completion(client, tmp_path):
    """`greet` calls a `whisper` that exists only once helper.py changes on disk (a checkout):
    its definition, and the reply it asks for, reach the prompt only through the index."""
    folder = workspace(tmp_path)
    await begin(client, folder)
    uri = (folder / "greet.py").as_uri()
    greet = GREET.replace("shout", "whisper")
    open_document(client, uri, greet)
    await eventually("the helper indexed", lambda: _is(completion_text(client, uri),
                                                       "return total / len(values)"))
    (folder / "helper.py").write_text(HELPER.format(reply="return whisper(new)")
                                      .replace("shout", "whisper"))
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(folder / "helper.py").as_uri(),
                        type=types.FileChangeType.Changed)]))
    assert await completion_text(client, uri) == "return whisper(new)"


async def test_an_ignore_file_written_on_disk_holds_at_once(client, tmp_path):
    folder = workspace(tmp_path)
    await begin(client, folder)
    uri = (folder / "greet.py").as_uri()
    open_document(client, uri, GREET)
    assert await eventually("a completion", lambda: completion_text(client, uri))
    (folder / ".smallcoderignore").write_text("greet.py\n")
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
        types.FileEvent(uri=(folder / ".smallcoderignore").as_uri(),
                        type=types.FileChangeType.Created)]))
    await eventually("no completion in the newly ignored file",
                     lambda: _is(completion_text(client, uri), None))


async def _is(answer, expected) -> bool:
    return await answer == expected
