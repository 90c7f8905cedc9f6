"""`smallcoder complete FILE:LINE:COL`: the inline completion the editor would show there."""

from __future__ import annotations

import argparse
import json
import sys

from assist.completion import CompletionSettings, complete_at
from assist.workspace import repo_name_for
from cli.common import UserError, parse_location, read_source


def add_complete_command(commands: argparse._SubParsersAction) -> None:
    complete = commands.add_parser(
        "complete", help="print the inline completion the editor would show at FILE:LINE:COL")
    complete.add_argument("location", metavar="FILE:LINE:COL", help="1-based line and column")
    complete.add_argument("--model", help="registry name or .gguf path (default: "
                          "$SMALLCODER_MODEL, else the default model)")
    complete.add_argument("--max-tokens", type=int, default=None,
                          help="generation budget in tokens")
    complete.add_argument("--json", action="store_true", help="machine-readable output")
    complete.set_defaults(run=_run_complete)


def _run_complete(args: argparse.Namespace) -> int:
    path, line, column = parse_location(args.location, with_column=True)
    text = read_source(path)
    engine = args.open_engine(args.model)
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
