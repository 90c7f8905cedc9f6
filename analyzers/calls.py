"""Who calls a function, and whether a call still fits a rewritten signature.

Callers come from the index's references (a name on a line inside another definition);
Explain's grounding checks "called by X" claims with them, the packer shows them, and
Refactor checks that each call site still binds to the new parameters (Python).
"""

from __future__ import annotations

import ast
import bisect
import inspect
from dataclasses import dataclass

from tree_sitter import Node

from analyzers.definitions import Definition, definitions
from analyzers.index import WorkspaceIndex
from analyzers.syntax import node_text, parsed


@dataclass(frozen=True)
class Caller:
    path: str
    definition: Definition  # the function or method whose body names the callee
    line: int  # 0-based line of the mention


@dataclass(frozen=True)
class CallSite:
    path: str
    line: int  # 0-based
    text: str  # the call as written, for messages
    positional: int
    keywords: tuple[str, ...]
    unpacks: bool  # *args or **kwargs: cannot be checked without running it
    through_attribute: bool  # `obj.name(...)`: a method call gets its `self` for free


def callers_in(path: str, text_definitions: list[Definition] | tuple[Definition, ...],
               lines: tuple[int, ...], callee: Definition | None) -> list[Caller]:
    """The innermost non-class definition holding each of `lines`, unless it is `callee`
    itself (its own definition line, or a recursive call)."""
    starts = [d.start_line for d in text_definitions]
    found = []
    for line in lines:
        holders = [d for d in text_definitions[:bisect.bisect_right(starts, line)]
                   if d.kind != "class" and d.start_line <= line <= d.end_line
                   and not (callee is not None and d.start_line == callee.start_line)]
        if holders:
            found.append(Caller(path, holders[-1], line))
    return found


def workspace_callers(index: WorkspaceIndex | None, name: str, own_path: str, own_text: str,
                      language: str, callee: Definition | None) -> list[Caller]:
    """Every definition that mentions `name` on a line of its own: in the file as the editor
    holds it (`own_text`), and in the other files of the index."""
    own = definitions(own_text, language)
    own_lines = tuple(sorted({row for row, line in enumerate(own_text.split("\n"))
                              if _mentions(line, name)}))
    found = callers_in(own_path, own, own_lines, callee)
    if index is None:
        return found
    for path, lines in index.references_to(name):
        entry = index.entry(path)
        if entry is None or path == own_path:
            continue
        found += callers_in(path, entry.definitions, lines, None)
    return found


def _mentions(line: str, name: str) -> bool:
    start = line.find(name)
    while start >= 0:
        before = line[start - 1] if start else " "
        end = start + len(name)
        after = line[end] if end < len(line) else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = line.find(name, end)
    return False


def python_call_sites(path: str, text: str, name: str) -> list[CallSite]:
    """Calls of `name` (`name(...)` or `x.name(...)`) in a Python file."""
    root, source = parsed(text, "python")
    found: list[CallSite] = []
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "call":
            continue
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is None or arguments is None or arguments.type != "argument_list":
            continue
        called = function.child_by_field_name("attribute") if function.type == "attribute" \
            else function
        if called is None or called.type != "identifier" or node_text(source, called) != name:
            continue
        found.append(_call_site(path, node, arguments, source, function.type == "attribute"))
    return sorted(found, key=lambda site: site.line)


def _call_site(path: str, call: Node, arguments: Node, source: bytes,
               through_attribute: bool) -> CallSite:
    positional, keywords, unpacks = 0, [], False
    for argument in arguments.named_children:
        if argument.type == "keyword_argument":
            keyword = argument.child_by_field_name("name")
            keywords.append(node_text(source, keyword) if keyword is not None else "")
        elif argument.type in ("list_splat", "dictionary_splat"):
            unpacks = True
        elif argument.type != "comment":
            positional += 1
    return CallSite(path, call.start_point.row, node_text(source, call).split("\n")[0][:120],
                    positional, tuple(keywords), unpacks, through_attribute)


def python_signature(function_text: str) -> tuple[inspect.Signature, bool] | None:
    """The parameters of a Python function's text (dedented), and whether its first one is a
    bound `self`/`cls`; None when it does not parse as one function."""
    try:
        module = ast.parse(function_text)
    except SyntaxError:
        return None
    node = next((n for n in module.body
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if node is None:
        return None
    args = node.args
    kinds = inspect.Parameter
    parameters = [kinds(a.arg, kinds.POSITIONAL_ONLY) for a in args.posonlyargs]
    parameters += [kinds(a.arg, kinds.POSITIONAL_OR_KEYWORD) for a in args.args]
    defaults = len(args.defaults)
    if defaults:
        parameters = [p if i < len(parameters) - defaults else p.replace(default=None)
                      for i, p in enumerate(parameters)]
    if args.vararg is not None:
        parameters.append(kinds(args.vararg.arg, kinds.VAR_POSITIONAL))
    parameters += [kinds(a.arg, kinds.KEYWORD_ONLY,
                         default=inspect.Parameter.empty if d is None else None)
                   for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg is not None:
        parameters.append(kinds(args.kwarg.arg, kinds.VAR_KEYWORD))
    decorators = {ast.unparse(d) for d in node.decorator_list}
    bound = bool(parameters) and parameters[0].name in ("self", "cls") \
        and "staticmethod" not in decorators
    return inspect.Signature(parameters), bound


def call_fits(site: CallSite, signature: inspect.Signature, bound: bool) -> str | None:
    """Why the call no longer binds to `signature`, or None when it does (or cannot be told:
    it unpacks arguments)."""
    if site.unpacks:
        return None
    parameters = list(signature.parameters.values())
    if bound and site.through_attribute:
        parameters = parameters[1:]
    try:
        inspect.Signature(parameters).bind(*range(site.positional),
                                           **dict.fromkeys(site.keywords))
    except TypeError as error:
        return str(error)
    return None
