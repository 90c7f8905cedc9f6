"""Personal LoRA adapters as GGUF files: what their metadata says about where they came from.

`smallcoder train` writes these keys (training/export.py); the server reads them to decide
whether an adapter may be enabled without asking (not when it lost on the guard set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model.errors import ModelError

PROVENANCE_PREFIX = "smallcoder."
GUARD_PASSED_KEY = PROVENANCE_PREFIX + "guard_passed"
SCORE_PREFIX = PROVENANCE_PREFIX + "score."


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    base_model: str | None
    base_sha256: str | None
    steps: int | None
    scores: dict[str, float]
    guard_passed: bool | None  # None: never evaluated

    @property
    def label(self) -> str:
        return self.path.name.removesuffix(".gguf")


def read_adapter_info(path: Path) -> AdapterInfo:
    """The adapter's type check and provenance; fails with advice on anything but a LoRA GGUF."""
    import gguf

    if not path.is_file():
        raise ModelError(f"adapter file {path} does not exist: check smallcoder.adapter")
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError, KeyError) as error:
        # gguf's reader indexes into the mapped file: a truncated one fails with IndexError.
        raise ModelError(f"adapter file {path} is truncated or not a GGUF file ({error!r}): "
                         f"train an adapter with `smallcoder train`") from error
    values = {name: field.contents() for name, field in reader.fields.items()}
    if values.get("general.type") != "adapter" or values.get("adapter.type") != "lora":
        raise ModelError(f"{path} is not a LoRA adapter (general.type="
                         f"{values.get('general.type')!r}): point smallcoder.adapter at the "
                         f"file `smallcoder train` wrote")
    scores = {name.removeprefix(SCORE_PREFIX): float(value) for name, value in values.items()
              if name.startswith(SCORE_PREFIX)}
    steps = values.get(PROVENANCE_PREFIX + "steps")
    guard = values.get(GUARD_PASSED_KEY)
    return AdapterInfo(
        path=path,
        base_model=values.get(PROVENANCE_PREFIX + "base_model"),
        base_sha256=values.get(PROVENANCE_PREFIX + "base_sha256"),
        steps=None if steps is None else int(steps),
        scores=scores,
        guard_passed=None if guard is None else bool(guard),
    )
