"""`smallcoder model pull|list|verify`: the registry's model files on this machine."""

from __future__ import annotations

import argparse
import json
import sys

from cli.common import EXIT_FAILURE
from model import registry


def add_model_command(commands: argparse._SubParsersAction) -> None:
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
