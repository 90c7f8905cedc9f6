"""The `smallcoder` command line: a thin front door onto the same functions as the server.

Lines and columns are 1-based here, as editors show them; `--json` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from model import registry
from model.errors import ModelError
from server.cli_solve import add_solve_command
from server.cli_train import add_train_command
from server.context_cli import add_pack_command

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UserError(Exception):
    """Bad input from the command line; the message says what to do."""


def _version() -> str:
    try:
        return version("smallcoder")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
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

    model = commands.add_parser("model", help="download, list and verify model files")
    model_commands = model.add_subparsers(title="model commands", metavar="ACTION")
    pull = model_commands.add_parser("pull", help="download, assemble and verify a model")
    pull.add_argument("names", nargs="*", metavar="NAME",
                      help=f"models to pull (default: {registry.DEFAULT_MODEL})")
    pull.set_defaults(run=_run_model_pull)
    listing = model_commands.add_parser("list", help="show known models and where they are")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_run_model_list)
    check = model_commands.add_parser("verify", help="re-hash model files and report problems")
    check.add_argument("names", nargs="*", metavar="NAME",
                       help="models to verify (default: every downloaded one)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(run=_run_model_verify)

    serve = commands.add_parser("serve", help="run the language server on stdin/stdout")
    serve.set_defaults(run=_run_serve)

    complete = commands.add_parser(
        "complete", help="print the inline completion the editor would show at FILE:LINE:COL")
    complete.add_argument("location", metavar="FILE:LINE:COL", help="1-based line and column")
    complete.add_argument("--model", help="registry name or .gguf path (default: "
                          "$SMALLCODER_MODEL, else the default model)")
    complete.add_argument("--max-tokens", type=int, default=None,
                          help="generation budget in tokens")
    complete.add_argument("--json", action="store_true", help="machine-readable output")
    complete.set_defaults(run=_run_complete)
    add_solve_command(commands)
    add_pack_command(commands)
    add_train_command(commands)
    return parser


# ---------------------------------------------------------------- model


def _run_model_pull(args: argparse.Namespace) -> int:
    for name in args.names or [registry.DEFAULT_MODEL]:
        spec = registry.lookup(name)
        if registry.is_verified(spec):
            print(f"{name}: already downloaded and verified ({registry.model_path(spec)})")
            continue
        path = registry.pull(spec)
        print(f"{name}: verified and ready at {path}")
    return 0


def _run_model_list(args: argparse.Namespace) -> int:
    rows = registry.list_models()
    if args.json:
        print(json.dumps([{"name": row.spec.name, "size_bytes": row.spec.size_bytes,
                           "present": row.present, "path": str(row.path),
                           "default": row.spec.name == registry.DEFAULT_MODEL}
                          for row in rows], indent=2))
        return 0
    for row in rows:
        marker = "*" if row.spec.name == registry.DEFAULT_MODEL else " "
        state = "present" if row.present else "missing"
        print(f"{marker} {row.spec.name:<38} {row.spec.size_bytes / 1e9:5.2f} GB  "
              f"{state:<8} {row.path}")
    return 0


def _run_model_verify(args: argparse.Namespace) -> int:
    names = args.names or [row.spec.name for row in registry.list_models() if row.present]
    if not names:
        print("no model is downloaded: run `smallcoder model pull`", file=sys.stderr)
        return EXIT_FAILURE
    reports = [registry.verify(registry.lookup(name)) for name in names]
    if args.json:
        print(json.dumps([{"name": report.spec.name, "path": str(report.path), "ok": report.ok,
                           "problems": list(report.problems)} for report in reports], indent=2))
    else:
        for report in reports:
            if report.ok:
                print(f"{report.spec.name}: ok ({report.path})")
            for problem in report.problems:
                print(f"{report.spec.name}: {problem}")
    return 0 if all(report.ok for report in reports) else EXIT_FAILURE


# ---------------------------------------------------------------- serve


def _run_serve(args: argparse.Namespace) -> int:
    from server.lsp import serve

    serve()
    return 0


# ---------------------------------------------------------------- complete


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


def _run_complete(args: argparse.Namespace) -> int:
    from model.engine import LlamaCppEngine
    from server.completion import CompletionSettings, complete_at, repo_name_for

    path, line, column = parse_location(args.location, with_column=True)
    text = read_source(path)
    engine = LlamaCppEngine(registry.resolve_model(args.model))
    # One answer that the user waits for: no time budget, so the output does not depend on load.
    settings = CompletionSettings(
        max_tokens=args.max_tokens or CompletionSettings().max_tokens, time_budget_ms=None)
    try:
        completion = complete_at(engine, text, line, column, path=path.name,
                                 repo_name=repo_name_for(path.resolve()), settings=settings)
    except ValueError as error:
        raise UserError(f"{args.location}: {error}") from error
    generation = completion.generation
    if args.json:
        print(json.dumps({
            "completion": completion.text,
            "model": engine.name,
            "latency_ms": round(completion.latency_ms, 1),
            "prompt_tokens": generation.prompt_tokens,
            "generated_tokens": generation.generated_tokens,
            "finish_reason": generation.finish_reason,
            "tokens_per_second": generation.tokens_per_second,
        }, indent=2))
        return 0
    print(completion.text)
    speed = generation.tokens_per_second
    print(f"[{engine.name}: {completion.latency_ms:.0f} ms, {generation.prompt_tokens} prompt "
          f"tokens, {generation.generated_tokens} generated"
          f"{f' at {speed:.1f} tokens/s' if speed else ''}]", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
