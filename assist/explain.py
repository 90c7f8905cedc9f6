"""Explain a function, a class, a selection or a whole file, grounded in the workspace.

The prompt carries the related code the packer chose and the facts of `grounding` (callers,
names used, return annotation, the module's docstring); the answer is checked against the same
facts and what the workspace contradicts is shown under it as notes. Code too long for the
budget is explained from its outline, and the answer says so.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace

from analyzers.definitions import Definition, definitions, imports
from assist.actions import LANGUAGE_NAMES, ActionError, Run, function_at
from assist.grounding import (
    CODE_BLOCK,
    Grounding,
    GroundingOf,
    check_explanation,
    flagged_sentences,
    grounding_in,
)
from assist.workspace import WorkspaceContext, related_for

EXPLAIN_MAX_TOKENS = 400
# The code itself: beyond this the prompt shows its outline. On a 2-core CPU at 50 prompt
# tokens/s the 1.5B reads this much in half a minute.
EXPLAIN_CODE_MAX_TOKENS = 1536
SCOPES = ("function", "class", "file", "selection")
NOTES_HEADING = "**Checked against the workspace index:**"
# Sentences the index contradicts are rewritten, one short follow-up each; beyond these they
# are only noted. Each costs the follow-up's question and up to this many tokens.
MAX_CORRECTED_SENTENCES = 3
CORRECTION_MAX_TOKENS = 96
DROP_WORD = "DROP"
REWRITING = "Rewriting what the workspace index contradicts"
ALL_CONTRADICTED = ("_The workspace index contradicted every sentence of the model's answer: "
                    "see the notes below._")


@dataclass(frozen=True)
class Subject:
    """What is explained: its kind (one of SCOPES), its name for the title, its lines."""

    kind: str
    name: str
    code: str
    lines: tuple[int, int]  # 0-based, inclusive
    definition: Definition | None  # for a function or a class


@dataclass(frozen=True)
class Explanation:
    function_name: str  # the subject's name (a function's qualified name, for the title)
    markdown: str
    notes: tuple[str, ...] = ()  # what the index contradicted in the draft
    outline: bool = False  # explained from its outline: too long for the budget
    draft: str = ""  # the model's answer before sentences the index contradicts were rewritten


def subject_at(text: str, language: str, path: str, line: int, character: int,
               scope: str = "function", selection: tuple[int, int] | None = None) -> Subject:
    """The code to explain: the function or class around (line, character), the selected
    lines (0-based, inclusive), or the whole file."""
    lines = text.split("\n")
    if scope == "file":
        return Subject("file", path.rsplit("/", 1)[-1], text, (0, len(lines) - 1), None)
    if scope == "selection":
        if selection is None or selection[0] > selection[1]:
            raise ActionError("select the lines to explain first")
        first, last = max(0, selection[0]), min(len(lines) - 1, selection[1])
        code = "\n".join(lines[first:last + 1])
        if not code.strip():
            raise ActionError("the selection is empty: select the code to explain")
        return Subject("selection", f"lines {first + 1}-{last + 1}", code, (first, last), None)
    if scope == "class":
        classes = [d for d in definitions(text, language)
                   if d.kind == "class" and d.start_line <= line <= d.end_line]
        if not classes:
            raise ActionError("there is no class at the cursor: put it inside one")
        found = classes[-1]
        return Subject("class", found.qualified_name,
                       "\n".join(lines[found.start_line:found.end_line + 1]),
                       (found.start_line, found.end_line), found)
    if scope != "function":
        raise ActionError(f"cannot explain a {scope!r}: ask for one of {', '.join(SCOPES)}")
    span = function_at(text, language, line, character)
    first, last = span.start_point[0], span.end_point[0]
    found = next((d for d in reversed(definitions(text, language)) if d.kind != "class"
                  and d.name == span.name and d.start_line <= line <= d.end_line), None)
    return Subject("function", span.qualified_name, "\n".join(lines[first:last + 1]),
                   (first, last), found)


def explain(run: Run, text: str, language: str, line: int, character: int,
            related: str = "", *, path: str = "", scope: str = "function",
            selection: tuple[int, int] | None = None,
            grounding: GroundingOf | None = None) -> Explanation:
    """`related`: code the packer chose (callees, types, callers), Markdown; `grounding` gives
    the facts of the subject (None: the prompt has none and the answer is not checked).

    While the model writes, `run.on_text` gets the explanation's Markdown piece by piece:
    joined, the pieces are always the start of the draft's Markdown, so a reader can be shown
    them as they come. When the index contradicts the draft, a last piece says that sentences
    are being rewritten, and the Markdown returned replaces what was shown.
    """
    subject = subject_at(text, language, path, line, character, scope, selection)
    shown, outlined = code_within(subject.code, run.engine.count_tokens, EXPLAIN_CODE_MAX_TOKENS)
    header = f"### `{subject.name}`\n\n"
    if outlined:
        header += (f"> {subject.kind.capitalize()} too long to show whole (over "
                   f"{EXPLAIN_CODE_MAX_TOKENS} tokens): explained from its outline, its "
                   f"signatures and outermost statements.\n\n")
    facts = grounding(subject.definition, subject.lines) if grounding is not None else None
    prompt = _prompt(subject, shown, text, language, related, facts, outlined)
    draft = replace(run, on_text=_markdown_pieces(header, run.on_text)).ask(
        prompt, EXPLAIN_MAX_TOKENS).strip()
    if not draft:
        raise ActionError("the model gave no explanation; try again")
    notes = check_explanation(draft, facts) if facts is not None else ()
    reply, listed = draft, list(notes)
    if notes:
        if run.on_text is not None:  # shown until the corrected explanation replaces it
            run.on_text(f"\n\n_{REWRITING}…_")
        reply, listed = _corrected(replace(run, on_text=None), prompt, draft, facts)
    markdown = f"{header}{reply}\n"
    if listed:
        markdown += f"\n---\n{NOTES_HEADING}\n" + "".join(f"- {note}\n" for note in listed)
    return Explanation(subject.name, markdown, notes, outlined, draft)


def explain_in_workspace(run: Run, workspace: WorkspaceContext, path: str, text: str,
                         language: str, line: int, character: int, *, scope: str = "function",
                         selection: tuple[int, int] | None = None) -> Explanation:
    """`explain` as both front doors ask it, for the file at `path` (absolute): with the related
    code the workspace's index finds, and checked against the facts it holds."""
    related = related_for(workspace, path, text, line, run.engine)
    return explain(run, text, language, line, character, related,
                   path=workspace.prompt_path(path), scope=scope, selection=selection,
                   grounding=grounding_in(workspace, path, text, language, related))


def _corrected(run: Run, prompt: str, draft: str, facts: Grounding) -> tuple[str, list[str]]:
    """The draft with each sentence the index contradicts rewritten by the model, told why,
    or removed when the rewrite is contradicted too; and the notes for the panel, each saying
    what became of its sentence. The rewrite is a follow-up to the explain prompt, so the
    engine's cache already holds all but the question."""
    flagged = flagged_sentences(draft, facts)
    examples = "\n".join(CODE_BLOCK.findall(draft))  # names the answer's own code defines
    cuts: list[tuple[int, int, str]] = []
    listed: list[str] = []
    for sentence in flagged[:MAX_CORRECTED_SENTENCES]:
        question = (f"The workspace index contradicts this sentence of your answer:\n\n"
                    f"{sentence.text}\n\n{' '.join(sentence.notes)}\n\nWrite that one sentence "
                    f"again so that it is true: name only the callers the facts list and "
                    f"identifiers from the code shown. Reply with the sentence alone, or with "
                    f"the single word {DROP_WORD} if nothing true is left to say.")
        rewrite = _one_sentence(run.ask(question, CORRECTION_MAX_TOKENS,
                                        earlier=[(prompt, draft)]))
        bounded = 0 < len(rewrite) <= 2 * len(sentence.text) + 80
        if bounded and not check_explanation(rewrite, facts, examples):
            cuts.append((sentence.start, sentence.end, rewrite))
            listed.append(f"{' '.join(sentence.notes)} Rewritten; it read: “{sentence.text}”")
        else:
            cuts.append((sentence.start, sentence.end, ""))
            listed.append(f"{' '.join(sentence.notes)} Removed: “{sentence.text}”")
    reply = draft
    for start, end, new in reversed(cuts):
        reply = _replaced(reply, start, end, new)
    reply = reply.strip() or ALL_CONTRADICTED
    # Notes the corrected sentences do not cover (beyond the limit, or across sentences).
    covered = {note for sentence in flagged[:MAX_CORRECTED_SENTENCES] for note in sentence.notes}
    listed += [note for note in check_explanation(reply, facts) if note not in covered]
    return reply, listed


def _replaced(text: str, start: int, end: int, new: str) -> str:
    """`text` with the sentence text[start:end] replaced by `new`; a removed sentence takes
    the space beside it along, and a line left with nothing but its list marker goes."""
    if new:
        return text[:start] + new + text[end:]
    end += len(text[end:]) - len(text[end:].lstrip(" \t"))
    if end == len(text) or text[end] == "\n":  # the line's last sentence: the space before it
        start = len(text[:start].rstrip(" \t"))
    first = text.rfind("\n", 0, start) + 1
    last = text.find("\n", end) if "\n" in text[end:] else len(text)
    if not re.fullmatch(r"\s*(?:[-*+]|\d+[.)]|#+|>)?\s*", text[first:start] + text[end:last]):
        return text[:start] + text[end:]
    before, after = text[:first], text[last + 1:]
    if before.endswith("\n\n") and (after.startswith("\n") or not after):
        before = before[:-1]  # a paragraph went: one blank line between its neighbours
    return before + after


def _one_sentence(reply: str) -> str:
    """The model's rewritten sentence without quotes or a label around it; "" for the drop
    word, an empty reply or one that is more than a line of prose."""
    text = reply.strip().strip("“”\"'> ").strip()
    text = re.sub(r"^(?:\*\*)?(?:rewritten|corrected|revised)?\s*sentence:?(?:\*\*)?\s*", "",
                  text, flags=re.IGNORECASE).strip("“”\"' ")
    if not text or text.rstrip(".").upper() == DROP_WORD or "\n" in text or "```" in text:
        return ""
    return text


def _prompt(subject: Subject, shown: str, text: str, language: str, related: str,
            facts: Grounding | None, outlined: bool) -> str:
    name = LANGUAGE_NAMES.get(language, language)
    what = {"function": "function", "class": "class", "file": "file",
            "selection": "code"}[subject.kind]
    ask = (f"Explain this {name} {what} to a developer who is reading it: what it is for, its "
           f"inputs and result, side effects, and any edge case or bug you notice. Answer in "
           f"Markdown, in under 200 words.")
    parts = [ask, ""]
    if related and facts is not None:
        # Not "and its callers": the packer also brings code that only shares names with it,
        # and the 1.5B named such a function (click's `_nullpager`) as the caller.
        parts.append(f"Related code from the workspace, for context. It may hold code that "
                     f"does not call the {what}: its callers are only those the facts below "
                     f"list.\n\n{related}\n")
    elif related:
        parts.append(f"Related code from the workspace (what the {what} uses, and its "
                     f"callers):\n\n{related}\n")
    header = "\n".join(imports(text, language))
    if header and subject.kind != "file":
        parts.append(f"The file's imports:\n```{language}\n{header}\n```\n")
    if facts is not None:
        parts.append(facts.prompt_facts() + "\n")
    label = f"The {what}" + (" in outline (deeper lines elided)" if outlined else "")
    parts.append(f"{label}:\n```{language}\n{_dedent(shown)}\n```")
    return "\n".join(parts)


def code_within(code: str, count_tokens: Callable[[str], int], budget_tokens: int
                ) -> tuple[str, bool]:
    """`code` itself when it fits `budget_tokens`, else its outline: the lines at the two
    outermost indentation levels (a function's signature and top-level statements, a file's
    definitions and their first level), deeper ones elided, cut to what fits."""
    if count_tokens(code) <= budget_tokens:
        return code, False
    lines = code.split("\n")
    levels = sorted({_indent(line) for line in lines if line.strip()})
    deepest = levels[1] if len(levels) > 1 else levels[0] if levels else 0
    kept: list[str] = []
    for line in lines:
        if not line.strip() or _indent(line) <= deepest:
            kept.append(line)
        elif not kept or kept[-1].strip() not in ("...", "…"):
            kept.append(" " * (deepest + 4) + "...")
    low, high = 1, len(kept)
    while low < high:  # the most outline lines that fit
        middle = (low + high + 1) // 2
        if count_tokens("\n".join(kept[:middle])) <= budget_tokens:
            low = middle
        else:
            high = middle - 1
    return "\n".join(kept[:low]), True


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def _dedent(code: str) -> str:
    return textwrap.dedent(code)


def _markdown_pieces(header: str, on_text: Callable[[str], None] | None
                     ) -> Callable[[str], None] | None:
    """Turns the reply's pieces into pieces of the explanation `explain` returns: the header
    comes with the first words, and blank space at either end of the reply is held back, as
    the returned Markdown strips it."""
    if on_text is None:
        return None
    reply, sent = "", 0

    def on_reply_piece(piece: str) -> None:
        nonlocal reply, sent
        reply += piece
        if not (body := reply.strip()):
            return
        markdown = header + body
        if len(markdown) > sent:
            on_text(markdown[sent:])
            sent = len(markdown)

    return on_reply_piece
