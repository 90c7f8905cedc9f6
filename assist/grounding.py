"""What the workspace knows about the code being explained, told to the model and used to check
what it wrote: which names and files exist, who calls the function, what it returns.

A small model invents callers, types and helpers unless it is shown them; whatever it still
invents is found here by the index, not by another model, and shown to the user as a note.
"""

from __future__ import annotations

import builtins
import keyword
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from pathlib import Path

from analyzers.calls import Caller, workspace_callers
from analyzers.definitions import Definition, references
from analyzers.index import WorkspaceIndex
from assist.workspace import WorkspaceContext

MAX_LISTED = 12  # callers and callees named in the prompt
MODULE_DOCSTRING_CHARACTERS = 600
# Names any Python, JavaScript or TypeScript reader knows without the workspace defining them.
COMMON_NAMES = frozenset(
    {*dir(builtins), *keyword.kwlist, *typing.__all__, "self", "cls", "this", "true", "false",
     "null", "undefined", "console", "Promise", "Array", "Object", "String", "Number", "Map",
     "Set", "JSON", "Math", "Error", "async", "await", "const", "let", "var", "function",
     "string", "number", "boolean", "void", "any", "unknown", "never", "args", "kwargs"})
FILE_NAME = re.compile(r"(?<![\w/.-])[\w./-]*\w\.(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|json|toml|cfg|ini"
                       r"|md|txt|yaml|yml)(?![\w/])")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# An identifier in prose that is certainly code: snake_case or camelCase.
PROSE_IDENTIFIER = re.compile(r"(?<![\w.`])([A-Za-z]+_\w*[A-Za-z0-9]|[a-z]+[A-Z]\w*)(?![\w`])")
HEAD_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_$][\w$]*)")
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
CALLER_CLAIM = re.compile(
    r"\b(?:is |are |gets |get )?(?:used|called|invoked|reused)\s+(?:by|from|in|within|inside)"
    r"\s+(?:the\s+)?(?:(?:function|method|class)\s+)?(`[^`\n]+`|[A-Za-z_][\w.]*(?![\w-])\(?)"
    r"(?!\s+line\b)",  # "invoked from the command line" names no caller
    re.IGNORECASE)  # "- Used by `launch`" opens a list item
ABBREVIATION = re.compile(r"\b(?:e\.g|i\.e|vs|cf|etc)\.$", re.IGNORECASE)  # ends no sentence
# "called by several …, including `A`, `B`": the callers named after the quantifier.
QUANTIFIERS = {"several", "various", "many", "multiple", "other", "some", "different",
               "numerous", "a"}
ENUMERATION = re.compile(r"\b(?:including|such\s+as|like|e\.g\.,?|namely|for\s+example,?)\s+")
ACTIVE_CALLER_CLAIM = re.compile(
    r"(`[^`\n]+`|[A-Za-z_][\w.]*)\s+(?:(?:class|method|function|module)\s+)?(?:also\s+)?"
    r"(?:calls|uses|invokes)\s+(?:this\s+(?:function|method|helper)\b|`SUBJECT`)")
# "…the Hyperscan database, which is then used by": the word the clause points back to.
RELATIVE_CLAUSE = re.compile(r"(`[^`\n]+`|[\w.]+\(?\)?)\s*,?\s+which\s+(?:is\s+|are\s+)?"
                             r"(?:then\s+|also\s+|later\s+|in\s+turn\s+)?$", re.IGNORECASE)
SUBJECT_WORDS = {"function", "method", "helper", "it", "itself", "this"}
# Who "returns": only the function itself (its name, "it", "the function") or the start of
# a sentence or list item ("Returns a list", "**Returns:** a list") make a claim about it; a
# relative clause ("that returns") or a condition ("if it returns") speaks of something else.
OWN_RETURN = re.compile(r"(?:(?:^|(?<=[.!?:]\s)|(?<=\n))\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:\*\*)?"
                        r"|(?<![Ii]f )(?<![Ww]hen )(?<![Uu]nless )"
                        r"(?:\bit|\bthe function|\bthis function|\bthe method|\bthis method"
                        r"|`?SUBJECT(?:\(\))?`?)\s+(?:also\s+|then\s+|always\s+|only\s+|"
                        r"finally\s+)?)$", re.MULTILINE)
RETURN_CLAIM = re.compile(r"\breturns?\b([^.;:\n]{0,60})", re.IGNORECASE)
# What comes right before "returns" when it is said of a named function: "`join_options`
# (function|method|call) (also|then|which) returns".
OTHER_SUBJECT = re.compile(r"`([^`\n]+)`(?:\s+(?:function|method|call|helper))?"
                           r"(?:\s*,?\s*(?:also|then|which|that|itself))?\s+$", re.IGNORECASE)
# "returns a non-`None` value", "returns not a list": the type word after these is denied.
NEGATIONS = {"non", "not", "never", "no"}
TYPE_WORDS = {"int": "int", "integer": "int", "float": "float", "str": "str", "string": "str",
              "bool": "bool", "boolean": "bool", "list": "list", "dict": "dict",
              "dictionary": "dict", "tuple": "tuple", "set": "set", "bytes": "bytes",
              "none": "None"}
# Annotation words that admit a claimed type: typing's spellings and the number tower.
ADMITS = {"list": {"List", "Sequence", "Iterable", "MutableSequence"},
          "dict": {"Dict", "Mapping", "MutableMapping"}, "tuple": {"Tuple"},
          "set": {"Set", "FrozenSet", "frozenset", "AbstractSet"},
          "None": {"Optional", "None"}, "int": {"SupportsInt"},
          "bool": {"int"}}


@dataclass(frozen=True)
class Grounding:
    """The facts about one piece of code (a function, a class, a file or a selection)."""

    subject_name: str  # the function's or class's plain name; "" for a file or a selection
    path: str
    callers: tuple[Caller, ...]
    callees: tuple[str, ...]  # names the code uses that the workspace defines
    known_text: str  # the file, the related code: any identifier in it exists
    returns: str | None = None  # the function's return annotation
    module_docstring: str | None = None
    files: frozenset[str] = frozenset()
    index: WorkspaceIndex | None = field(default=None, compare=False)

    def prompt_facts(self) -> str:
        """The facts as a Markdown list for the explain prompt."""
        facts = []
        if self.module_docstring:
            facts.append(f"- The module `{self.path}` says: "
                         f"{_one_line(self.module_docstring)[:MODULE_DOCSTRING_CHARACTERS]}")
        if self.subject_name:
            callers = sorted({f"`{c.definition.qualified_name}` ({c.path})" for c in self.callers})
            facts.append(f"- `{self.subject_name}` is called by: {', '.join(callers[:MAX_LISTED])}"
                         if callers else f"- Nothing in the workspace calls `{self.subject_name}`"
                         f": do not name any caller.")
        if self.callees:
            facts.append(f"- It uses these workspace names: "
                         f"{', '.join(f'`{n}`' for n in self.callees[:MAX_LISTED])}")
        if self.returns:
            facts.append(f"- It is annotated to return `{self.returns}`.")
        facts.append("- Name only identifiers and files that appear in the code shown here.")
        return "Facts from the workspace index:\n" + "\n".join(facts)

    def name_exists(self, name: str) -> bool:
        if name in COMMON_NAMES or _word_in(name, self.known_text):
            return True
        if name in self._modules:
            return True  # a module: "the `core` module"
        index = self.index
        return index is not None and bool(index.definitions_named(name)
                                          or index.references_to(name))

    @cached_property
    def _modules(self) -> frozenset[str]:
        """The workspace's module names (file stems), made once per explanation checked."""
        return frozenset(Path(file).stem for file in self.files)

    def file_exists(self, name: str) -> bool:
        name = name.removeprefix("./")
        if self.index is not None:  # a workspace opened at a package, `click/`, has
            name = name.removeprefix(self.index.root.name + "/")  # click/core.py as core.py
        own = {self.path, self.path.rsplit("/", 1)[-1]}
        return name in own or name in self.files or any(
            path.endswith("/" + name) for path in self.files)


# The facts of a subject: its definition (a function or class, else None) and 0-based lines.
GroundingOf = Callable[[Definition | None, tuple[int, int]], "Grounding"]


def grounding_in(workspace: WorkspaceContext, path: str, text: str, language: str,
                 related: str) -> GroundingOf:
    """Explain's `grounding`: the facts of a subject of the file at `path` (absolute), from
    the index of its workspace folder (only the file itself outside any)."""
    index = workspace.index_for(path)
    name = (index.relative(path) if index is not None else None) or workspace.prompt_path(path)
    return lambda subject, lines: grounding_for(index, name, text, language, subject, lines,
                                                related)


def grounding_for(index: WorkspaceIndex | None, path: str, text: str, language: str,
                  subject: Definition | None, lines: tuple[int, int], related: str
                  ) -> Grounding:
    """The facts about the code on `lines` (0-based, inclusive) of `text`, the file at `path`
    (relative to the index's root); `subject` when it is one function or class."""
    callers: list[Caller] = []
    if subject is not None:
        callers = workspace_callers(index, subject.name, path, text, language, subject)
    used = dict.fromkeys(reference.name for reference in references(text, language, lines))
    own = subject.name if subject is not None else ""
    callees = [name for name in used if name != own and index is not None
               and index.definitions_named(name)]
    files = frozenset(entry.path for entry in index.files()) if index is not None else frozenset()
    return Grounding(own, path, tuple(callers), tuple(callees), f"{text}\n{related}",
                     _return_annotation(subject), _module_docstring(text, language), files,
                     index)


def check_explanation(markdown: str, grounding: Grounding, examples: str = ""
                      ) -> tuple[str, ...]:
    """What the explanation says that the workspace contradicts, one note each: names and
    files that exist nowhere, callers that do not call it, a return type against the
    annotation. `examples`: code blocks of the whole answer, when `markdown` is a part."""
    prose = CODE_BLOCK.sub(" ", markdown)
    notes: list[str] = []
    unknown_files, unknown_names = _unknown_mentions(prose, grounding)
    # A name the answer's own example defines ("```def old_function(): ...```, then when
    # `old_function` is called…") is the example's, not a claim about the workspace.
    examples = "\n".join([*CODE_BLOCK.findall(markdown), examples])
    unknown_names = [name for name in unknown_names if not re.search(
        rf"\b(?:def|class|function|func|fn|let|const|var)\s+{re.escape(name)}\b"
        rf"|^\s*{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)", examples, re.MULTILINE)]
    notes += [f"`{name}` is not a file of the workspace." for name in unknown_files]
    notes += [f"`{name}` is not defined or used anywhere in the workspace." for name in
              unknown_names]
    notes += _wrong_callers(prose, grounding)
    notes += _wrong_return(prose, grounding)
    return tuple(dict.fromkeys(notes))


@dataclass(frozen=True)
class FlaggedSentence:
    """A sentence of an answer's prose that the workspace contradicts."""

    start: int  # its place in the answer: answer[start:end] is `text`
    end: int
    text: str
    notes: tuple[str, ...]


def flagged_sentences(markdown: str, grounding: Grounding) -> list[FlaggedSentence]:
    """The sentences of the answer's prose (outside its code blocks) that `check_explanation`
    finds fault with, each with its notes, in the answer's order."""
    examples = "\n".join(CODE_BLOCK.findall(markdown))
    found = []
    for start, end in _sentences(markdown):
        if notes := check_explanation(markdown[start:end], grounding, examples):
            found.append(FlaggedSentence(start, end, markdown[start:end], notes))
    return found


def _sentences(markdown: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of the prose: within a line, after its list marker or
    heading, split after `.`, `!` or `?` and a space outside code spans."""
    spans = []
    blocks = [(match.start(), match.end()) for match in CODE_BLOCK.finditer(markdown)]
    for line in re.finditer(r"[^\n]+", markdown):
        if any(start <= line.start() < end for start, end in blocks):
            continue
        text = line.group()
        head = re.match(r"\s*(?:[-*+]\s+|\d+[.)]\s+|#+\s+|>\s*)?", text).end()
        masked = CODE_SPAN.sub(lambda span: "x" * len(span.group()), text)
        ends = re.finditer(r"[.!?](?:\*\*|\*|_)?\s+(?=\S)", masked)
        cuts = [head, *(m.end() for m in ends if m.end() > head
                        and not ABBREVIATION.search(masked, 0, m.start() + 1)), len(text)]
        for start, end in pairwise(cuts):
            piece = text[start:end].rstrip()
            if piece.strip():
                spans.append((line.start() + start, line.start() + start + len(piece)))
    return spans


def _unknown_mentions(prose: str, grounding: Grounding) -> tuple[list[str], list[str]]:
    files: dict[str, None] = {}
    names: dict[str, None] = {}
    for span in CODE_SPAN.findall(prose):
        for match in FILE_NAME.findall(span):
            if not grounding.file_exists(match):
                files.setdefault(match)
        code = FILE_NAME.sub(" ", QUOTED.sub(" ", span))
        for name in HEAD_IDENTIFIER.findall(code):
            if not grounding.name_exists(name):
                names.setdefault(name)
    outside = CODE_SPAN.sub(" ", prose)
    for match in FILE_NAME.findall(outside):
        if not grounding.file_exists(match):
            files.setdefault(match)
    for name in PROSE_IDENTIFIER.findall(FILE_NAME.sub(" ", outside)):
        if not grounding.name_exists(name):
            names.setdefault(name)
    return list(files), list(names)


def _wrong_callers(prose: str, grounding: Grounding) -> list[str]:
    if not grounding.subject_name:
        return []
    callers = {part for caller in grounding.callers
               for part in (caller.definition.name, caller.definition.qualified_name,
                            Path(caller.path).stem)}
    # "called by the `ProgressBar` class" is true when a method of ProgressBar calls it.
    callers |= {".".join(parts[:end]) for caller in grounding.callers
                if len(parts := caller.definition.qualified_name.split(".")) > 1
                for end in range(1, len(parts))}
    notes = []
    # "`PathSpec` uses this function": the same claim, said the other way round.
    active = re.compile(ACTIVE_CALLER_CLAIM.pattern.replace(
        "SUBJECT", re.escape(grounding.subject_name)), re.IGNORECASE)
    claims = []
    for claim in CALLER_CLAIM.finditer(prose):
        if _said_of_another(prose, claim.start(), grounding.subject_name):
            continue
        if claim.group(1).lower() not in QUANTIFIERS:
            claims.append((claim.start(), claim.group(1)))
            continue
        # "called by several methods in `core.py`, including `A`, `B` and `C`": A, B and C.
        sentence = re.match(r"[^\n]*?(?:[.!?](?=\s)|(?=\n)|$)", prose[claim.end():]).group()
        listed = ENUMERATION.search(sentence)
        claims += [(claim.end() + listed.end() + span.start(), span.group())
                   for span in re.finditer(r"`[^`\n]+`", sentence[listed.end():])] \
            if listed else []
    claims += [(claim.start(), claim.group(1)) for claim in active.finditer(prose)]
    for at, raw in sorted(claims):
        quoted = raw.startswith("`")
        claimed = raw.strip("`").split("(")[0].strip()
        # "used in the `open` method": a builtin's name, said to be a method of the workspace.
        named_kind = re.match(r"\s+(?:method|function)\b",
                              prose[prose.find(raw, at) + len(raw):]) is not None
        if not re.fullmatch(r"[A-Za-z_][\w.]*", claimed) or (claimed in COMMON_NAMES
                                                              and not named_kind):
            continue  # "used in `with` statements", "called by `self`": not a caller's name
        looks_like_code = quoted or raw.endswith("(") or PROSE_IDENTIFIER.fullmatch(claimed) \
            or (grounding.index is not None and grounding.index.definitions_named(claimed))
        if not looks_like_code or claimed in callers or claimed.split(".")[-1] in callers:
            continue
        if FILE_NAME.fullmatch(claimed) and any(
                (caller.path == claimed or caller.path.endswith("/" + claimed))
                for caller in grounding.callers):
            continue  # "called from report.py": some caller is in that file
        found = sorted({f"`{c.definition.qualified_name}`" for c in grounding.callers})
        notes.append(f"“called by `{claimed}`”: the index finds no call of "
                     f"`{grounding.subject_name}` in `{claimed}`; "
                     + (f"it is called by {', '.join(found[:MAX_LISTED])}." if found
                        else "nothing in the workspace calls it."))
    return notes


def _wrong_return(prose: str, grounding: Grounding) -> list[str]:
    if not grounding.returns:
        return []
    annotation = set(re.findall(r"[A-Za-z_]\w*", grounding.returns))
    if re.fullmatch(r"(?:\w+\.)?(?:Any|object)|_?[A-Z]", grounding.returns.strip("'\" ")):
        return []  # `t.Any`, `object`, a type variable `T`: every claimed type fits
    notes = []
    said_of_it = re.compile(OWN_RETURN.pattern.replace(
        "SUBJECT", re.escape(grounding.subject_name)), re.IGNORECASE)
    for claim in RETURN_CLAIM.finditer(prose):
        fragment = claim.group(1)
        if not said_of_it.search(prose, max(0, claim.start() - 40), claim.start()):
            continue  # "a method `get_params` that returns a list", "If it returns None, …"
        # "returns `None` for the `types` key": a part of what it returns, not the whole.
        if re.match(r"\s*(?:an?\s+)?`?\w+`?\s+(?:for|in|inside|as)\s+(?:the|its|each|every)\b",
                    fragment):
            continue
        words = re.findall(r"[A-Za-z_]\w*", fragment.replace("`", " "))
        claimed = next((TYPE_WORDS[word.lower()] for before, word in pairwise(["", *words])
                        if word.lower() in TYPE_WORDS and before.lower() not in NEGATIONS), None)
        if claimed is None or claimed in annotation or annotation & ADMITS.get(claimed, set()) \
                or any(word.endswith(claimed.capitalize()) for word in annotation):
            continue  # named for its kind: `PathInfoDict` (a TypedDict) is a dict, `AnyStr` a str
        notes.append(f"“returns {claimed}”: the function is annotated to return "
                     f"`{grounding.returns}`.")
    return notes


def _said_of_another(prose: str, at: int, subject_name: str) -> bool:
    """Whether the claim at prose[at:] is said of a function named right before it (in a code
    span) that is not the subject, or of what a relative clause points back to: "creates the
    database, which is then used by `PathSpec`" is about the database."""
    named = OTHER_SUBJECT.search(prose, max(0, at - 80), at)
    if named is not None:
        return named.group(1).split("(")[0].split(".")[-1] != subject_name
    relative = RELATIVE_CLAUSE.search(prose, max(0, at - 120), at)
    if relative is None:
        return False
    before = relative.group(1).strip("`").split("(")[0].split(".")[-1]
    return before != subject_name and before.lower() not in SUBJECT_WORDS


def _return_annotation(subject: Definition | None) -> str | None:
    if subject is None or subject.kind == "class":
        return None
    match = re.search(r"\)\s*(?:->|:)\s*([^:{=]+?)\s*[:{]?\s*$", subject.signature)
    if match is None:
        return None
    annotation = match.group(1).strip()
    return annotation or None


def _module_docstring(text: str, language: str) -> str | None:
    if language != "python":
        match = re.match(r"\s*/\*\*(.*?)\*/", text, re.DOTALL)
        return re.sub(r"^\s*\* ?", "", match.group(1), flags=re.MULTILINE).strip() \
            if match else None
    match = re.match(r"\s*(?:#[^\n]*\n\s*)*[rRuU]?(\"\"\"|''')(.*?)\1", text, re.DOTALL)
    return match.group(2).strip() if match else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _word_in(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", text) is not None
