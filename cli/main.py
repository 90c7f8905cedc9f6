"""The `smallcoder` command: the parser of every sub-command, and errors as one clear line.

Lines and columns are 1-based here, as editors show them; `--json` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from cli.common import EXIT_FAILURE, EXIT_USAGE, EngineOpener, UserError, open_llama_engine
from cli.complete import add_complete_command
from cli.explain import add_explain_command
from cli.model import add_model_command
from cli.pack import add_pack_command
from cli.refactor import add_refactor_command
from cli.serve import add_serve_command
from cli.solve import add_solve_command
from cli.train import add_train_command
from model.errors import ModelError


def _version() -> str:
    try:
        return version("smallcoder")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None, open_engine: EngineOpener = open_llama_engine) -> int:
    """Runs one sub-command; `open_engine` is how the ones that ask the model open it."""
    parser = _build_parser()
    parser.set_defaults(open_engine=open_engine)
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except (ModelError, UserError) as error:
        print(f"smallcoder: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("smallcoder: interrupted", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smallcoder",
        description="A private coding assistant that runs a small GGUF model on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"smallcoder {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    add_model_command(commands)
    add_serve_command(commands)
    add_complete_command(commands)
    add_explain_command(commands)
    add_refactor_command(commands)
    add_solve_command(commands)
    add_pack_command(commands)
    add_train_command(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
