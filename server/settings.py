"""The `smallcoder.*` settings: one typed value built from what the client sends.

Clients send them as initializationOptions and answer workspace/configuration with them;
unknown keys are ignored and wrong types fall back to the default with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from assist.completion import DEFAULT_MAX_TOKENS, DEFAULT_TIME_BUDGET_MS
from assist.workspace import DEFAULT_COMPLETION_CONTEXT_TOKENS
from model.registry import DEFAULT_MODEL

LOG_LEVELS = ("error", "warning", "info", "debug")


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    inline_enabled: bool = True
    inline_max_tokens: int = DEFAULT_MAX_TOKENS
    inline_time_budget_ms: float = DEFAULT_TIME_BUDGET_MS
    inline_context_tokens: int = DEFAULT_COMPLETION_CONTEXT_TOKENS
    vram_budget_mb: int = 2048
    log_level: str = "info"
    adapter: str = ""
    adapter_scale: float = 1.0
    test_command: str = ""

    def engine_key(self) -> tuple[str, int]:
        """What the loaded model depends on: a change here means loading it again."""
        return (self.model, self.vram_budget_mb)


# Client key (camelCase, dotted like VS Code's settings) → field name.
CLIENT_KEYS = {
    "model": "model",
    "inlineCompletions.enabled": "inline_enabled",
    "inlineCompletions.maxTokens": "inline_max_tokens",
    "inlineCompletions.timeBudgetMs": "inline_time_budget_ms",
    "inlineCompletions.contextTokens": "inline_context_tokens",
    "vramBudgetMb": "vram_budget_mb",
    "logLevel": "log_level",
    "adapter": "adapter",
    "adapterScale": "adapter_scale",
    "testCommand": "test_command",
}


def _flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def settings_from_client(options: Any, base: Settings = Settings()) -> tuple[Settings, list[str]]:
    """Settings from a client's JSON object (nested or dotted keys); also the warnings."""
    if not isinstance(options, dict):
        return base, [] if options is None else [f"settings must be an object, got {options!r}"]
    flat = _flatten(options.get("smallcoder", options))
    defaults = Settings()
    types = {field.name: type(getattr(defaults, field.name)) for field in fields(Settings)}
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in flat.items():
        name = CLIENT_KEYS.get(key)
        if name is None or value is None:
            continue
        wanted = types[name]
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            warnings.append(f"smallcoder.{key} should be {wanted.__name__}, got {value!r}; "
                            f"keeping {getattr(base, name)!r}")
            continue
        values[name] = value
    if values.get("log_level", base.log_level) not in LOG_LEVELS:
        warnings.append(f"smallcoder.logLevel must be one of {', '.join(LOG_LEVELS)}")
        values.pop("log_level")
    if values.get("model") == "":
        values.pop("model")
    merged = {field.name: values.get(field.name, getattr(base, field.name))
              for field in fields(Settings)}
    return Settings(**merged), warnings
