"""The settings table: package.json and the extension agree with it, values are checked against
it, and the model falls back to $SMALLCODER_MODEL unless the user chose one."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import LanguageClient

from model.registry import DEFAULT_MODEL
from server.settings import (
    BY_KEY,
    PACKAGE_JSON,
    SETTINGS,
    Settings,
    main,
    package_json_capabilities,
    package_json_configuration,
    settings_from_client,
    write_package_json,
)
from tests.conftest import REPO_ROOT
from tests.server.test_lsp import fake_model, server_config, start, wait_for_state

SETTINGS_TS = REPO_ROOT / "extension" / "src" / "settings.ts"
ENVIRONMENT_MODEL = Path(tempfile.mkdtemp(prefix="smallcoder-env-model-")) / "from-environment.gguf"


def package_json_block() -> dict:
    return json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["contributes"]["configuration"]


@pytest.fixture
def no_environment_model(monkeypatch):
    monkeypatch.delenv("SMALLCODER_MODEL", raising=False)


# ---------------------------------------------------------------- one table, no drift


@pytest.mark.parametrize("key", sorted({f"smallcoder.{row.key}" for row in SETTINGS}
                                       | set(package_json_block()["properties"])))
def test_package_json_declares_each_setting_as_the_table_does(key):
    generated = package_json_configuration()["properties"].get(key)
    declared = package_json_block()["properties"].get(key)
    assert declared == generated, (
        f"{key} differs between package.json and server/settings.py: "
        "run `python -m server.settings --package-json --write`")


def test_package_json_holds_exactly_the_generated_block():
    assert package_json_block() == package_json_configuration()


def test_the_command_prints_the_block_package_json_holds(capsys):
    assert main(["--package-json"]) == 0
    assert json.loads(capsys.readouterr().out) == package_json_block()


def test_writing_the_block_changes_nothing_else_in_package_json(tmp_path):
    copy = tmp_path / "package.json"
    shutil.copy(PACKAGE_JSON, copy)
    manifest = json.loads(copy.read_text(encoding="utf-8"))
    manifest["contributes"]["configuration"] = {"title": "stale", "properties": {}}
    copy.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    write_package_json(copy)
    assert copy.read_text(encoding="utf-8") == PACKAGE_JSON.read_text(encoding="utf-8")


def test_the_extension_reads_every_setting_and_repeats_no_default():
    source = SETTINGS_TS.read_text(encoding="utf-8")
    read = set(re.findall(r"declared<[^>]+>\(config, '([^']+)'\)", source))
    assert read == set(BY_KEY)
    assert re.findall(r"\.get<[^>]*>\([^)]*,", source) == []


def test_the_new_state_cache_setting_is_in_the_table():
    row = BY_KEY["stateCacheMb"]
    assert (row.field, row.type, row.default, row.minimum, row.maximum) == (
        "state_cache_mb", int, 256, 0, 4096)


def test_settings_naming_a_program_or_a_file_are_the_users_not_an_untrusted_workspaces():
    """A cloned repository's .vscode/settings.json must not choose what SmallCoder runs or loads:
    every free-form text setting names a program or a file, is per machine (a trusted workspace
    may override it, and is then asked), and package.json restricts it in untrusted workspaces."""
    free_text = {row.key for row in SETTINGS if row.type is str and not row.choices}
    guarded = {row.key for row in SETTINGS if row.names_program_or_file}
    assert free_text <= guarded == {"pythonPath", "model", "adapter", "testCommand", "engine",
                                    "serverUrl", "serverModel"}
    assert {BY_KEY[key].scope for key in guarded} == {"machine-overridable"}
    untrusted = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["capabilities"][
        "untrustedWorkspaces"]
    assert untrusted["supported"] == "limited"
    assert set(untrusted["restrictedConfigurations"]) == {f"smallcoder.{key}" for key in guarded}


def test_package_json_holds_the_generated_capabilities():
    manifest = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))
    assert manifest["capabilities"] == package_json_capabilities()


def test_the_extension_takes_programs_and_files_only_through_the_trust_guard():
    source = SETTINGS_TS.read_text(encoding="utf-8")
    trust = (SETTINGS_TS.parent / "trust.ts").read_text(encoding="utf-8")
    assert "guardedValue(key, scope)" in source and "guardedValue('model', scope)" in source
    listed = set(re.findall(r"'(\w+)'", trust.split("PROGRAM_SETTINGS = ")[1].split(";")[0]))
    listed |= set(re.findall(r"'(\w+)'", trust.split("FILE_SETTINGS = ")[1].split(";")[0]))
    listed |= set(re.findall(r"'(\w+)'", trust.split("SERVER_SETTINGS = ")[1].split(";")[0]))
    assert listed == {row.key for row in SETTINGS if row.names_program_or_file}


# ---------------------------------------------------------------- values from the client


def test_unset_settings_take_the_table_defaults(no_environment_model):
    settings, warnings = settings_from_client({})
    assert warnings == []
    assert {row.field: getattr(settings, row.field) for row in SETTINGS} == {
        row.field: row.default for row in SETTINGS}


def test_nested_and_dotted_keys_both_set_a_value():
    nested, _ = settings_from_client({"smallcoder": {"inlineCompletions": {"maxTokens": 64}}})
    dotted, _ = settings_from_client({"inlineCompletions.maxTokens": 64, "stateCacheMb": 512})
    assert nested.inline_max_tokens == dotted.inline_max_tokens == 64
    assert dotted.state_cache_mb == 512


def test_keys_the_client_leaves_out_keep_their_value():
    base, _ = settings_from_client({"vramBudgetMb": 0, "testCommand": "pytest -q"})
    settings, _ = settings_from_client({"logLevel": "debug"}, base)
    assert (settings.vram_budget_mb, settings.test_command, settings.log_level) == (
        0, "pytest -q", "debug")


def test_a_value_of_the_wrong_type_falls_back_with_a_warning():
    settings, warnings = settings_from_client({"inlineCompletions": {"maxTokens": "lots",
                                                                     "enabled": 1}})
    assert settings.inline_max_tokens == 48 and settings.inline_enabled is True
    assert len(warnings) == 2
    assert "smallcoder.inlineCompletions.maxTokens should be int, got 'lots'" in warnings[0]


@pytest.mark.parametrize(("key", "value"), [
    ("inlineCompletions.maxTokens", 0),
    ("inlineCompletions.timeBudgetMs", 10),
    ("inlineCompletions.contextTokens", 8193),
    ("vramBudgetMb", -1),
    ("stateCacheMb", 4097),
    ("adapterScale", -0.5),
])
def test_a_value_outside_its_range_falls_back_to_the_default_with_a_warning(key, value):
    row = BY_KEY[key]
    settings, warnings = settings_from_client({key: value})
    assert getattr(settings, row.field) == row.default
    (warning,) = warnings
    assert warning.startswith(f"smallcoder.{key} must be ") and f"got {value!r}" in warning


def test_the_range_bounds_themselves_are_accepted():
    settings, warnings = settings_from_client({"stateCacheMb": 0, "inlineCompletions": {
        "contextTokens": 8192, "timeBudgetMs": 50}})
    assert warnings == []
    assert (settings.state_cache_mb, settings.inline_context_tokens,
            settings.inline_time_budget_ms) == (0, 8192, 50.0)


def test_a_log_level_that_is_not_a_choice_falls_back_with_a_warning():
    settings, warnings = settings_from_client({"logLevel": "verbose"})
    assert settings.log_level == "info"
    assert warnings == ["smallcoder.logLevel must be one of error, warning, info, debug, got "
                        "'verbose'; keeping 'info'"]


# ---------------------------------------------------------------- the model and $SMALLCODER_MODEL


def test_the_model_defaults_to_the_registry_without_the_environment(no_environment_model):
    assert Settings().model == DEFAULT_MODEL


def test_the_model_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("SMALLCODER_MODEL", "/models/mine.gguf")
    assert Settings().model == "/models/mine.gguf"
    assert settings_from_client({"model": ""})[0].model == "/models/mine.gguf"


def test_a_model_the_user_chose_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("SMALLCODER_MODEL", "/models/mine.gguf")
    settings, _ = settings_from_client({"model": "qwen2.5-coder-0.5b-instruct-q4_k_m"})
    assert settings.model == "qwen2.5-coder-0.5b-instruct-q4_k_m"


def test_removing_the_chosen_model_returns_to_the_default(monkeypatch):
    monkeypatch.setenv("SMALLCODER_MODEL", "/models/mine.gguf")
    chosen, _ = settings_from_client({"model": "qwen2.5-coder-0.5b-instruct-q4_k_m"})
    assert settings_from_client({"model": ""}, chosen)[0].model == "/models/mine.gguf"


@pytest_lsp.fixture(config=server_config(SMALLCODER_MODEL=str(ENVIRONMENT_MODEL)))
async def client_with_environment_model(lsp_client: LanguageClient):
    ENVIRONMENT_MODEL.write_bytes(b"GGUF")
    yield lsp_client
    await lsp_client.shutdown_session()


async def test_a_server_serves_the_environment_model_when_the_client_names_none(
        client_with_environment_model):
    client = client_with_environment_model
    await start(client, {"logLevel": "debug"})
    status = await wait_for_state(client, "ready")
    assert status.model == str(ENVIRONMENT_MODEL)


async def test_a_server_serves_the_model_the_client_names_over_the_environment(
        client_with_environment_model, tmp_path):
    client = client_with_environment_model
    chosen = fake_model(tmp_path)
    await start(client, {"model": chosen})
    status = await wait_for_state(client, "ready")
    assert status.model == chosen
