"""Training examples in exactly the prompt format inference uses (model/prompts.py).

A FIM example removes a middle cut at a syntax boundary (a statement, a block, a function body)
and asks for it back; a function example keeps signature and docstring and asks for the body.
Both are built with `fim_request_at` + `fim_prompt_tokens`, so the model trains on the prompts
it will see; the loss covers only the middle and the end-of-text token after it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from analyzers.completion_cut import CompletionPlan, plan_for_request
from analyzers.functions import functions
from analyzers.syntax import parse
from model.prompts import END_OF_TEXT, FimRequest, Tokenizer, fim_prompt_tokens, fim_request_at
from training.mine import SourceFile

MAX_SEQUENCE_TOKENS = 1024
MAX_MIDDLE_TOKENS = 256
MIN_MIDDLE_CHARS = 8
# Examples grow with a file's length, so a long file is covered as densely as a short one: a
# fixed few per file left most of a repository unseen and repeated the rest epoch after epoch,
# which memorized the training files (losses of 0.03) and made held-out perplexity worse.
FIM_LINES_PER_EXAMPLE = 25
FUNCTION_LINES_PER_EXAMPLE = 50
MIN_FIM_EXAMPLES_PER_FILE = 4
MIN_FUNCTION_EXAMPLES_PER_FILE = 2
IGNORE_INDEX = -100
# Syntax nodes whose text makes a good middle: whole statements and blocks.
STATEMENT_SUFFIXES = ("_statement", "_definition", "_declaration")
BLOCK_TYPES = frozenset({"block", "statement_block", "class_body"})


@dataclass(frozen=True)
class Cut:
    """A middle removed from a source: characters [start, end) of its text."""

    start: int
    end: int
    kind: str  # "statement" | "block" | "function body"


@dataclass(frozen=True)
class Example:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX on the prompt
    kind: str
    path: str
    # How the editor would cut and clean a completion here: the evaluation judges what the
    # user would be shown, not the model's raw text (which runs on past the middle).
    plan: CompletionPlan | None = field(default=None, compare=False, repr=False)

def fim_parts(text: str, cut: Cut, *, repo_name: str, path: str,
              prefix_lines: int, suffix_lines: int) -> tuple[FimRequest, str]:
    """The inference request at the cut's start in the text without the middle, and the
    completion the model should produce there (held-back blanks + middle)."""
    document = text[:cut.start] + text[cut.end:]
    line = document.count("\n", 0, cut.start)
    character = cut.start - (document.rfind("\n", 0, cut.start) + 1)
    request = fim_request_at(document, line, character, repo_name=repo_name, path=path,
                             prefix_lines=prefix_lines, suffix_lines=suffix_lines)
    return request, request.held_back + text[cut.start:cut.end]


def syntax_cuts(text: str, language: str) -> list[Cut]:
    """Every statement and block in the file, as character ranges."""
    source = text.encode()
    to_char = _char_offsets(text)
    cuts = []
    stack = [parse(text, language).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.has_error:
            continue
        if node.type in BLOCK_TYPES:
            kind = "block"
        elif node.type.endswith(STATEMENT_SUFFIXES) or node.type == "expression_statement":
            kind = "statement"
        else:
            continue
        if node.end_byte - node.start_byte >= MIN_MIDDLE_CHARS and node.start_byte < len(source):
            cuts.append(Cut(to_char[node.start_byte], to_char[node.end_byte], kind))
    return sorted(cuts, key=lambda cut: (cut.start, cut.end))


def function_body_cuts(text: str, language: str) -> list[Cut]:
    """Each function's body after its signature and docstring."""
    to_char = _char_offsets(text)
    cuts = []
    for span in functions(text, language):
        start = to_char[span.body_start_byte]
        end = to_char[span.end_byte]
        if span.docstring is not None and language == "python":
            start = _after_docstring(text, start, end)
        elif text[start:start + 1] == "{" and text[end - 1:end] == "}":
            # Braces stay in the prompt: the body is what lies between them.
            start, end = start + 1, end - 1
            if text[start:start + 1] == "\n":
                start += 1
        if end - start >= MIN_MIDDLE_CHARS:
            cuts.append(Cut(start, end, "function body"))
    return cuts


def examples_for_file(source: SourceFile, tokenizer: Tokenizer, rng: random.Random,
                      max_tokens: int = MAX_SEQUENCE_TOKENS) -> list[Example]:
    """FIM and function-body examples from one file, as many as its length calls for (at least
    a few), each at most `max_tokens` long."""
    statements = syntax_cuts(source.text, source.language)
    bodies = function_body_cuts(source.text, source.language)
    lines = source.text.count("\n") + 1
    fim = max(MIN_FIM_EXAMPLES_PER_FILE, lines // FIM_LINES_PER_EXAMPLE)
    function = max(MIN_FUNCTION_EXAMPLES_PER_FILE, lines // FUNCTION_LINES_PER_EXAMPLE)
    chosen = (rng.sample(statements, min(fim, len(statements)))
              + rng.sample(bodies, min(function, len(bodies))))
    built = (example_for_cut(source, cut, tokenizer, max_tokens) for cut in chosen)
    return [example for example in built if example is not None]


def example_for_cut(source: SourceFile, cut: Cut, tokenizer: Tokenizer,
                    max_tokens: int = MAX_SEQUENCE_TOKENS) -> Example | None:
    """The tokens of one example; context lines are dropped until it fits `max_tokens`."""
    prefix_lines, suffix_lines = 256, 64
    while True:
        request, completion = fim_parts(source.text, cut, repo_name=source.repo,
                                        path=source.path, prefix_lines=prefix_lines,
                                        suffix_lines=suffix_lines)
        target = [*tokenizer.tokenize(completion), tokenizer.special_token(END_OF_TEXT)]
        if len(target) > MAX_MIDDLE_TOKENS + 1:
            return None
        prompt = fim_prompt_tokens(request, tokenizer)
        overflow = len(prompt) + len(target) - max_tokens
        if overflow <= 0:
            plan = plan_for_request(request, document=source.text[:cut.start]
                                    + source.text[cut.end:], offset=cut.start,
                                    language=source.language)
            return Example(tuple(prompt + target),
                           tuple([IGNORE_INDEX] * len(prompt) + target), cut.kind, source.path,
                           plan)
        if prefix_lines <= 1 and suffix_lines <= 1:
            return None
        # Shrink the larger side by about the lines the overflow needs (≈ 10 tokens a line).
        lines = max(1, overflow // 10)
        if prefix_lines >= suffix_lines * 2:
            prefix_lines = max(1, prefix_lines - lines)
        else:
            suffix_lines = max(1, suffix_lines - lines)


def build_examples(sources: tuple[SourceFile, ...], tokenizer: Tokenizer, seed: int = 0,
                   max_tokens: int = MAX_SEQUENCE_TOKENS) -> list[Example]:
    """Examples from every file, shuffled reproducibly."""
    rng = random.Random(seed)
    examples = [example for source in sources
                for example in examples_for_file(source, tokenizer, rng, max_tokens)]
    rng.shuffle(examples)
    return examples


def iterate_forever(examples: list[Example], seed: int) -> Iterator[Example]:
    """Epoch after epoch, each in a fresh order fixed by `seed`."""
    epoch = 0
    while True:
        order = list(range(len(examples)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        for index in order:
            yield examples[index]
        epoch += 1


def _after_docstring(text: str, body_start: int, end: int) -> int:
    """Where the body continues after a docstring statement (the next line's start)."""
    quote = text[body_start:body_start + 3]
    if quote not in ('"""', "'''"):
        return body_start
    closing = text.find(quote, body_start + 3, end)
    if closing < 0:
        return body_start
    newline = text.find("\n", closing + 3, end)
    return end if newline < 0 else newline + 1


def _char_offsets(text: str) -> list[int]:
    """Character index of each UTF-8 byte offset (and of the end)."""
    offsets = []
    for index, character in enumerate(text):
        offsets.extend([index] * len(character.encode()))
    offsets.append(len(text))
    return offsets


class GgufTokenizer:
    """The model's own tokenizer, read by llama.cpp from the GGUF (vocabulary only): the ids
    are the ones the engine produces at inference."""

    def __init__(self, gguf_path) -> None:
        import llama_cpp

        self._llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
        self._special: dict[str, int] = {}

    def tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        return self._llm.tokenize(text.encode(), add_bos=False, special=False)

    def special_token(self, name: str) -> int:
        if name not in self._special:
            ids = self._llm.tokenize(name.encode(), add_bos=False, special=True)
            if len(ids) != 1:
                raise ValueError(f"the model has no special token {name}")
            self._special[name] = ids[0]
        return self._special[name]

    def detokenize(self, tokens) -> str:
        return self._llm.detokenize(list(tokens), special=True).decode(errors="replace")
