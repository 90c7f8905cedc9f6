"""`smallcoder explain FILE:LINE`: the explanation the editor's panel shows, grounded in the
workspace: written to stdout as the model writes it, then what the workspace index contradicts
and how each such sentence was rewritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assist.actions import ActionError, Run
from assist.explain import explain_in_workspace, subject_at
from cli.common import UserError, source_line, workspace_context


def add_explain_command(commands: argparse._SubParsersAction) -> None:
    explain = commands.add_parser(
        "explain", help="explain the function at FILE:LINE, checked against the workspace index")
    explain.add_argument("location", metavar="FILE:LINE", help="1-based line")
    explain.add_argument("--scope", choices=("function", "class", "file"), default="function",
                         help="what to explain: the function or class around the line, or "
                              "the whole file (default: function)")
    explain.add_argument("--workspace", type=Path, metavar="DIR",
                         help="workspace folder to index (default: the file's git root, else "
                              "the folder above its Python package, else its folder)")
    explain.add_argument("--model", help="registry name or .gguf path (default: "
                         "$SMALLCODER_MODEL, else the default model)")
    explain.add_argument("--json", action="store_true",
                         help="machine-readable output, once the explanation is complete")
    explain.set_defaults(run=_run_explain)


def _run_explain(args: argparse.Namespace) -> int:
    at = source_line(args.location)
    try:  # before the model loads: a line outside any function costs no load
        subject_at(at.text, at.language, at.path.name, at.line, at.column, args.scope)
    except ActionError as error:
        raise UserError(f"{args.location}: {error}") from error
    context, _folder = workspace_context(at.path, args.workspace)
    engine = args.open_engine(args.model)
    written: list[str] = []

    def write(piece: str) -> None:
        written.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    run = Run(engine, on_text=None if args.json else write)
    try:
        explanation = explain_in_workspace(run, context, str(at.path), at.text, at.language,
                                           at.line, at.column, scope=args.scope)
    except ActionError as error:
        raise UserError(f"{args.location}: {error}") from error
    if args.json:
        print(json.dumps({"markdown": explanation.markdown,
                          "functionName": explanation.function_name,
                          "notes": list(explanation.notes), "outline": explanation.outline},
                         indent=2))
        return 0
    # What was written is the model's draft. Unless a sentence of it was rewritten, that is
    # the start of the Markdown; otherwise the notes say what changed and to what.
    shown = "".join(written)
    if explanation.markdown.startswith(shown):
        sys.stdout.write(explanation.markdown[len(shown):])
    else:
        sys.stdout.write("\n" + explanation.markdown[explanation.markdown.index("\n---\n"):])
    return 0
