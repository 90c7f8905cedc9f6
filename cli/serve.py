"""`smallcoder serve`: the language server on stdin/stdout, for the editor."""

from __future__ import annotations

import argparse


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the language server on stdin/stdout")
    serve.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from server.serve import serve  # the server's imports cost a second the other commands skip

    serve()
    return 0
