"""Python names resolved with jedi, as the packer's `resolve`: definitions in the workspace and
in installed packages that the index, matching by name, cannot tell apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from analyzers.packer import RESOLVED_BONUS, USED_DEFINITION_SCORE
from analyzers.python_names import used_definitions
from analyzers.snippets import Snippet, Target, definition_snippet
from analyzers.syntax import language_for_path


def jedi_resolver(project_root: Path) -> Callable[[Target, int, int], list[Snippet]]:
    """A `resolve` for `pack`: jedi finds the definitions of the names a Python region uses,
    in the workspace and in installed packages (shown as outlines when long)."""

    def resolve(target: Target, start: int, end: int) -> list[Snippet]:
        if language_for_path(target.path) != "python":
            return []
        return [definition_snippet(used.path, used.definition, used.text, "python", "definition",
                                   f"the target uses `{used.name}` (jedi)",
                                   USED_DEFINITION_SCORE + RESOLVED_BONUS)
                for used in used_definitions(target.text, target.path, project_root, start, end)]

    return resolve
