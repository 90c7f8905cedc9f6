"""Files the user keeps away from SmallCoder: a workspace's `.smallcoderignore` (gitignore
syntax) and the `smallcoder.exclude` patterns, one rule set that completion, the index, the
packer and training all ask.

A pattern pathspec cannot read is skipped and described in `problems`, once per rule set: the
rest still hold, and the caller reports the problems to the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILE_NAME = ".smallcoderignore"


@dataclass(frozen=True)
class IgnoreRules:
    """Patterns matched against paths relative to a workspace folder, with forward slashes."""

    spec: GitIgnoreSpec
    problems: tuple[str, ...] = ()

    def ignores(self, relative_path: str) -> bool:
        return bool(relative_path) and self.spec.match_file(relative_path)

    def keep(self, relative_paths: Iterable[str]) -> list[str]:
        return [path for path in relative_paths if not self.ignores(path)]


NO_RULES = IgnoreRules(GitIgnoreSpec.from_lines([]))


def rules_from_patterns(patterns: Iterable[tuple[str, str]]) -> IgnoreRules:
    """Rules from (pattern, where it comes from) pairs; unreadable patterns are skipped."""
    kept: list[str] = []
    problems: list[str] = []
    for pattern, origin in patterns:
        try:
            GitIgnoreSpec.from_lines([pattern])
        except (ValueError, re.error) as error:
            problems.append(f"{origin}: `{pattern}` is not a valid pattern ({error}); skipped")
            continue
        kept.append(pattern)
    return IgnoreRules(GitIgnoreSpec.from_lines(kept), tuple(problems))


def ignore_file_patterns(root: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The patterns of `root`'s `.smallcoderignore` with where each is (file:line), and why
    the file could not be read (an unreadable ignore file is reported, never guessed at)."""
    path = root / IGNORE_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError) as error:
        return [], [f"{path} cannot be read ({error}); no file of it is ignored"]
    return [(line, f"{path}:{number}") for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.startswith("#")], []


def workspace_rules(root: Path, exclude: Sequence[str] = ()) -> IgnoreRules:
    """The rules of the workspace folder `root`: its ignore file, then the exclude setting."""
    from_file, unreadable = ignore_file_patterns(root)
    rules = rules_from_patterns([*from_file,
                                 *((pattern, "smallcoder.exclude") for pattern in exclude)])
    return IgnoreRules(rules.spec, (*unreadable, *rules.problems))
