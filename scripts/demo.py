"""The README's main job: SmallCoder completing code inside examples/ with the default model.

Prints each completion with its latency, cold and then warm (the KV cache reused while typing).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model import registry  # noqa: E402
from model.engine import LlamaCppEngine  # noqa: E402
from server.completion import complete_at  # noqa: E402

EXAMPLE = ROOT / "examples" / "stats.py"


def show(title: str, before: str, completion) -> None:
    generation = completion.generation
    print(f"\n--- {title}: {completion.latency_ms:.0f} ms "
          f"({generation.evaluated_prompt_tokens} of {generation.prompt_tokens} prompt tokens "
          f"evaluated, {generation.generated_tokens} generated)")
    print(f"{before}\033[2m{completion.text}\033[0m")


def main() -> int:
    model_path = registry.resolve_model(None)
    print(f"SmallCoder demo: loading {model_path.name}")
    started = time.perf_counter()
    engine = LlamaCppEngine(model_path)
    print(f"loaded in {time.perf_counter() - started:.1f} s, "
          f"{'GPU layers: ' + str(engine.gpu_layers) if engine.gpu_layers else 'on the CPU'}")

    text = EXAMPLE.read_text()
    lines = text.split("\n")
    row = next(index for index, line in enumerate(lines) if line.startswith("def median")) + 3
    cursor_text = "\n".join([*lines[:row], "    ", *lines[row + 1:]])
    context = f"{lines[row - 3]}\n...\n    "
    completion = complete_at(engine, cursor_text, row, 4, path="stats.py", repo_name="examples")
    show("cold completion in examples/stats.py, median()", context, completion)

    typed = "    if"
    cursor_text = "\n".join([*lines[:row], typed, *lines[row + 1:]])
    completion = complete_at(engine, cursor_text, row, len(typed), path="stats.py",
                             repo_name="examples")
    show("after typing `if` (warm KV cache)", f"{lines[row - 3]}\n...\n{typed}", completion)
    return 0 if completion.text else 1


if __name__ == "__main__":
    sys.exit(main())
