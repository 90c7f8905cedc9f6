"""The workspace context: one index per workspace folder, the ring buffer of recently edited
and viewed code, and the packed context that completion and actions ask for.

The files the user's ignore rules name (`.smallcoderignore`, `smallcoder.exclude`) get no
completion, stay out of the index and never enter a prompt as context.
The server calls in with document events (cheap: the text is only remembered); parsing happens
in worker threads when a feature needs the context, or on save.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from analyzers.completion_cut import SYNTAX_CHECK_MAX_CHARACTERS
from analyzers.definitions import definitions
from analyzers.ignore import IGNORE_FILE_NAME, IgnoreRules, rules_from_patterns, workspace_rules
from analyzers.index import WorkspaceIndex
from analyzers.jedi_resolver import jedi_resolver
from analyzers.packer import RecentChunks, Snippet, Target, pack
from analyzers.syntax import language_for_path
from model.engine import Engine
from model.home import smallcoder_home
from model.prompts import ContextChunk, fim_window

# Cross-file context for inline completion: the default of
# smallcoder.inlineCompletions.contextTokens in server/settings.py's table.
DEFAULT_COMPLETION_CONTEXT_TOKENS = 1024
# Callees, types and callers for explain and refactor.
ACTION_CONTEXT_TOKENS = 2048
# Kinds of snippets an action prompt does not repeat: it shows the function and imports itself.
ACTION_SKIPS = frozenset({"target", "header"})


@dataclass(frozen=True)
class _CompletionMemo:
    """The chunks last packed for a document and scope: reused while the user types in that
    scope, so the prompt head (and the engine's KV cache) stays the same."""

    key: tuple[str, int, int, int]
    chunks: tuple[ContextChunk, ...]


class WorkspaceContext:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home
        self.recent = RecentChunks()
        self._indexes: dict[Path, WorkspaceIndex] = {}
        # Folders asked for, indexed or not yet: a file's name in prompts must not change
        # when its folder's index is ready (that would move the prompt head, and the KV cache).
        self._roots: set[Path] = set()
        self._pending: dict[str, str] = {}  # path → newest text not yet in the index
        self._generation = 0  # bumped whenever the index changes in a way completion must see
        self._memo: _CompletionMemo | None = None
        self._lock = threading.Lock()
        self._exclude: tuple[str, ...] = ()
        self._rules: dict[Path, IgnoreRules] = {}  # by workspace folder
        self._loose_rules = rules_from_patterns([])  # for files outside every folder
        self._reported: set[str] = set()
        self.folders_requested = False
        self.indexing: list[asyncio.Future] = []

    # ------------------------------------------------------------ folders and documents

    def add_folder(self, root: Path) -> None:
        """A workspace folder that is being indexed: its files are named relative to it."""
        rules = workspace_rules(root.resolve(), self._exclude)
        with self._lock:
            self._roots.add(root.resolve())
            self._rules[root.resolve()] = rules

    def open_folder(self, root: Path) -> WorkspaceIndex:
        """Index a workspace folder (blocking: call it from a worker thread)."""
        self.add_folder(root)
        index = WorkspaceIndex.open(root, self.home if self.home is not None else
                                    smallcoder_home(), self._rules[root.resolve()])
        with self._lock:
            self._indexes[index.root] = index
            self._generation += 1
        return index

    def close_folder(self, root: Path) -> None:
        with self._lock:
            self._indexes.pop(root.resolve(), None)
            self._roots.discard(root.resolve())
            self._rules.pop(root.resolve(), None)

    # ------------------------------------------------------------ what the user keeps away

    def set_exclude(self, patterns: tuple[str, ...]) -> None:
        """New `smallcoder.exclude` patterns: they hold for `ignored` at once, for the indexes
        after `refresh_indexes`."""
        self._exclude = patterns
        self._loose_rules = rules_from_patterns((p, "smallcoder.exclude") for p in patterns)
        with self._lock:
            roots = list(self._roots)
        for root in roots:
            rules = workspace_rules(root, patterns)
            with self._lock:
                self._rules[root] = rules

    def refresh_indexes(self) -> None:
        """Bring every index to its folder's current rules (blocking: call it from a worker)."""
        with self._lock:
            pairs = [(index, self._rules.get(root)) for root, index in self._indexes.items()]
        for index, rules in pairs:
            if rules is not None and index.rules is not rules:
                index.set_rules(rules)
        with self._lock:
            self._generation += 1

    def ignored(self, path: str) -> bool:
        """Whether the user's rules keep `path` away from SmallCoder."""
        root = self._root_of(path)
        if root is None:
            return self._loose_rules.ignores(Path(path).as_posix().lstrip("/"))
        rules = self._rules.get(root, self._loose_rules)
        return rules.ignores(Path(path).resolve().relative_to(root).as_posix())

    def new_problems(self) -> list[str]:
        """Unreadable ignore patterns not reported yet: each is reported once."""
        with self._lock:
            found = [problem for rules in (*self._rules.values(), self._loose_rules)
                     for problem in rules.problems]
            fresh = [problem for problem in dict.fromkeys(found) if problem not in self._reported]
            self._reported.update(fresh)
        return fresh

    def _reload_rules(self, root: Path) -> None:
        rules = workspace_rules(root, self._exclude)
        with self._lock:
            self._rules[root] = rules
            index = self._indexes.get(root)
        if index is not None:
            index.set_rules(rules)
        with self._lock:
            self._generation += 1

    def document_changed(self, path: str, text: str, line: int | None = None) -> None:
        """didOpen / didChange: remember the text (and the edited lines for the ring buffer)."""
        if self.ignored(path):
            return
        with self._lock:
            self._pending[path] = text
        self.recent.note(self.prompt_path(path), text, 0 if line is None else line)

    def document_saved(self, path: str, text: str | None) -> None:
        if text is not None:
            self.document_changed(path, text)
        self._flush()
        with self._lock:
            self._generation += 1

    def document_closed(self, path: str) -> None:
        with self._lock:
            self._pending.pop(path, None)
        index = self.index_for(path)
        if index is not None:
            index.close_document(path)

    def files_changed(self, paths: list[str]) -> None:
        """Files created, changed or deleted on disk (workspace/didChangeWatchedFiles)."""
        for path in paths:
            root = Path(path).resolve().parent
            if Path(path).name == IGNORE_FILE_NAME and root in self._roots:
                self._reload_rules(root)
                continue
            index = self.index_for(path)
            if index is not None:
                index.file_changed(path)
        with self._lock:
            self._generation += 1

    def index_for(self, path: str) -> WorkspaceIndex | None:
        """The index of the innermost workspace folder holding `path`."""
        with self._lock:
            indexes = list(self._indexes.values())
        holding = [index for index in indexes if index.relative(path) is not None]
        return max(holding, key=lambda index: len(index.root.parts), default=None)

    # ------------------------------------------------------------ context for features

    def completion_context(self, path: str, text: str, line: int, budget_tokens: int,
                           count_tokens: Callable[[str], int]) -> tuple[ContextChunk, ...]:
        """Chunks for a completion at `line` from other files and from the parts of this one
        that the FIM prompt does not hold, the same ones while the cursor stays in one scope
        and nothing was saved (the prompt head must not move as the user types)."""
        if budget_tokens <= 0 or len(text) > SYNTAX_CHECK_MAX_CHARACTERS:
            return ()  # a data dump the size of a novel: no parsing on the hot path
        index = self.index_for(path)
        name = (index.relative(path) if index is not None else None) or self.prompt_path(path)
        shown = fim_window(text.count("\n") + 1, line)
        # The window's first line moves in strides; its last moves with the cursor, and a chunk
        # it reaches while the scope stays the same is shown twice, which only costs tokens.
        key = (path, _scope_start(text, path, line), shown[0], budget_tokens, self._generation)
        memo = self._memo
        if memo is not None and memo.key == key:
            return memo.chunks
        self._flush()
        result = pack(Target(name, text, line, kind="cursor", shown=shown),
                      budget_tokens, count_tokens, index=index, recent=self.recent)
        chunks = tuple(ContextChunk(s.path, s.text) for s in result.snippets)
        self._memo = _CompletionMemo(key, chunks)
        return chunks

    def action_context(self, path: str, text: str, line: int,
                       count_tokens: Callable[[str], int],
                       budget_tokens: int = ACTION_CONTEXT_TOKENS) -> tuple[Snippet, ...]:
        """Callees, types and callers of the function at `line` (jedi for Python)."""
        self._flush()
        index = self.index_for(path)
        name = (index.relative(path) if index is not None else None) or self.prompt_path(path)
        resolve = jedi_resolver(index.root) if index is not None else None
        result = pack(Target(name, text, line, kind="function"), budget_tokens, count_tokens,
                      index=index, recent=None, resolve=resolve)
        return tuple(s for s in result.snippets if s.kind not in ACTION_SKIPS)

    def folder_of(self, path: str) -> Path | None:
        """The innermost workspace folder holding `path`, indexed yet or not."""
        return self._root_of(path)

    def _root_of(self, path: str) -> Path | None:
        """The innermost workspace folder holding `path`, indexed yet or not."""
        candidate = Path(path)
        if not candidate.is_absolute():
            return None
        candidate = candidate.resolve()
        with self._lock:
            roots = [root for root in self._roots if candidate.is_relative_to(root)]
        return max(roots, key=lambda root: len(root.parts), default=None)

    def prompt_path(self, path: str) -> str:
        """How a file is named in prompts: relative to the innermost workspace folder that
        holds it (indexed yet or not), else by its bare name."""
        candidate = Path(path)
        if not candidate.is_absolute():
            return candidate.as_posix()
        root = self._root_of(path)
        if root is None:
            return candidate.resolve().name
        return candidate.resolve().relative_to(root).as_posix()

    def repo_name(self, path: str) -> str:
        """The `<|repo_name|>` of a file: its innermost workspace folder's name, else its git
        root's or folder's (`repo_name_for`)."""
        candidate = Path(path).resolve()
        with self._lock:
            roots = [root for root in self._roots if candidate.is_relative_to(root)]
        if roots:
            return max(roots, key=lambda root: len(root.parts)).name
        return repo_name_for(candidate)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for path, text in pending.items():
            index = self.index_for(path)
            if index is not None:
                index.update_document(path, text)


def repo_name_for(path: Path) -> str:
    """The name shown to the model as `<|repo_name|>`: the enclosing git root, else the folder."""
    for folder in [path.parent, *path.parent.parents]:
        if (folder / ".git").exists():
            return folder.name
    return path.parent.name


def related_code(snippets: tuple[Snippet, ...]) -> str:
    """Snippets as Markdown for an instruct prompt, each under its path and reason."""
    return "\n\n".join(f"`{s.path}` lines {s.start_line + 1}-{s.end_line + 1} ({s.reason}):\n"
                       f"```\n{s.text}\n```" for s in snippets)


def _scope_start(text: str, path: str, line: int) -> int:
    """The first line of the innermost definition around `line`, or -1 outside any."""
    language = language_for_path(path)
    if language is None:
        return -1
    around = [d.start_line for d in definitions(text, language)
              if d.start_line <= line <= d.end_line]
    return around[-1] if around else -1


def related_for(workspace: WorkspaceContext, path: str, text: str, line: int,
                engine: Engine) -> str:
    """The related code an explain or refactor prompt shows (Markdown; "" when none)."""
    return related_code(workspace.action_context(path, text, line, engine.count_tokens))
