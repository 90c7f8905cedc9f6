"""How a completion is cut and cleaned: from the model's raw text at a FIM request to what the
editor inserts. Pure (no engine): the server uses it for ghost text, and training's evaluation
judges held-out completions by it, exactly as a user would see them.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzers.syntax import has_syntax_errors
from model.prompts import FimRequest

# A multi-line suggestion longer than this is more likely to be rambling than wanted.
MAX_COMPLETION_LINES = 12
# Characters that may follow the cursor on its line and still allow a multi-line completion.
CLOSING_CHARACTERS = set(")]}>\"'`;:, \t")
# A line ending like this expects more lines after it.
BLOCK_OPENERS = (":", "{", "(", "[", ",", "\\", "=>", "=")
# A line ending like this starts a block: the lines after it are worth suggesting.
BLOCK_STARTS = (":", "{", "=>")
# Parsing a document once per candidate is cheap for source files and not for data dumps.
SYNTAX_CHECK_MAX_CHARACTERS = 512_000


@dataclass(frozen=True)
class CompletionPlan:
    """Everything decided before the model runs: the prompt parts and how to cut the answer."""

    document: str
    offset: int
    language: str | None
    request: FimRequest
    single_line: bool
    indent: int
    max_lines: int

    def stop_rule(self, generated: str) -> int | None:
        return scope_end(generated, self.indent, self.max_lines)

    def finish(self, generated: str, *, complete: bool) -> str:
        """What the editor inserts for the model's (already cut) text."""
        insert = postprocess(self.request, generated, complete=complete,
                             single_line=self.single_line)
        return keep_parsable(self.document, self.offset, insert, self.language)


def plan_for_request(request: FimRequest, *, document: str, offset: int, language: str | None,
                     max_lines: int = MAX_COMPLETION_LINES) -> CompletionPlan:
    """The plan for a request already made (training's held-out examples): how the editor
    would cut and clean what the model writes for it. `offset` is the cursor in `document`."""
    single_line = not _multiline_here(request.line_prefix, request.suffix.split("\n", 1)[0])
    return CompletionPlan(
        document=document,
        offset=offset,
        language=language,
        request=request,
        single_line=single_line,
        indent=_scope_indentation(request),
        max_lines=1 if single_line else max_lines,
    )


def _scope_indentation(request: FimRequest) -> int:
    """The indentation below which a completion has left the cursor's scope.

    What was typed on the cursor's line says it; on a line left empty, the next line that
    is not blank does (its scope goes on after the cursor).
    """
    typed = request.line_prefix + request.held_back
    if typed:
        return _indentation(typed)
    following = [row for row in request.suffix.split("\n")[1:] if row.strip()]
    return _indentation(following[0]) if following else 0


def scope_end(generated: str, indent: int, max_lines: int) -> int | None:
    """Where the completion leaves the cursor's scope: a dedent, a blank-line gap, or too long.

    Returns the cut position in `generated`, or None while it is still inside.
    """
    lines = generated.split("\n")
    if max_lines == 1 and len(lines) > 1:
        # The newline too: at the start of a line of code it opens a line above that code. This
        # holds however the newline arrives, alone or in a token such as "\n\n".
        return len(lines[0]) + 1
    offset = len(lines[0]) + 1
    blank_run = 0
    for number, row in enumerate(lines[1:-1], start=1):
        # Only complete lines are judged: the last one may still be growing.
        if number >= max_lines:
            return offset - 1
        if not row.strip():
            blank_run += 1
            if blank_run >= 2:
                return offset - 1
        else:
            blank_run = 0
            if _indentation(row) < indent:
                return offset - 1
        offset += len(row) + 1
    return None


def postprocess(request: FimRequest, generated: str, *, complete: bool,
                single_line: bool) -> str:
    """Turn raw model text into what the editor inserts, or "" when it is not worth showing."""
    if not generated.startswith(request.held_back):
        # The model wants other indentation than the user typed: no honest suggestion.
        return ""
    text = generated[len(request.held_back):]
    if not complete:
        text = _whole_lines(text, single_line)
    ends_line = "\n" in text
    text = _trim_suffix_overlap(text.rstrip(), request.suffix).rstrip()
    if single_line:
        text = text.split("\n", 1)[0]
        if ends_line and text.strip() and _opens_line_above(request):
            text += "\n"
    return text if text.strip() else ""


def _opens_line_above(request: FimRequest) -> bool:
    """At the start of a line that has code, a finished line goes in as a line of its own."""
    return not request.line_prefix.strip() and bool(request.suffix.split("\n", 1)[0].strip())


def _whole_lines(text: str, single_line: bool) -> str:
    """What to keep of a completion cut off by the token or time budget.

    Whole lines only, and not a last line that opens a block whose body was never written.
    """
    if "\n" not in text:
        return text if single_line else ""
    lines = text.split("\n")[:-1]
    while lines and lines[-1].rstrip().endswith(BLOCK_OPENERS):
        lines.pop()
    return "\n".join(lines)


def keep_parsable(document: str, offset: int, insert: str, language: str | None) -> str:
    """Drop trailing lines of `insert` until the document parses as well as it did before.

    A file that did not parse before (the user is mid-edit) is not judged.
    """
    if (not insert or language is None or len(document) > SYNTAX_CHECK_MAX_CHARACTERS
            or has_syntax_errors(document, language)):
        return insert
    lines = insert.split("\n")
    while lines:
        candidate = "\n".join(lines)
        if candidate.strip() and not has_syntax_errors(
                document[:offset] + candidate + document[offset:], language):
            return candidate
        lines.pop()
    return ""


def _multiline_here(line_prefix: str, rest_of_line: str) -> bool:
    """Several lines are offered on a blank line or after a block opener, as Copilot does;
    in the middle of a statement only its rest is, which is also what keeps typing fast."""
    if not all(character in CLOSING_CHARACTERS for character in rest_of_line):
        return False
    typed = line_prefix.strip()
    return not typed or typed.endswith(BLOCK_STARTS)


def _indentation(row: str) -> int:
    expanded = row.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def _trim_suffix_overlap(text: str, suffix: str) -> str:
    """Drop the end of `text` that repeats what already follows the cursor."""
    rest_of_line, _, following = suffix.partition("\n")
    rest = rest_of_line.strip()
    if rest:
        first, newline, remainder = text.partition("\n")
        if not newline and first.rstrip().endswith(rest):
            return first.rstrip()[: -len(rest)]
        if newline and first.rstrip().endswith(rest):
            text = first.rstrip()[: -len(rest)] + newline + remainder
    suffix_lines = [row for row in following.split("\n") if row.strip()]
    lines = text.split("\n")
    for overlap in range(min(len(lines) - 1, len(suffix_lines)), 0, -1):
        tail = [row.strip() for row in lines[-overlap:]]
        if tail == [row.strip() for row in suffix_lines[:overlap]]:
            return "\n".join(lines[:-overlap])
    return text
