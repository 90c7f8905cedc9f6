"""What a solve records: its transcript (prompts, outputs, test results as JSON lines under
$SMALLCODER_HOME/transcripts/, for review and later training) and where each round's time went.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.runner import TestRun
from model.engine import GenerationResult
from model.home import smallcoder_home

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


class Transcript:
    """Prompts, outputs and test results as JSON lines, for review and later training."""

    def __init__(self, workspace: Path) -> None:
        folder = smallcoder_home() / "transcripts"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, PRIVATE_FOLDER_MODE)  # they hold the user's code: theirs alone
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = folder / f"{stamp}-{workspace.name or 'workspace'}-{os.getpid()}.jsonl"

    def write(self, kind: str, **fields: Any) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                             PRIVATE_FILE_MODE)
        with open(descriptor, "a", encoding="utf-8") as sink:
            sink.write(json.dumps({"kind": kind, "time": time.time(), **fields}) + "\n")


def run_record(run: TestRun) -> dict[str, Any]:
    return {"passed": run.passed, "failing": sorted(run.failing_ids),
            "messages": [failure.message for failure in run.failures],
            "exit_code": run.exit_code, "duration_s": round(run.duration_s, 2),
            "timed_out": run.timed_out}


@dataclass
class RoundTime:
    """Where a round's time went (round 0: the first test run and localisation): evaluating
    prompts, generating, running tests; and the tokens, for the raw rates beside them."""

    round: int
    prompt_ms: float = 0.0
    generation_ms: float = 0.0
    tests_ms: float = 0.0
    prompt_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    generated_tokens: int = 0

    def add_generation(self, result: GenerationResult) -> None:
        self.prompt_ms += result.prompt_ms
        self.generation_ms += result.generation_ms
        self.prompt_tokens += result.prompt_tokens
        self.evaluated_prompt_tokens += result.evaluated_prompt_tokens
        self.generated_tokens += result.generated_tokens

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "promptMs": round(self.prompt_ms),
                "generationMs": round(self.generation_ms), "testsMs": round(self.tests_ms),
                "promptTokens": self.prompt_tokens,
                "evaluatedPromptTokens": self.evaluated_prompt_tokens,
                "generatedTokens": self.generated_tokens}
