"""Asking the model for whole replacement functions, and applying its answer by symbol.

Small models rewrite a whole function far more reliably than they write a diff: the prompt
shows the failures and the code, and asks for the corrected functions in one code block.
"""

from __future__ import annotations

import difflib
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from agent.context import FailureContext, ShownFunction, render_functions
from agent.failures import failure_text
from analyzers.definitions import import_statements, imports
from analyzers.functions import FunctionSpan, find_function, functions, replace_span
from analyzers.rewrite import CODE_BLOCK, dedented, extract_code_blocks, indent_like
from analyzers.syntax import has_syntax_errors, language_for_path, parse

BARE_FENCE = re.compile(r"\n```[ \t]*\n")
OPENING_FENCE = re.compile(r"(?:^|\n)```[\w+-]+[ \t]*\n")
REASONING_START = "The wrong line is `"
# The pieces of code in a reply, in order: fenced blocks and `inline` spans.
CODE_PIECE = re.compile(CODE_BLOCK.pattern + r"|`([^`]+)`", re.DOTALL)
# Words that introduce the corrected line in "The wrong line is `x`. It should be `y`."
CORRECTION_WORDS = re.compile(r"\b(should|correct|change|replace|instead|fix|right|must|need)",
                              re.IGNORECASE)
# A stated correction is taken only if it resembles the line it corrects (difflib ratio).
MIN_CORRECTION_SIMILARITY = 0.5
# What starts a statement before its expression: a keyword, or an assignment's target. A
# correction stated as the expression alone ("`return a + b` should be `a - b`") keeps it.
STATEMENT_HEAD = re.compile(r"\s*(?:(?:return|yield|raise|throw|await|assert)\b\s*"
                            r"|[\w.\[\]'\"]+\s*(?:[-+*/%|&^]|//|\*\*|<<|>>)?=(?!=)\s*)")
# The code block's language, per tree-sitter language: the name models know best.
# Languages whose replies may add an include or import the file lacks; in Python and
# JavaScript a reply's imports are mostly the test's own, and would import the module itself.
IMPORTING_LANGUAGES = frozenset({"c", "cpp", "java", "go", "rust"})
FENCES = {"python": "python", "javascript": "javascript", "typescript": "typescript",
          "tsx": "tsx", "go": "go", "rust": "rust", "java": "java", "c": "c", "cpp": "cpp"}


class ProposalError(Exception):
    """The reply cannot be applied; the message is fed back to the model."""


@dataclass(frozen=True)
class Replacement:
    path: str
    qualified_name: str
    new_text: str  # the whole function at column 0
    # Includes and imports the reply wrote with it that the file lacks (languages where the
    # function cannot bring its own: INT_MIN needs <limits.h>).
    new_imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    replacements: tuple[Replacement, ...]

    @property
    def key(self) -> tuple[tuple[str, str, str], ...]:
        """Identity for spotting a repeated proposal: its code, comments and layout aside."""
        return tuple((item.path, item.qualified_name,
                      code_tokens(item.new_text, language_for_path(item.path) or "python"))
                     for item in self.replacements)

    def as_code(self) -> str:
        return "\n\n".join(item.new_text for item in self.replacements)


def proposal_prompt(context: FailureContext, feedback: str = "") -> str:
    """The request for a fix; the instruction comes last, after the code, where small models
    follow it best."""
    parts = ["Some tests of this project fail."]
    if context.related:
        parts.append("\nRelated code, for reference (do not rewrite it):")
        for snippet in context.related:
            fence = FENCES.get(language_for_path(snippet.path) or "", "")
            parts.append(f"{snippet.path}:\n```{fence}\n{snippet.text}\n```")
    parts += ["", "Failing tests:"]
    for failure in context.failures:
        parts.append(f"- {failure.test_id}\n{failure_text(failure)}")
    for path, shown in _by_file(context.functions):
        fence = FENCES.get(language_for_path(path) or "", "")
        role = "Test code" if not any(item.editable for item in shown) else "Code"
        body = "\n".join(context.imports.get(path, []))
        functions_text = render_functions(shown)
        body = f"{body}\n\n\n{functions_text}" if body else functions_text
        parts.append(f"\n{role} in {path}:\n```{fence}\n{body}\n```")
    names = ", ".join(f"`{item.span.qualified_name}`" for item in context.editable)
    if feedback:
        parts.append(f"\n{feedback}")
    language = language_for_path(context.editable[0].path) or ""
    fence = FENCES.get(language, "")
    header = "def line" if language == "python" else "signature"
    include = (" If the fix needs a header the file does not include, put its #include line "
               "above the function." if language in ("c", "cpp") else "")
    parts.append(
        f"\nFind the bug and fix it so that the failing tests pass. The bug is probably small: "
        f"change only what is wrong, and do not change the tests. "
        f"Reply with the whole corrected function (its {header} and body; only the functions "
        f"you change, among {names}) in one ```{fence} block.{include}")
    return "\n".join(parts)


def reply_start(context: FailureContext, candidate: int = 0) -> str:
    """The start of the answer, written for the model.

    Even candidates start an open code block with the header of one function to fix (a
    different one for each when there are several): small models otherwise often answer with
    the test rewritten. Odd candidates start by naming the wrong line: a 1.5B model that must
    say what is wrong first repeats the function unchanged less often.
    """
    if candidate % 2 == 1:
        return REASONING_START
    target = context.editable[(candidate // 2) % len(context.editable)]
    fence = FENCES.get(language_for_path(target.path) or "", "")
    header = target.span.signature.strip()
    if header.endswith(":"):
        return f"```{fence}\n{header}\n"
    return f"```{fence}\n{_brace_header(target.span)}"


def _brace_header(span: FunctionSpan) -> str:
    """A braced function's one-line header with its `{` and a newline, as its text has it;
    nothing when the header spans lines or the body is not a block."""
    source = span.text.encode()
    header = source[:span.body_start_byte - span.start_byte].decode(errors="replace")
    if "\n" in header.strip() or not source[span.body_start_byte - span.start_byte:
                                             ].startswith(b"{"):
        return ""
    return f"{header.rstrip()} {{\n"


def closing_fence(text: str) -> int | None:
    """A stop rule: the answer ends at the first bare fence line (an opening one names its
    language), which closes the block the reply started in."""
    match = BARE_FENCE.search(text)
    return match.start() + 1 if match else None


def full_reply(start: str, generated: str) -> str:
    """The reply as if the model had written it all; a model that opened a code block of its
    own instead of continuing ours is taken at its word."""
    if start == REASONING_START:
        reply = start + generated
        return reply if reply.count("```") % 2 == 0 else f"{reply}\n```"
    if OPENING_FENCE.search(generated):
        return generated if generated.count("```") >= 2 else f"{generated}\n```"
    return f"{start}{generated}\n```"


def reply_budget_tokens(context: FailureContext, count_tokens: Callable[[str], int],
                        maximum: int) -> int:
    """Room for the rewritten functions with some growth, not for pages of invented tests."""
    size = sum(count_tokens(item.span.text) for item in context.editable)
    return max(128, min(maximum, 2 * size + 128))


def parse_proposal(reply: str, context: FailureContext) -> Proposal:
    """The editable functions the reply rewrites, found by name in any of its code blocks."""
    editable = context.editable
    found: dict[tuple[str, str], Replacement] = {}
    for code in extract_code_blocks(reply):
        for target in editable:
            language = language_for_path(target.path) or "python"
            candidate = _named_function(code, language, target.span)
            if candidate is None or (target.path, target.span.qualified_name) in found:
                continue
            new_text = dedented(candidate).rstrip()
            if language == "python" and target.span.docstring and not candidate.docstring:
                new_text = _with_docstring_of(dedented(target.span), new_text)
            if code_tokens(new_text, language) == code_tokens(dedented(target.span), language):
                continue
            found[(target.path, target.span.qualified_name)] = Replacement(
                target.path, target.span.qualified_name, new_text,
                _new_imports(code, language, context.imports.get(target.path, [])))
    if not found:
        stated = _stated_line_fix(reply, editable)
        if stated is not None:
            return Proposal((stated,))
        names = ", ".join(item.span.qualified_name for item in editable)
        languages = {language_for_path(item.path) or "python" for item in editable}
        if any(functions(code, language) for code in extract_code_blocks(reply)
               for language in languages):
            raise ProposalError(f"the reply changed none of the functions {names}")
        raise ProposalError(f"the reply held no function named {names}")
    return Proposal(tuple(found.values()))


def apply_proposal(proposal: Proposal, read: Callable[[str], str],
                   write: Callable[[str, str], None]) -> None:
    """Replace each function where it stands now; a file that stops parsing is refused."""
    new_texts: dict[str, str] = {}
    for item in proposal.replacements:
        language = language_for_path(item.path) or "python"
        text = new_texts.get(item.path) or read(item.path)
        span = find_function(text, language, item.qualified_name)
        if span is None:
            raise ProposalError(f"{item.qualified_name} is no longer in {item.path}")
        new_texts[item.path] = _with_imports(
            replace_span(text, span, indent_like(span, item.new_text)), language,
            item.new_imports)
    for path, text in new_texts.items():
        language = language_for_path(path) or "python"
        if has_syntax_errors(text, language) and not has_syntax_errors(read(path), language):
            raise ProposalError(f"{path} does not parse with the new code")
    for path, text in new_texts.items():
        write(path, text)


def code_tokens(code: str, language: str) -> str:
    """The code's tokens without its comments: a reply that only adds "// Corrected" to an
    unchanged function changes nothing, and is not worth a test run."""
    tokens: list[str] = []
    source = code.encode()
    pending = [parse(code, language).root_node]
    while pending:
        node = pending.pop()
        if "comment" in node.type:
            continue
        if node.child_count == 0:
            tokens.append(source[node.start_byte:node.end_byte].decode(errors="replace"))
        pending.extend(reversed(node.children))
    return " ".join(tokens)


def _new_imports(code: str, language: str, file_imports: list[str]) -> tuple[str, ...]:
    """The reply's includes and imports that its file has not, where a reply may add them."""
    if language not in IMPORTING_LANGUAGES:
        return ()
    present = {line.strip() for line in file_imports}
    return tuple(dict.fromkeys(line.strip() for line in imports(code, language)
                               if line.strip() not in present
                               and not line.strip().startswith("package ")))


def _with_imports(text: str, language: str, new_imports: tuple[str, ...]) -> str:
    """`text` with the imports it lacks added after its last one (or after Go's package line,
    or at its top)."""
    statements = import_statements(text, language)
    missing = [line for line in new_imports
               if line not in {statement.text.strip() for statement in statements}]
    if not missing:
        return text
    lines = text.split("\n")
    if statements:
        last = statements[-1]
        at = last.start_line + last.text.rstrip("\n").count("\n") + 1
    else:
        at = next((index + 1 for index, line in enumerate(lines)
                   if language == "go" and line.startswith("package ")), 0)
    return "\n".join(lines[:at] + missing + lines[at:])


def _with_docstring_of(original: str, rewritten: str) -> str:
    """The rewritten Python function with the original's docstring put back: small models
    often leave it out, and a diff that deletes documentation is a worse review."""
    source, target = original.encode(), rewritten.encode()
    old_span, new_span = functions(original, "python")[0], functions(rewritten, "python")[0]
    quote_at = old_span.body_start_byte
    quote = next((mark for mark in (b'"""', b"'''", b'"', b"'")
                  if source.startswith(mark, quote_at)), None)
    body_at = new_span.body_start_byte
    line_start = target.rfind(b"\n", 0, body_at) + 1
    indent = target[line_start:body_at]
    closing = source.find(quote, quote_at + len(quote)) if quote else -1
    if closing < 0 or indent.strip() or line_start == 0:
        return rewritten  # an unusual docstring, or a one-line body: leave the reply as it is
    docstring = source[quote_at:closing + len(quote)]
    return (target[:body_at] + docstring + b"\n" + indent + target[body_at:]).decode()


def _stated_line_fix(reply: str, editable: tuple[ShownFunction, ...]) -> Replacement | None:
    """A fix said in words: "The wrong line is `x`. It should be `y`."

    Small models often name the right fix and then copy the function out unchanged. The first
    code piece that is a line (or run of lines, or a unique part of a line) of an editable
    function is the wrong one; the first later piece introduced by a word such as "should" or
    "correct", and resembling it, replaces it there.
    """
    pieces = [(match.group(1) if match.group(1) is not None else match.group(2), match)
              for match in CODE_PIECE.finditer(reply)]
    wrong_at = next(((index, target, text, located) for index, (wrong, _) in enumerate(pieces)
                     for target in editable
                     if (located := _locate(text := dedented(target.span), wrong)) is not None),
                    None)
    if wrong_at is None:
        return None
    index, target, function_text, located = wrong_at
    wrong, previous = pieces[index]
    for right, match in pieces[index + 1:]:
        gap, previous = reply[previous.end():match.start()], match
        right = _with_statement_head(wrong, right)
        if (CORRECTION_WORDS.search(gap) and _squeezed(right) != _squeezed(wrong)
                and _similarity(wrong, right) >= MIN_CORRECTION_SIMILARITY):
            new_text = located(right)
            if new_text.strip() != function_text.strip():
                return Replacement(target.path, target.span.qualified_name, new_text.rstrip())
    return None


def _with_statement_head(wrong: str, right: str) -> str:
    """`right` as the statement `wrong` is: its `return`, `x = ` or trailing `;` put back when
    the correction gives the expression alone."""
    head = STATEMENT_HEAD.match(wrong)
    if head is None or "\n" in right.strip() or STATEMENT_HEAD.match(right) is not None:
        return right
    corrected = head.group().lstrip() + right.strip()
    if wrong.rstrip().endswith(";") and not corrected.endswith(";"):
        corrected += ";"
    return corrected


def _locate(function_text: str, wrong: str) -> Callable[[str], str] | None:
    """Where `wrong` stands in the function, as a way to put a correction there: whole lines
    (compared without whitespace), else a part of one line that occurs once."""
    lines = function_text.split("\n")
    wanted = _squeezed(wrong)
    if not wanted:
        return None
    for first in range(1, len(lines)):  # never the def line
        joined = ""
        for last in range(first, len(lines)):
            joined += _squeezed(lines[last])
            if joined == wanted:
                return lambda right, first=first, last=last: _with_lines(
                    lines, first, last, right)
            if not wanted.startswith(joined):
                break
    part = wrong.strip()
    if "\n" not in part and function_text.count(part) == 1 and \
            function_text.index(part) > function_text.index("\n"):
        return lambda right: function_text.replace(part, right.strip())
    return None


def _with_lines(lines: list[str], first: int, last: int, right: str) -> str:
    indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
    new_lines = textwrap.dedent(right.strip("\n")).rstrip().split("\n")
    old_last = lines[last].rstrip()
    if len(new_lines) == 1 and old_last.endswith(":") and not new_lines[0].endswith(":"):
        new_lines[0] += ":"  # "while x > 0:" corrected as "while x >= 0"
    new_lines = [f"{indent}{row}" if row.strip() else "" for row in new_lines]
    return "\n".join(lines[:first] + new_lines + lines[last + 1:])


def _squeezed(code: str) -> str:
    return re.sub(r"\s+", "", code)


def _similarity(wrong: str, right: str) -> float:
    return difflib.SequenceMatcher(None, _squeezed(wrong), _squeezed(right)).ratio()


def _named_function(code: str, language: str, target: FunctionSpan) -> FunctionSpan | None:
    return (find_function(code, language, target.qualified_name)
            or find_function(code, language, target.name))


def _by_file(shown: tuple[ShownFunction, ...]) -> list[tuple[str, list[ShownFunction]]]:
    """Functions grouped by file, in file order, the files in the order first shown."""
    groups: dict[str, list[ShownFunction]] = {}
    for item in shown:
        groups.setdefault(item.path, []).append(item)
    return [(path, sorted(items, key=lambda item: item.span.start_byte))
            for path, items in groups.items()]
