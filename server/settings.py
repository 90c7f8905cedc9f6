"""The `smallcoder.*` settings: one table of every setting's client key, Python field, type,
default, range, choices, scope and description, and the typed value built from what a client sends.

This table is the one owner of setting names and defaults: the server and the command line read
them here, and package.json's `contributes.configuration` is generated from it (a test fails
when the two differ). After adding or changing a setting, regenerate the block rather than
editing package.json by hand:

    python -m server.settings --package-json           # print the block
    python -m server.settings --package-json --write   # replace it in package.json

Clients send the settings as initializationOptions and answer workspace/configuration with them;
unknown keys are ignored, and a value of the wrong type, outside its range or not among its
choices keeps the value in effect (the default at start) with a warning. The model is named only
when the user chose one ("" or absent: not chosen): a chosen model wins over $SMALLCODER_MODEL,
otherwise the server serves $SMALLCODER_MODEL, else the registry's default.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assist.completion import DEFAULT_MAX_TOKENS, DEFAULT_TIME_BUDGET_MS
from assist.workspace import DEFAULT_COMPLETION_CONTEXT_TOKENS
from model.registry import DEFAULT_MODEL

SECTION = "smallcoder"
LOG_LEVELS = ("error", "warning", "info", "debug")
ENGINES = ("local", "llama-server", "openai")
PACKAGE_JSON = Path(__file__).resolve().parent.parent / "package.json"
# The Python type of a field → the JSON schema type VS Code validates it with.
JSON_TYPES = {bool: "boolean", int: "number", float: "number", str: "string",
              Mapping: "object", tuple: "array"}
# The per-language switch of inline completions: on for code, off for prose and data files.
DEFAULT_LANGUAGES_ENABLED = {"*": True, "plaintext": False, "markdown": False, "dotenv": False,
                             "log": False}


@dataclass(frozen=True)
class Setting:
    """One row of the table: how clients name a setting and which values it accepts."""

    key: str  # after `smallcoder.`, as VS Code and the client spell it
    default: Any  # what package.json declares, so what VS Code fills in when the user set nothing
    description: str  # Markdown when it has `code` or **bold**
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    scope: str | None = None  # VS Code's scope; None: "window", VS Code's own default
    # It names a program or a file SmallCoder runs or loads, or a server it sends code to: an
    # untrusted workspace's settings cannot set it (package.json's restrictedConfigurations),
    # and a trusted one's value is shown to the user before it is first used.
    names_program_or_file: bool = False
    environment: str | None = None  # a variable that replaces the default on the server
    field: str = ""  # the Settings field; filled in from the class that declares the setting
    type: type = object  # that field's type

    def server_default(self) -> Any:
        return (os.environ.get(self.environment) if self.environment else None) or self.default

    def problem(self, value: Any) -> str | None:
        """Why `value` (already of the right type) is not acceptable, or None."""
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        too_low = self.minimum is not None and value < self.minimum
        if too_low or (self.maximum is not None and value > self.maximum):
            return f"must be {_range_text(self.minimum, self.maximum)}"
        return None

    def json_schema(self) -> dict[str, Any]:
        """This setting's entry under `contributes.configuration.properties` in package.json."""
        schema: dict[str, Any] = {"type": JSON_TYPES[self.type]}
        if self.choices:
            schema["enum"] = list(self.choices)
        default = list(self.default) if isinstance(self.default, tuple) else self.default
        schema["default"] = _json_number(default)
        if self.minimum is not None:
            schema["minimum"] = _json_number(self.minimum)
        if self.maximum is not None:
            schema["maximum"] = _json_number(self.maximum)
        if self.type is Mapping:
            schema["additionalProperties"] = {"type": "boolean"}
        if self.type is tuple:
            schema["items"] = {"type": "string"}
        if self.scope is not None:
            schema["scope"] = self.scope
        markdown = "`" in self.description or "**" in self.description
        schema["markdownDescription" if markdown else "description"] = self.description
        return schema


def setting(key: str, default: Any, description: str, **limits: Any) -> Any:
    """A Settings field declared with its row of the table (see `Setting` for `limits`)."""
    row = Setting(key, default, description, **limits)
    metadata = {"setting": row}
    if isinstance(default, dict):  # a dataclass default must not be shared and mutable
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    if row.environment is None:
        return dataclasses.field(default=default, metadata=metadata)
    return dataclasses.field(default_factory=row.server_default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    python_path: str = setting(
        "pythonPath", "",
        "Python interpreter that has the `smallcoder` package installed. Empty: SmallCoder "
        "creates its own environment on first start and installs the server bundled with the "
        "extension.",
        scope="machine-overridable", names_program_or_file=True)
    model: str = setting(
        "model", DEFAULT_MODEL,
        "Model to serve: a name from SmallCoder's registry "
        "(`qwen2.5-coder-1.5b-instruct-q4_k_m`, `qwen2.5-coder-0.5b-instruct-q4_k_m`) or the "
        "path of a local `.gguf` file. Left unset, the server serves `$SMALLCODER_MODEL` when "
        "VS Code's environment has it, else this default.",
        environment="SMALLCODER_MODEL", scope="machine-overridable", names_program_or_file=True)
    engine: str = setting(
        "engine", "local",
        "Where the model runs: `local` (in the language server, on this machine), "
        "`llama-server` (a team's llama.cpp server at `smallcoder.serverUrl`, sent token ids) "
        "or `openai` (any OpenAI-compatible server there, such as vLLM, sent prompt text). "
        "Nothing leaves this machine unless you choose a server. Its API key is kept in VS "
        "Code's secret storage: **SmallCoder: Set Team Server API Key**.",
        choices=ENGINES, scope="machine-overridable", names_program_or_file=True)
    server_url: str = setting(
        "serverUrl", "",
        "The team server's URL when `smallcoder.engine` is not `local`, for example "
        "`http://127.0.0.1:8080` or `https://gpu-box.example.com`. Prompts hold your code: "
        "`http://` to another machine sends it unencrypted.",
        scope="machine-overridable", names_program_or_file=True)
    server_model: str = setting(
        "serverModel", "",
        "The model name to ask an `openai` server for (as its `/v1/models` lists it); empty: "
        "the first it lists. `smallcoder.model` must still name a local GGUF of the same "
        "family: SmallCoder lays out prompts with its vocabulary.",
        scope="machine-overridable", names_program_or_file=True)
    engine_fallback: bool = setting(
        "engineFallback", False,
        "When the team server cannot be used at start (unreachable, key refused, another "
        "model), run the local model instead of showing an error.",
        scope="machine-overridable")
    inline_enabled: bool = setting(
        "inlineCompletions.enabled", True,
        "Show the model's completions as ghost text while you type.")
    inline_max_tokens: int = setting(
        "inlineCompletions.maxTokens", DEFAULT_MAX_TOKENS,
        "Longest inline completion, in tokens.",
        minimum=1)
    inline_time_budget_ms: float = setting(
        "inlineCompletions.timeBudgetMs", DEFAULT_TIME_BUDGET_MS,
        "Time the model may spend on one inline completion, in milliseconds.",
        minimum=50)
    inline_context_tokens: int = setting(
        "inlineCompletions.contextTokens", DEFAULT_COMPLETION_CONTEXT_TOKENS,
        "Tokens of code from other files of the workspace (definitions the code around the "
        "cursor uses, similar code, recent edits) put ahead of each inline completion. More "
        "context helps the model use your helpers; each 1,000 tokens costs prompt time when "
        "that context changes. `0` turns it off.",
        minimum=0, maximum=8192)
    vram_budget_mb: int = setting(
        "vramBudgetMb", 2048,
        "GPU memory SmallCoder may use, in MB (0: run on the CPU only).",
        minimum=0)
    state_cache_mb: int = setting(
        "stateCacheMb", 256,
        "Memory for saved model states of recently visited files and functions, in MB: "
        "returning to one costs only the edit instead of evaluating its whole prompt again. "
        "0 turns the cache off.",
        minimum=0, maximum=4096)
    log_level: str = setting(
        "logLevel", "info",
        "How much the language server writes to the SmallCoder output channel.",
        choices=LOG_LEVELS)
    adapter: str = setting(
        "adapter", "",
        "Personal-style LoRA adapter (a `.gguf` adapter file) to apply on top of the model; "
        "train one with **SmallCoder: Train Personal Adapter**. Empty: none.",
        scope="machine-overridable", names_program_or_file=True)
    adapter_scale: float = setting(
        "adapterScale", 1.0,
        "Strength of the adapter (0 turns it off, 1 applies it as trained).",
        minimum=0)
    test_command: str = setting(
        "testCommand", "",
        "Command that runs the workspace's tests (for example `pytest -q`). \"Solve with "
        "Agent\" offers it first and runs it; a refactoring runs it in a scratch copy and "
        "offers the rewritten function only when no test that passed before fails.",
        scope="machine-overridable", names_program_or_file=True)
    agent_max_copy_mb: int = setting(
        "agent.maxCopyMb", 512,
        "Largest workspace, in MB, that **Solve with Agent** copies to work in; a bigger one is "
        "refused with a message (list big data files in `.gitignore`, or raise this).",
        minimum=1)
    training_learn_from_accepted: bool = setting(
        "training.learnFromAccepted", False,
        "Keep the fixes you accept from **Solve with Agent** (with the failing tests they made "
        "pass) and the refactorings you accept, on this machine only (under "
        "`$SMALLCODER_HOME/accepted`, readable by you alone; never a change with a key, token or "
        "password in it), and learn from them in the next **Train Personal Adapter**.",
        scope="machine-overridable")
    training_threads: int = setting(
        "training.threads", 0,
        "Threads for training a personal adapter and evaluating it. `0`: the physical cores "
        "SmallCoder may use on this machine.",
        minimum=0, scope="machine-overridable")
    languages_enabled: Mapping[str, bool] = setting(
        "enable", DEFAULT_LANGUAGES_ENABLED,
        "Inline completions per language, keyed by VS Code's language id (`python`, "
        "`markdown`, …); `*` stands for every language not listed. Off by default for "
        "`plaintext`, `markdown`, `dotenv` and `log`. Turning a language off also stops a "
        "completion being computed in it.")
    exclude: tuple[str, ...] = setting(
        "exclude", (),
        "Files SmallCoder leaves alone, as gitignore-style patterns relative to the workspace "
        "folder (for example `secrets/`, `*.generated.ts`): no inline completions in them, and "
        "they stay out of the index, of the context put in prompts and of training, as do the "
        "files a `.smallcoderignore` at the folder's root names. A pattern that cannot be read "
        "is reported once and skipped.")

    def language_enabled(self, language_id: str) -> bool:
        """Whether inline completions are on in documents of `language_id`."""
        return self.languages_enabled.get(language_id, self.languages_enabled.get("*", True))

    def engine_key(self) -> tuple:
        """What the loaded model depends on: a change here means loading it again."""
        return (self.model, self.vram_budget_mb, self.engine, self.server_url, self.server_model,
                self.engine_fallback)


def _table() -> tuple[Setting, ...]:
    types = typing.get_type_hints(Settings)
    return tuple(dataclasses.replace(field.metadata["setting"], field=field.name,
                                     type=typing.get_origin(types[field.name])
                                     or types[field.name])
                 for field in dataclasses.fields(Settings))


SETTINGS = _table()
BY_KEY = {row.key: row for row in SETTINGS}


def _json_number(value: Any) -> Any:
    # package.json says 1500 and 1, not 1500.0 and 1.0.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _range_text(minimum: float | None, maximum: float | None) -> str:
    low, high = _json_number(minimum), _json_number(maximum)
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        is_object_setting = name in BY_KEY and BY_KEY[name].type is Mapping
        if isinstance(value, dict) and not is_object_setting:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _checked(row: Setting, value: Any) -> tuple[Any, str | None]:
    """The value as the field's type, or why it is refused."""
    if row.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if row.type is tuple and isinstance(value, list):
        value = tuple(value)
    if row.type is tuple and not all(isinstance(item, str) for item in value or ()):
        return None, f"should be a list of strings, got {value!r}"
    if row.type is Mapping and isinstance(value, dict):
        if not all(isinstance(item, bool) for item in value.values()):
            return None, f"should map language ids to true or false, got {value!r}"
        value = {**row.default, **value}  # languages the client leaves out keep their default
    if not isinstance(value, row.type) or (row.type is int and isinstance(value, bool)):
        return None, f"should be {row.type.__name__}, got {value!r}"
    problem = row.problem(value)
    return value, None if problem is None else f"{problem}, got {value!r}"


def settings_from_client(options: Any, base: Settings | None = None
                         ) -> tuple[Settings, list[str]]:
    """Settings from a client's JSON object (nested or dotted keys) over `base` (the defaults
    when None); also the warnings. Keys the client leaves out keep their value in `base`."""
    base = Settings() if base is None else base
    if not isinstance(options, dict):
        return base, [] if options is None else [f"settings must be an object, got {options!r}"]
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in _flatten(options.get(SECTION, options)).items():
        row = BY_KEY.get(key)
        if row is None or value is None:
            continue
        if row.environment is not None and value == "":
            values[row.field] = row.server_default()  # not chosen: the server's own default
            continue
        value, problem = _checked(row, value)
        if problem is not None:
            warnings.append(f"{SECTION}.{key} {problem}; keeping {getattr(base, row.field)!r}")
            continue
        values[row.field] = value
    return dataclasses.replace(base, **values), warnings


UNTRUSTED_DESCRIPTION = (
    "In an untrusted workspace SmallCoder completes, explains and refactors code, but does not "
    "run the agent or the workspace's tests, and ignores the workspace's settings that name a "
    "program, a file or a server (Python, model, adapter, test command, team server).")


def package_json_capabilities() -> dict[str, Any]:
    """package.json's `capabilities`: limited support for untrusted workspaces, generated from
    the table's settings that name a program or a file."""
    restricted = [f"{SECTION}.{row.key}" for row in SETTINGS if row.names_program_or_file]
    return {"untrustedWorkspaces": {"supported": "limited", "description": UNTRUSTED_DESCRIPTION,
                                    "restrictedConfigurations": restricted},
            "virtualWorkspaces": False}


def package_json_configuration() -> dict[str, Any]:
    """package.json's `contributes.configuration`, generated from the table."""
    return {"title": "SmallCoder",
            "properties": {f"{SECTION}.{row.key}": row.json_schema() for row in SETTINGS}}


def write_package_json(path: Path = PACKAGE_JSON) -> None:
    """Replace `contributes.configuration` and `capabilities` in package.json, leaving the
    rest as it is."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["contributes"]["configuration"] = package_json_configuration()
    manifest["capabilities"] = package_json_capabilities()
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.settings",
                                     description="SmallCoder's table of settings.")
    parser.add_argument("--package-json", action="store_true", required=True,
                        help="print package.json's contributes.configuration block")
    parser.add_argument("--write", action="store_true",
                        help=f"write the block into {PACKAGE_JSON} instead of printing it")
    args = parser.parse_args(argv)
    if args.write:
        write_package_json()
        print(f"contributes.configuration written to {PACKAGE_JSON}", file=sys.stderr)
    else:
        print(json.dumps(package_json_configuration(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
