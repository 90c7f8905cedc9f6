"""Checks asked before a training run starts: can this Python train, and has this folder code?

Asked up front by the command line and the server alike: a missing package found deep inside
a run would cost minutes of work first.
"""

from __future__ import annotations

import re
import sys
from importlib import invalidate_caches
from importlib.metadata import PackageNotFoundError, requires
from importlib.util import find_spec
from pathlib import Path

from training.mine import has_source_files

# How a run begins: continue from OUT.work/'s checkpoint when there is one, insist on one, or
# delete it first.
START_MODES = ("auto", "continue", "fresh")


def repository_problem(repo: Path) -> str | None:
    """What makes `repo` useless for training, or None; asked before anything slow starts."""
    if not repo.is_dir():
        return f"{repo} is not a folder"
    if not has_source_files(repo):
        return (f"{repo} has no Python, JavaScript or TypeScript files to learn from (vendored, "
                f"generated, lock and data files do not count)")
    return None


def missing_training_packages() -> list[str]:
    """The pins of the optional training packages (`torch==2.13.0`, …) this Python lacks.
    Empty when it has them all, or when SmallCoder runs from a source tree without metadata
    (then the imports say what is missing)."""
    try:
        requirements = requires("smallcoder") or []
    except PackageNotFoundError:
        return []
    pins = [requirement.split(";")[0].strip() for requirement in requirements
            if 'extra == "train"' in requirement]
    # A long-running server may have seen the folder before the packages were installed.
    invalidate_caches()
    return [pin for pin in pins if find_spec(_module_of(pin)) is None]


def training_packages_problem() -> str | None:
    """What to install when this Python lacks the optional training packages, or None. Asked up
    front: some are imported only deep inside a run, after minutes of work."""
    missing = missing_training_packages()
    if not missing:
        return None
    return (f"training needs the optional packages {', '.join(map(_name_of, missing))}, which "
            f"{sys.executable} lacks: run `{sys.executable} -m pip install {' '.join(missing)}`")


def _name_of(pin: str) -> str:
    return re.split(r"[=<>!~\[ ]", pin)[0]


def _module_of(pin: str) -> str:
    """The import name of a requirement: the distribution name with `_` for `-` (as for all of
    the training packages: torch, transformers, peft, matplotlib)."""
    return _name_of(pin).replace("-", "_")
