"""Shared fixtures: the real 0.5B engine (SMALLCODER_MODEL) and isolated SmallCoder homes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model import registry

REPO_ROOT = Path(__file__).resolve().parent.parent


def small_model_path() -> Path:
    """The real model the integration tests use; `make test` pulls it and sets the variable."""
    name = os.environ.get("SMALLCODER_MODEL")
    if not name:
        pytest.fail("set SMALLCODER_MODEL (make test sets qwen2.5-coder-0.5b-instruct-q4_k_m)")
    return registry.resolve_model(name)


@pytest.fixture(scope="session")
def real_engine():
    from model.engine import LlamaCppEngine

    return LlamaCppEngine(small_model_path(), context_tokens=4096)


@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "smallcoder-home"
    monkeypatch.setenv("SMALLCODER_HOME", str(home))
    return home
