"""What every sub-command shares: the user-error type, exit codes, FILE:LINE[:COL], reading a
source file, the workspace folder a file belongs to, and opening the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model import registry
from model.engine import Engine, LlamaCppEngine

# Opens the model `--model` names (None: $SMALLCODER_MODEL, else the default); tests pass a fake.
EngineOpener = Callable[[str | None], Engine]

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UserError(Exception):
    """Bad input from the command line; the message says what to do."""


def parse_location(location: str, *, with_column: bool) -> tuple[Path, int, int]:
    """Split FILE:LINE[:COL] (1-based) into a path and 0-based line and column."""
    parts = location.rsplit(":", 2 if with_column else 1)
    expected = 3 if with_column else 2
    shape = "FILE:LINE:COL" if with_column else "FILE:LINE"
    if len(parts) != expected or not all(part.isdigit() for part in parts[1:]):
        raise UserError(f"{location!r} is not {shape} with 1-based numbers")
    numbers = [int(part) for part in parts[1:]]
    if min(numbers) < 1:
        raise UserError(f"{location!r}: lines and columns start at 1")
    column = numbers[1] - 1 if with_column else 0
    return Path(parts[0]), numbers[0] - 1, column


def read_source(path: Path) -> str:
    """A source file as text; refuses what is not UTF-8 or is not a regular file."""
    if not path.is_file():
        raise UserError(f"{path} is not a file")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text (byte {error.start}); "
                        f"SmallCoder reads source files as UTF-8") from error


def check_line(path: Path, text: str, line: int) -> None:
    """Refuses a 0-based `line` past the end of `text`, the file at `path`."""
    lines = text.count("\n") + 1
    if line >= lines:
        raise UserError(f"{path} has {lines} lines, not {line + 1}")


def workspace_of(path: Path) -> Path:
    """The folder the index covers: the file's git root, else the folder above its Python
    package (so `pkg/a.py` is indexed with its siblings), else the file's folder."""
    for folder in [path.parent, *path.parent.parents]:
        if (folder / ".git").exists():
            return folder
    folder = path.parent
    while (folder / "__init__.py").exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def open_llama_engine(model: str | None) -> Engine:
    """The model on llama.cpp; a sub-command opens it after checking its input, so that a typo
    costs no load."""
    return LlamaCppEngine(registry.resolve_model(model))
