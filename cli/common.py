"""What every sub-command shares: the user-error type, exit codes, FILE:LINE[:COL], reading a
source file, the workspace folder a file belongs to, checking a test command, opening the
model, and keeping an applied change for training (--learn)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.runner import TestCommand, TestCommandError, find_program
from analyzers.syntax import language_for_path
from assist.workspace import WorkspaceContext
from model import registry
from model.engine import Engine, LlamaCppEngine
from training.accepted import AcceptedChange, AcceptedWorkRefused, record_accepted

# Opens the model `--model` names (None: $SMALLCODER_MODEL, else the default); tests pass a fake.
EngineOpener = Callable[[str | None], Engine]

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UserError(Exception):
    """Bad input from the command line; the message says what to do."""


@dataclass(frozen=True)
class SourceLine:
    """The line of a source file that explain and refactor work at, read and checked."""

    path: Path  # absolute
    text: str
    language: str
    line: int  # 0-based
    column: int  # the line's first non-blank character: inside whatever starts on the line


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


def source_line(location: str) -> SourceLine:
    """FILE:LINE read, the line checked, the language known by the file's extension."""
    path, line, _ = parse_location(location, with_column=False)
    text = read_source(path)
    check_line(path, text, line)
    language = language_for_path(path.name)
    if language is None:
        raise UserError(f"SmallCoder cannot parse {path}: it has no grammar for "
                        f"'{path.suffix or path.name}' files")
    shown = text.split("\n")[line]
    return SourceLine(path.resolve(), text, language, line, len(shown) - len(shown.lstrip()))


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


def workspace_context(path: Path, folder: Path | None) -> tuple[WorkspaceContext, Path]:
    """The workspace the file at `path` (absolute) belongs to, and its folder: `folder`, else
    `workspace_of(path)`, indexed as the language server indexes a workspace folder (the index
    is kept under $SMALLCODER_HOME)."""
    root = (folder or workspace_of(path)).resolve()
    if not root.is_dir():
        raise UserError(f"--workspace {folder} is not a folder")
    if not path.is_relative_to(root):
        raise UserError(f"{path} is not inside the workspace {root}: give --workspace the "
                        f"folder that holds it")
    context = WorkspaceContext()
    context.open_folder(root)
    return context, root


def check_test_command(command: str, workspace: Path) -> None:
    """Refuses a test command that cannot start, before the model loads: a typo in it should
    not cost seconds."""
    try:
        find_program(TestCommand.parse(command), workspace)
    except TestCommandError as error:
        raise UserError(str(error)) from error


def open_llama_engine(model: str | None) -> Engine:
    """The model on llama.cpp; a sub-command opens it after checking its input, so that a typo
    costs no load."""
    return LlamaCppEngine(registry.resolve_model(model))


def add_learn_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--learn", action="store_true",
                        help="with --apply: keep the applied change under "
                             "$SMALLCODER_HOME/accepted, for `smallcoder train --accepted-work` "
                             "(the editor's smallcoder.training.learnFromAccepted)")


def check_learn_option(args: argparse.Namespace) -> None:
    """--learn keeps what was applied: without --apply there is nothing to keep."""
    if args.learn and not args.apply:
        raise UserError("--learn keeps an applied change: add --apply")


def keep_for_training(changes: list[AcceptedChange]) -> list[str]:
    """Each change kept for the next training run; one refused (a secret in it) is said on
    stderr and the others are kept. The paths kept, relative to their workspace."""
    kept = []
    for change in changes:
        try:
            record = record_accepted(change)
        except (AcceptedWorkRefused, OSError) as error:
            print(f"smallcoder: {change.path} not kept for training: {error}", file=sys.stderr)
            continue
        print(f"smallcoder: {change.path} kept for training: {record}", file=sys.stderr)
        kept.append(change.path)
    return kept
