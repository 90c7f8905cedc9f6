"""Refactor a function: the prompt, reply parsing and validation; what explain and refactor
share (how they ask the model, the function at the cursor). Explain is `assist/explain.py`.

Shared by the code actions and the custom requests. The function is
found with tree-sitter; its file's imports and the related code the packer chose (callees,
types, callers) go along as context.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from analyzers.calls import python_signature
from analyzers.definitions import definitions, imports, references
from analyzers.functions import FunctionSpan, enclosing_function, find_function, replace_span
from analyzers.rewrite import dedented, extract_code_blocks, indent_like
from analyzers.syntax import first_syntax_error, has_syntax_errors
from assist.checks import (
    MAX_COPY_BYTES,
    Cancelled,
    CheckResult,
    RefactorChecks,
    Rewrite,
    checks_in,
)
from assist.workspace import WorkspaceContext, related_for
from model import chat
from model.engine import CancelToken, Engine, GenerationParams

REFACTOR_MAX_TOKENS = 1024
REFACTOR_ATTEMPTS = 3
RETRY_TEMPERATURE = 0.7
DEFAULT_REFACTOR_GOAL = "make it clearer and simpler without changing what it does"
SYSTEM_PROMPT = "You are SmallCoder, a precise and concise coding assistant."
# An instruction with one of these words may change the function's signature.
SIGNATURE_WORDS = re.compile(r"\b(rename|signature|parameter|argument|arg|return type|typ)",
                             re.IGNORECASE)
# Only one of these renames the function itself: "rename variables to be clearer" does not (the
# 1.5B renamed prime_fib on it, and the callers check looks for calls by the old name).
RENAMES_FUNCTION = re.compile(r"\brename\s+(?:the\s+|this\s+)?(?:function|method|it)\b",
                              re.IGNORECASE)
LANGUAGE_NAMES = {"python": "Python", "javascript": "JavaScript", "typescript": "TypeScript",
                  "tsx": "TypeScript (TSX)"}


class ActionError(Exception):
    """The action cannot be done here; the message tells the user why and what to do."""


@dataclass(frozen=True)
class Refactoring:
    span: FunctionSpan
    new_function: str
    new_document: str
    checks: tuple[CheckResult, ...] = ()  # what the offered rewrite passed, in order
    candidates: int = 1  # how many the model wrote until one passed


@dataclass(frozen=True)
class Run:
    """How a long action runs: on which engine, with which cancel token and yield hook, and
    who watches the text as the model writes it (`on_text` gets each piece, about a token)."""

    engine: Engine
    cancel: CancelToken | None = None
    yield_turn: Callable[[], None] | None = None
    on_text: Callable[[str], None] | None = None

    def ask(self, user: str, max_tokens: int, temperature: float = 0.0, seed: int = 0,
            earlier: Sequence[tuple[str, str]] = ()) -> str:
        """The model's reply to `user`, after the (question, answer) turns `earlier`."""
        params = GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        result = chat.ask(self.engine, SYSTEM_PROMPT, user, params, earlier=earlier,
                          cancel=self.cancel, yield_turn=self.yield_turn, on_text=self.on_text)
        if result.finish_reason == "cancelled":
            raise ActionError("cancelled")
        return result.text


def function_at(text: str, language: str, line: int, character: int) -> FunctionSpan:
    span = enclosing_function(text, language, line, character)
    if span is None:
        raise ActionError("there is no function at the cursor: put it inside one")
    return span


def _context(text: str, language: str, span: FunctionSpan, related: str = "") -> str:
    fence = language if language != "tsx" else "tsx"
    header = "\n".join(imports(text, language))
    parts = []
    if related:
        parts.append(f"Related code from the workspace (what the function uses, and its "
                     f"callers):\n\n{related}\n")
    if header:
        parts.append(f"The file's imports:\n```{fence}\n{header}\n```\n")
    parts.append(f"The function:\n```{fence}\n{dedented(span)}\n```")
    return "\n".join(parts)


def refactor(run: Run, text: str, language: str, line: int, character: int,
             instruction: str = "", related: str = "", checks: RefactorChecks | None = None
             ) -> Refactoring:
    """Rewrite the function at the cursor. A candidate is offered once it parses and keeps the
    signature (unless the instruction asks to change it), and passes `checks` (callers, the
    workspace's linters and tests) when given; one that fails is asked again with the reason,
    up to REFACTOR_ATTEMPTS candidates. `checks` are closed before this returns."""
    span = refactorable_function(text, language, line, character)
    goal = instruction.strip() or DEFAULT_REFACTOR_GOAL
    may_change_signature = bool(SIGNATURE_WORDS.search(instruction))
    may_rename = bool(RENAMES_FUNCTION.search(instruction))
    name = LANGUAGE_NAMES.get(language, language)
    keep = ("" if may_rename else f" Keep the name `{span.name}`." if may_change_signature
            else f" Keep the name `{span.name}` and its parameters.")
    # Small models follow the instruction best when it comes last, after the code.
    request = (f"{_context(text, language, span, related)}\n\nRewrite this {name} function: {goal}."
               f"{keep} Reply with only the rewritten function, in one ```{language} block.")
    problem, checked = "", False
    try:
        for attempt in range(REFACTOR_ATTEMPTS):
            feedback = f"\n\nYour previous answer was rejected: {problem}" if problem else ""
            # Greedy decoding would repeat a rejected answer: later attempts sample.
            reply = run.ask(request + feedback, REFACTOR_MAX_TOKENS,
                            temperature=0.0 if attempt == 0 else RETRY_TEMPERATURE, seed=attempt)
            try:
                candidate = _validated(text, language, span, reply, may_change_signature,
                                       may_rename)
            except ActionError as error:
                problem = str(error)
                continue
            results = _checked(run, candidate, language, text, checks)
            failed = next((result for result in results if not result.passed), None)
            if failed is None:
                return replace(candidate, checks=results, candidates=attempt + 1)
            problem, checked = f"{failed.name}: {failed.detail}", True
    finally:
        if checks is not None:
            checks.close()
    if checked:
        raise ActionError(f"no rewrite passed the checks in {REFACTOR_ATTEMPTS} candidates; "
                          f"the last failed {problem}")
    raise ActionError(f"the model's rewrite was not usable: {problem}")


def refactor_in_workspace(run: Run, workspace: WorkspaceContext, path: str, text: str,
                          language: str, line: int, character: int, instruction: str = "", *,
                          test_command: str = "", max_copy_bytes: int = MAX_COPY_BYTES
                          ) -> Refactoring:
    """`refactor` as both front doors ask it, for the file at `path` (absolute): with the related
    code the workspace's index finds, checked as `checks_in` says (tests: with `test_command`)."""
    related = related_for(workspace, path, text, line, run.engine)
    checks = checks_in(workspace, path, test_command, run.cancel, max_copy_bytes)
    return refactor(run, text, language, line, character, instruction, related=related,
                    checks=checks)


def refactorable_function(text: str, language: str, line: int, character: int
                          ) -> FunctionSpan:
    """The function at the cursor, refused when it does not parse: it has no behaviour to keep.
    Cheap: a front door asks it before loading the model."""
    span = function_at(text, language, line, character)
    error = first_syntax_error(dedented(span), language)
    if error is not None:
        row, _column, what = error
        raise ActionError(f"`{span.qualified_name}` does not parse (line "
                          f"{span.start_point[0] + row + 1}: {what}): fix the syntax error "
                          f"first, then refactor")
    return span


def _checked(run: Run, candidate: Refactoring, language: str, text: str,
             checks: RefactorChecks | None) -> tuple[CheckResult, ...]:
    """Every check the candidate went through, `parses` and `signature` included."""
    span = candidate.span
    new_signature = _rewritten_span(candidate, language).signature
    changed = not _same_parameters(new_signature, span.signature, language)
    results = [CheckResult("parses", True, "the rewritten file parses"),
               CheckResult("signature", True, f"changed as asked: `{new_signature.strip()}`"
                           if changed else "kept")]
    if checks is None:
        return tuple(results)
    if run.cancel is not None and run.cancel.cancelled:
        raise ActionError("cancelled")
    rewrite = Rewrite(checks.path, language, text, candidate.new_document, span.name,
                      dedented(_rewritten_span(candidate, language)), span.kind == "method")
    try:
        results += checks.run(rewrite, changed)
    except Cancelled as error:
        raise ActionError("cancelled") from error
    return tuple(results)


def _rewritten_span(candidate: Refactoring, language: str) -> FunctionSpan:
    """The rewritten function, parsed at column 0."""
    code = textwrap.dedent(" " * candidate.span.start_point[1] + candidate.new_function)
    found = find_function(code, language, candidate.span.name)
    if found is None:  # renamed as asked: the first function of the text
        found = _top_level_functions(code, language)[0]
    return found


def _validated(text: str, language: str, span: FunctionSpan, reply: str,
               may_change_signature: bool, may_rename: bool) -> Refactoring:
    candidate = _function_in_reply(reply, language, span, may_rename)
    if not may_change_signature and not _same_parameters(candidate.signature, span.signature,
                                                         language):
        # Spelling a type differently (List for list) is harmless: the original header is put
        # back. Renamed parameters are not: the body would refer to names that do not exist.
        raise ActionError(f"the signature changed from `{span.signature.strip()}` to "
                          f"`{candidate.signature.strip()}`: keep the parameter names")
    rewritten = candidate.text if may_change_signature else _with_header_of(span, candidate)
    separator = "\n\n\n" if language == "python" else "\n\n"
    new_function = separator.join([*_helpers_in_reply(reply, language, span, candidate, text),
                                   indent_like(span, rewritten)])
    new_document = replace_span(text, span, new_function)
    if has_syntax_errors(new_document, language) and not has_syntax_errors(text, language):
        raise ActionError("the rewritten file does not parse")
    if new_function.strip() == span.text.strip():
        raise ActionError("the function already reads well: the model suggested no change")
    return Refactoring(span, new_function, new_document)


def _helpers_in_reply(reply: str, language: str, span: FunctionSpan, candidate: FunctionSpan,
                      text: str) -> list[str]:
    """Functions the rewrite calls that the reply defines beside it and the file lacks (what
    "extract a helper" asks for): they go in front of it. Only for a top-level function; a
    method's helper would need a place in its class."""
    if "." in span.qualified_name or span.start_point[1] != 0:
        return []
    defined = {definition.name for definition in definitions(text, language)}
    used = {reference.name for reference in references(dedented(candidate), language)}
    found: dict[str, str] = {}
    for code in extract_code_blocks(reply):
        for function in _top_level_functions(code, language):
            if function.name != candidate.name and function.name in used \
                    and function.name not in defined:
                found.setdefault(function.name, dedented(function).rstrip())
    return list(found.values())


def _function_in_reply(reply: str, language: str, span: FunctionSpan,
                       may_rename: bool) -> FunctionSpan:
    """The rewritten function: by name in any code block of the reply (small models often
    put the imports in a block of their own), else the first function when renaming is asked."""
    blocks = extract_code_blocks(reply)
    for code in blocks:
        found = find_function(code, language, span.qualified_name) or find_function(
            code, language, span.name)
        if found is not None:
            return found
    if may_rename:
        for code in blocks:
            if top_level := _top_level_functions(code, language):
                return top_level[0]
    if not any(code.strip() for code in blocks):
        raise ActionError("the reply held no code")
    raise ActionError(f"the reply has no function named {span.name}")


def _with_header_of(span: FunctionSpan, candidate: FunctionSpan) -> str:
    """The candidate's body under the original's exact header (decorators, signature),
    both taken at column 0 so that a method and a top-level reply fit together."""
    original = dedented(span).split("\n")
    line, column = _body_start(span)
    header = [*original[:line], original[line][:column]]
    rewritten = dedented(candidate).split("\n")
    line, column = _body_start(candidate)
    body = [rewritten[line][column:], *rewritten[line + 1:]]
    return "\n".join([*header[:-1], header[-1] + body[0], *body[1:]])


def _body_start(span: FunctionSpan) -> tuple[int, int]:
    """Where the body starts, as (line, column) in the function's dedented text.

    A body on the lines after the signature starts at the next line's column 0, so that a
    comment above its first statement (outside tree-sitter's block node) stays with it.
    """
    header = span.text.encode()[: span.body_start_byte - span.start_byte].decode()
    signature_at = span.text.find(span.signature)
    if signature_at >= 0:
        newline = span.text.find("\n", signature_at + len(span.signature))
        if 0 <= newline < len(header):
            return span.text.count("\n", 0, newline) + 1, 0
    line = header.count("\n")
    column = len(header) - header.rfind("\n") - 1
    if line > 0:
        first = dedented(span).split("\n", 1)[0]
        column -= span.start_point[1] - (len(first) - len(first.lstrip()))
    return line, column


def _top_level_functions(code: str, language: str) -> list[FunctionSpan]:
    from analyzers.functions import functions

    return [function for function in functions(code, language)
            if "." not in function.qualified_name]


def _same_parameters(new: str, old: str, language: str) -> bool:
    """Whether two signatures take the same parameters: for Python the same names and kinds
    (annotations and defaults may differ: the original header is put back), elsewhere the same
    identifiers."""
    if language == "python":
        new_parameters, old_parameters = _python_parameters(new), _python_parameters(old)
        if new_parameters is not None and old_parameters is not None:
            return new_parameters == old_parameters
    return _names(new) == _names(old)


def _python_parameters(signature: str) -> list[tuple[str, object]] | None:
    parsed = python_signature(f"{signature.strip().rstrip(':')}:\n    pass\n")
    return None if parsed is None else [(p.name, p.kind) for p in parsed[0].parameters.values()]


def _names(signature: str) -> set[str]:
    return {name.lower() for name in re.findall(r"[A-Za-z_$][\w$]*", signature)}
