"""`smallcoder pack`: the packer's choice for a file and line, printed with the reasons.

The same packer the language server runs, on a file from disk; with `--target tests`, what
Solve with Agent shows the model for a workspace's failing tests: its localisation ranking, the
functions shown, and the packer's related code.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from analyzers.index import WorkspaceIndex
from analyzers.jedi_resolver import jedi_resolver
from analyzers.packer import MAX_BUDGET_TOKENS, Target, pack, render
from assist.workspace import repo_name_for
from cli.common import UserError, check_line, parse_location, read_source, workspace_of
from cli.pack_tests import run_tests_pack
from model import registry
from model.home import smallcoder_home
from model.prompts import fim_window
from model.tokenizer import VocabularyTokenizer


def add_pack_command(commands: argparse._SubParsersAction) -> None:
    pack_command = commands.add_parser(
        "pack", help="show the context the packer would send for FILE:LINE, and why")
    pack_command.add_argument("location", metavar="FILE:LINE", nargs="?",
                              help="1-based line (not for --target tests)")
    pack_command.add_argument("--budget", type=int, default=2048,
                              help=f"token budget (at most {MAX_BUDGET_TOKENS})")
    pack_command.add_argument("--target", choices=("completion", "cursor", "function", "tests"),
                              default="function",
                              help="pack as inline completion does at the line (what its FIM "
                              "prompt shows is left out), for the cursor's surroundings, for "
                              "its enclosing function (explain, refactor), or as the agent does "
                              "for the workspace's failing tests (with --test-cmd or --failures)")
    pack_command.add_argument("--test-cmd", help="--target tests: the test command, run in a "
                              "scratch copy of --workspace (pytest runs the failing tests again, "
                              "traced, for the ranking)")
    pack_command.add_argument("--failures", type=Path, metavar="REPORT.xml",
                              help="--target tests: a junit report saved earlier (pytest "
                              "--junitxml=REPORT.xml), instead of running the tests")
    pack_command.add_argument("--workspace", type=Path, help="workspace folder to index "
                              "(default: the file's git root, else the folder above its "
                              "Python package, else its folder)")
    pack_command.add_argument("--model", help="whose tokenizer counts (default: "
                              "$SMALLCODER_MODEL, else the default model)")
    pack_command.add_argument("--no-jedi", action="store_true",
                              help="match Python names with the index only, without jedi")
    pack_command.add_argument("--text", action="store_true",
                              help="also print each snippet's text")
    pack_command.add_argument("--json", action="store_true", help="machine-readable output")
    pack_command.set_defaults(run=_run_pack)


def _target(path: str, text: str, line: int, kind: str) -> Target:
    """A completion packs for a cursor whose FIM prompt shows the lines around it already."""
    if kind == "completion":
        return Target(path, text, line, kind="cursor",
                      shown=fim_window(text.count("\n") + 1, line))
    return Target(path, text, line, kind=kind)


def _run_pack(args: argparse.Namespace) -> int:
    if args.target == "tests":
        return run_tests_pack(args)
    if args.location is None:
        raise UserError(f"--target {args.target} packs for a place: give FILE:LINE")
    path, line, _ = parse_location(args.location, with_column=False)
    text = read_source(path)
    if not 0 <= args.budget <= MAX_BUDGET_TOKENS:
        raise UserError(f"--budget {args.budget}: give 0…{MAX_BUDGET_TOKENS} tokens")
    check_line(path, text, line)
    absolute = path.resolve()
    root = (args.workspace or workspace_of(absolute)).resolve()
    started = time.perf_counter()
    index = WorkspaceIndex.open(root, smallcoder_home())
    indexed_ms = (time.perf_counter() - started) * 1e3
    tokenizer = VocabularyTokenizer(registry.resolve_model(args.model))
    relative = index.relative(absolute) or absolute.name
    # Inline completion matches names with the index alone: jedi is too slow for every keystroke.
    resolve = None if args.no_jedi or args.target == "completion" else jedi_resolver(root)
    started = time.perf_counter()
    result = pack(_target(relative, text, line, args.target), args.budget,
                  tokenizer.count_tokens, index=index, resolve=resolve)
    packed_ms = (time.perf_counter() - started) * 1e3
    if args.json:
        print(json.dumps({
            "workspace": str(root), "repo_name": repo_name_for(absolute),
            "tokenizer": tokenizer.name, "budget_tokens": result.budget_tokens,
            "used_tokens": result.used_tokens, "candidates": result.candidates,
            "index_ms": round(indexed_ms, 1), "pack_ms": round(packed_ms, 1),
            "snippets": [{"path": s.path, "start_line": s.start_line + 1,
                          "end_line": s.end_line + 1, "kind": s.kind, "reason": s.reason,
                          "tokens": s.tokens, "score": round(s.score, 2), "text": s.text}
                         for s in result.snippets],
        }, indent=2))
        return 0
    print(f"{len(result.snippets)} snippets, {result.used_tokens}/{result.budget_tokens} tokens "
          f"({tokenizer.name}), chosen from {result.candidates} candidates; "
          f"index {indexed_ms:.0f} ms ({len(index.files())} files), pack {packed_ms:.0f} ms")
    for number, snippet in enumerate(result.snippets, start=1):
        where = f"{snippet.path}:{snippet.start_line + 1}-{snippet.end_line + 1}"
        print(f"{number:>3}. {snippet.tokens:>5} tokens  {snippet.kind:<10} {where:<40} "
              f"{snippet.reason}")
        if args.text:
            print("     " + render(snippet).rstrip("\n").replace("\n", "\n     "))
    return 0
