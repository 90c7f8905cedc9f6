"""Functions written by a model, read back from its reply and fitted where the originals stand.

Shared by the refactor action and the agent: fenced code blocks, dedent and re-indent by span.
"""

from __future__ import annotations

import re
import textwrap

from analyzers.functions import FunctionSpan

CODE_BLOCK = re.compile(r"```[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code_blocks(reply: str) -> list[str]:
    """The fenced code blocks of a reply, or the whole reply when it has none."""
    return CODE_BLOCK.findall(reply) or [reply]


def dedented(span: FunctionSpan) -> str:
    """A function's text as if it started at column 0 (a method taken out of its class)."""
    indent = " " * span.start_point[1]
    return textwrap.dedent(indent + span.text)


def indent_like(span: FunctionSpan, function_text: str) -> str:
    """Re-indent a rewritten function to sit where the original starts."""
    lines = textwrap.dedent(function_text).rstrip().split("\n")
    indent = " " * span.start_point[1]
    return "\n".join([lines[0], *[f"{indent}{row}" if row.strip() else "" for row in lines[1:]]])
