"""Prompt formats: Qwen2.5-Coder's fill-in-the-middle layout, built token by token.

The layout keeps the prompt head stable while the user types on a line, so that the engine can
reuse its KV cache: like llama.vscode, the text typed so far on the cursor's line goes *after*
`<|fim_middle|>`, and the prefix (up to the previous line) and the suffix do not change.

    <|repo_name|>{repo}\n
    <|file_sep|>{path}\n{text}\n          (one per cross-file context chunk, most stable first)
    <|file_sep|>{path}\n
    <|fim_prefix|>{lines before the cursor's line}
    <|fim_suffix|>{rest of the cursor's line and the lines after}
    <|fim_middle|>{cursor's line up to the cursor, trailing blanks held back}

Trailing spaces and tabs typed before the cursor are held back from the prompt: a lone
indentation token is not how the model's tokenizer would split `    if`, and keeping it makes
the model emit one space too many. The completion must then start with the held-back blanks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_PAD = "<|fim_pad|>"
REPO_NAME = "<|repo_name|>"
FILE_SEP = "<|file_sep|>"
END_OF_TEXT = "<|endoftext|>"
FIM_TOKENS = (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, FIM_PAD, REPO_NAME, FILE_SEP)

# How much of the current file goes into the prompt around the cursor (llama.vscode's defaults).
PREFIX_LINES = 256
SUFFIX_LINES = 64
# The prefix starts on a multiple of this many lines, so moving the cursor down a line does not
# move the start of the prompt (and throw away the whole KV cache) in a long file.
PREFIX_STRIDE_LINES = 64


class Tokenizer(Protocol):
    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain text: no BOS, special-token names are not parsed."""
        ...

    def special_token(self, name: str) -> int:
        """The id of a special token such as `<|fim_prefix|>`."""
        ...


@dataclass(frozen=True)
class ContextChunk:
    """Text from another file (or another part of this one) shown to the model first."""

    path: str
    text: str


@dataclass(frozen=True)
class FimRequest:
    repo_name: str
    path: str
    prefix: str
    suffix: str
    line_prefix: str
    held_back: str = ""
    context: tuple[ContextChunk, ...] = ()


def fim_request_at(
    text: str,
    line: int,
    character: int,
    *,
    repo_name: str,
    path: str,
    context: tuple[ContextChunk, ...] = (),
    prefix_lines: int = PREFIX_LINES,
    suffix_lines: int = SUFFIX_LINES,
    stride_lines: int = PREFIX_STRIDE_LINES,
) -> FimRequest:
    """Split a document at a 0-based (line, character) cursor into the FIM parts."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        raise ValueError(f"line {line + 1} is outside the file ({len(lines)} lines)")
    current = lines[line]
    if not 0 <= character <= len(current):
        raise ValueError(f"column {character + 1} is outside line {line + 1} "
                         f"({len(current)} characters)")
    first, last = fim_window(len(lines), line, prefix_lines, suffix_lines, stride_lines)
    before = lines[first:line]
    after = lines[line + 1:last + 1]
    prefix = "".join(f"{row}\n" for row in before)
    suffix = "\n".join([current[character:], *after])
    typed = current[:character]
    line_prefix = typed.rstrip(" \t")
    return FimRequest(repo_name, path, prefix, suffix, line_prefix, typed[len(line_prefix):],
                      context)


def fim_window(line_count: int, line: int, prefix_lines: int = PREFIX_LINES,
               suffix_lines: int = SUFFIX_LINES,
               stride_lines: int = PREFIX_STRIDE_LINES) -> tuple[int, int]:
    """The 0-based first and last lines of the file that the FIM prompt of a cursor on `line`
    holds: what the context packer need not show again."""
    first = max(0, line - prefix_lines)
    return first - first % stride_lines, min(line_count - 1, line + suffix_lines)


def fim_prompt_tokens(request: FimRequest, tokenizer: Tokenizer) -> list[int]:
    """The exact token sequence for `request`; special tokens are never read from user text."""
    special = tokenizer.special_token
    tokens = [special(REPO_NAME), *tokenizer.tokenize(f"{request.repo_name}\n")]
    for chunk in request.context:
        tokens += [special(FILE_SEP), *tokenizer.tokenize(f"{chunk.path}\n{chunk.text}\n")]
    tokens += [special(FILE_SEP), *tokenizer.tokenize(f"{request.path}\n")]
    tokens += [special(FIM_PREFIX), *tokenizer.tokenize(request.prefix)]
    tokens += [special(FIM_SUFFIX), *tokenizer.tokenize(request.suffix)]
    tokens += [special(FIM_MIDDLE), *tokenizer.tokenize(request.line_prefix)]
    return tokens


def fim_stop_tokens() -> tuple[str, ...]:
    """Special tokens after which a FIM completion is over."""
    return (END_OF_TEXT, FILE_SEP, FIM_PAD, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, REPO_NAME)
