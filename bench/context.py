"""Cross-file completion: does the packer's context make the model write the real helper from
the next file? And how fast are the index and the packer?

Quality. The set is built from the source of pure-Python packages of different authors that
pip installs (pinned, `--no-deps --target` into $SMALLCODER_HOME/bench/context-packages, outside
the repository and the project's venv). A case is a line whose key identifier (its first name
that is defined in another file of the same package, and not in its own file) is hidden: the
line is emptied after its indentation and the model completes it there. The identifier must
come from the package through the file's imports (`from .x import name`, or `module.name` for
an imported sibling module): a local variable that shares a name with some definition elsewhere
would test nothing cross-file. Cases are chosen by a
hash of package, path and line, so the same packages always give the same set. Three arms, same
generations settings, same budget of context tokens: no cross-file context (prefix/suffix only);
a llama.vscode-style ring buffer of chunks seen recently (64-line chunks from the modules the
file imports, as if the user had opened them); and the packer (`pack`, cursor target, other
files and the parts of this one outside the FIM window, as inline completion uses it). Exact
match (first line, whitespace-trimmed) and edit similarity (difflib ratio, in percent). On
demand, a fourth arm, `reference`: the packer querying with the hidden line itself (an upper
bound, as CrossCodeEval's retrieval with reference).

Speed. Index build for packages of ≥ 500 and ≥ 1,000 files (django, sympy), packing p50/p95 at
1k/4k/8k tokens with the model's tokenizer counting and at 1k right after a one-character edit,
and the index's memory (tracemalloc) and store size.

Run: .venv/bin/python bench/context.py [--models NAME ...] [--limit N]
     [--speed-only | --quality-only | --recall-only] [--resume [FILE ...]] [--arms ARM ...]
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import itertools
import json
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from analyzers import packer
from analyzers.definitions import imports, references
from analyzers.index import WorkspaceIndex, index_store_path
from analyzers.packer import RecentChunks, Target, pack
from analyzers.syntax import parse
from assist.completion import CompletionSettings, complete_at
from model import registry
from model.home import smallcoder_home
from model.prompts import (
    PREFIX_LINES,
    SUFFIX_LINES,
    ContextChunk,
    fim_prompt_tokens,
    fim_window,
)

if TYPE_CHECKING:
    from analyzers.completion_cut import CompletionPlan
    from model.engine import Engine
    from model.tokenizer import VocabularyTokenizer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PARTIAL = RESULTS / "context-partial.json"
# Pure-Python packages by different authors; pinned so the case set never changes.
QUALITY_PACKAGES = {
    "click": "8.5.1",        # Pallets
    "rich": "15.0.0",        # Will McGugan / Textualize
    "attrs": "26.1.0",       # Hynek Schlawack
    "tomlkit": "0.15.2",     # Sébastien Eustace
    "marshmallow": "4.4.0",  # Steven Loria
    "sqlparse": "0.6.1",     # Andi Albrecht
}
IMPORT_NAMES = {"attrs": "attr"}  # attrs' implementation lives in the `attr` package
# django: the newest that supports Python 3.11 (907 Python files); sympy: over 1,000 files.
SPEED_PACKAGES = {"django": "5.2.19", "sympy": "1.14.0"}
CASES_PER_PACKAGE = 40
CONTEXT_TOKENS = 1024  # the completion default (smallcoder.inlineCompletions.contextTokens)
MAX_TOKENS = 40
RING_CHUNK_LINES = 64  # llama.vscode's ring_chunk_size
RING_CHUNKS = 16  # llama.vscode's ring_n_chunks
SPEED_TARGETS = 200
SPEED_BUDGETS = (1024, 4096, 8192)
# Typing changes the index before the next completion packs: packing at the completion budget
# is also timed right after a one-character edit of the target's file (the edit included).
EDIT_BUDGET = 1024
MIN_LINE_CHARACTERS = 12
MAX_LINE_CHARACTERS = 100
SEED = 20261124
ARMS = ("none", "ring", "packer")
# Not a way the editor could work: the packer's query made with the hidden line itself, as
# CrossCodeEval's "retrieval with reference". How far a perfect guess of what comes next would
# take the packer's retrieval: the ceiling of this approach with this model, not a result.
REFERENCE_ARM = "reference"
# What makes an outcome besides its prompt: the settings, and the code that turns a generation
# into the text the editor inserts. An outcome is resumed only while its model, prompt tokens,
# settings and this code are the same, so a changed packer (or anything else) is measured again
# on just the cases whose prompt it changed, not on the hours of every arm of the 1.5B.
GENERATION_CODE = ("analyzers/completion_cut.py", "model/engine.py", "assist/completion.py")


@dataclass(frozen=True)
class Case:
    package: str
    path: str  # relative to the package folder
    line: int  # 0-based
    expected: str  # the hidden line, stripped
    identifier: str  # its key identifier, defined in another file of the package

    @property
    def name(self) -> str:
        """How results name the case (and how a resumed run recognizes it)."""
        return f"{self.package}/{self.path}:{self.line + 1}"


@dataclass(frozen=True)
class Outcome:
    model: str
    arm: str
    case: str
    exact: bool
    similarity: float
    context_tokens: int
    latency_ms: float
    expected: str
    got: str  # what the editor would insert (first line), for reading the misses
    raw: str  # what the model wrote
    prompt: str = ""  # prompt_key(): the outcome is resumed only while it is the same


def packages_dir() -> Path:
    return smallcoder_home() / "bench" / "context-packages"


def install_packages(packages: dict[str, str]) -> Path:
    """pip install the pinned packages (no dependencies) into the bench-only target folder."""
    target = packages_dir()
    missing = {name: version for name, version in packages.items()
               if not list(target.glob(f"{name.replace('-', '_')}-{version}.dist-info"))}
    if missing:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--upgrade", "--target", str(target),
                        *(f"{name}=={version}" for name, version in missing.items())],
                       check=True)
    return target


# ---------------------------------------------------------------- the case set


def build_cases(package: str, root: Path, index: WorkspaceIndex, limit: int) -> list[Case]:
    """Lines whose key identifier is defined in another file of the package; the `limit`
    with the smallest hashes of (package, path, line)."""
    found: list[tuple[str, Case]] = []
    for entry in index.files():
        if entry.language != "python":
            continue
        text = index.text_of(entry.path) or ""
        own = {d.name for d in entry.definitions}
        skip = _import_rows(text)
        names, modules = _package_imports(text, package)
        lines = text.split("\n")
        first_name: dict[int, str] = {}
        for reference in references(text, "python"):
            if reference.line in first_name or reference.line in skip:
                continue
            if reference.name in own or not _from_package(reference, lines, names, modules):
                continue
            places = index.definitions_named(reference.name)
            if places and all(place.path != entry.path for place in places):
                first_name[reference.line] = reference.name
        for line, name in first_name.items():
            stripped = lines[line].strip()
            if not MIN_LINE_CHARACTERS <= len(stripped) <= MAX_LINE_CHARACTERS:
                continue
            if stripped.startswith(("#", "@", '"', "'")) or line + 1 >= len(lines):
                continue
            key = hashlib.sha256(f"{package}:{entry.path}:{line}".encode()).hexdigest()
            found.append((key, Case(package, entry.path, line, stripped, name)))
    return [case for _, case in sorted(found)[:limit]]


IMPORT_FROM = re.compile(r"from\s+([.\w]+)\s+import\s+(.+)", re.DOTALL)
IMPORT_MODULE = re.compile(r"import\s+([\w.]+)(?:\s+as\s+(\w+))?")


def _package_imports(text: str, package: str) -> tuple[set[str], set[str]]:
    """Names the file imports from its own package, and the local names of package modules."""
    top = IMPORT_NAMES.get(package, package)
    names: set[str] = set()
    modules: set[str] = set()
    for statement in imports(text, "python"):
        statement = " ".join(statement.replace("(", " ").replace(")", " ").split())
        if match := IMPORT_FROM.fullmatch(statement):
            source, imported = match.groups()
            if not (source.startswith(".") or source.split(".")[0] == top):
                continue
            for item in imported.split(","):
                local = item.split(" as ")[-1].strip()
                if local and local != "*":
                    names.add(local)
                    modules.add(local)  # `from . import module` binds a module
        elif match := IMPORT_MODULE.fullmatch(statement):
            dotted, alias = match.groups()
            if dotted.split(".")[0] == top:
                modules.add(alias or dotted)
    return names, modules


def _from_package(reference, lines: list[str], names: set[str], modules: set[str]) -> bool:
    """Whether this use of a name reaches the package through an import of the file."""
    if reference.name in names:
        return True
    before = lines[reference.line][:reference.column]
    return any(before.endswith(f"{module}.") for module in modules)


def _import_rows(text: str) -> set[int]:
    """Lines of import statements: hiding one would test import guessing, not cross-file use."""
    rows: set[int] = set()
    pending = [parse(text, "python").root_node]
    while pending:
        node = pending.pop()
        if node.type in ("import_statement", "import_from_statement", "future_import_statement"):
            rows.update(range(node.start_point.row, node.end_point.row + 1))
        elif node.type in ("module", "block", "if_statement", "try_statement", "else_clause",
                           "except_clause"):
            pending.extend(node.children)
    return rows


def masked(text: str, line: int) -> tuple[str, int]:
    """The file with the line emptied after its indentation, and the cursor's column."""
    lines = text.split("\n")
    indent = lines[line][:len(lines[line]) - len(lines[line].lstrip())]
    lines[line] = indent
    return "\n".join(lines), len(indent)


# ---------------------------------------------------------------- the arms


def ring_buffer_chunks(case: Case, root: Path, text: str, budget_tokens: int,
                       count_tokens) -> tuple[ContextChunk, ...]:
    """llama.vscode-like: random 64-line chunks of the files the user would have opened (the
    package modules this file imports), oldest first, as many as the budget holds."""
    files = _imported_files(case, root, text)
    rng = random.Random(f"{SEED}:{case.package}:{case.path}:{case.line}")
    chunks: list[ContextChunk] = []
    for round_number in range(RING_CHUNKS):
        if not files:
            break
        path = files[round_number % len(files)]
        lines = (root / path).read_text(encoding="utf-8").split("\n")
        start = rng.randrange(max(1, len(lines) - RING_CHUNK_LINES))
        chunks.append(ContextChunk(path, "\n".join(lines[start:start + RING_CHUNK_LINES])))
        if len(chunks) == RING_CHUNKS:
            break
    kept: list[ContextChunk] = []
    used = 0
    for chunk in reversed(chunks):  # the newest chunks are kept when the budget is short
        cost = count_tokens(f"{chunk.path}\n{chunk.text}\n") + 1
        if used + cost > budget_tokens:
            continue
        kept.insert(0, chunk)
        used += cost
    return tuple(kept)


def _imported_files(case: Case, root: Path, text: str) -> list[str]:
    folder = (Path(case.package) / case.path).parent
    found: list[str] = []
    for match in re.finditer(r"^\s*from\s+(\.*)([\w.]*)\s+import|^\s*import\s+([\w.]+)", text,
                             re.MULTILINE):
        dots, module, plain = match.groups()
        if plain:
            parts = plain.split(".")
            base = Path()
        elif dots:
            base = folder
            for _ in range(len(dots) - 1):
                base = base.parent
            parts = module.split(".") if module else []
        else:
            parts = module.split(".")
            base = Path()
        candidate = base.joinpath(*parts) if parts else base
        for option in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            relative = _package_relative(option, case.package)
            if relative is not None and (root / relative).is_file() and relative not in found \
                    and relative != case.path:
                found.append(relative)
    return found


def _package_relative(path: Path, package: str) -> str | None:
    parts = path.parts
    if not parts or parts[0] != package:
        return None
    return Path(*parts[1:]).as_posix()


def packer_chunks(case: Case, index: WorkspaceIndex, text: str, line: int, budget_tokens: int,
                  count_tokens, window: tuple[int, int]) -> tuple[ContextChunk, ...]:
    """As inline completion packs: `window` is what the FIM prompt holds of the file."""
    shown = fim_window(text.count("\n") + 1, line, *window)
    result = pack(Target(case.path, text, line, kind="cursor", shown=shown),
                  budget_tokens, count_tokens, index=index, recent=RecentChunks())
    return tuple(ContextChunk(s.path, s.text) for s in result.snippets)


# ---------------------------------------------------------------- quality


def case_sets(cases_per_package: int, limit: int | None
              ) -> list[tuple[Case, WorkspaceIndex, Path]]:
    """The cases, each with its package's index and folder: the same set every time."""
    target = install_packages(QUALITY_PACKAGES)
    per_package: list[list[tuple[Case, WorkspaceIndex, Path]]] = []
    for package in QUALITY_PACKAGES:
        root = target / IMPORT_NAMES.get(package, package)
        index = WorkspaceIndex(root)
        index.refresh()
        per_package.append([(case, index, root) for case in build_cases(
            package, root, index, cases_per_package)])
    # One case of each package in turn: a run stopped early (the 1.5B takes hours on a slow CPU)
    # has measured as many cases of every package, not the first packages whole. (Hash order
    # would not do: a package with more candidate lines has smaller hashes among its chosen.)
    sets = [item for turn in itertools.zip_longest(*per_package) for item in turn
            if item is not None][:limit]
    print(f"{len(sets)} cases from {', '.join(QUALITY_PACKAGES)}", flush=True)
    return sets


def context_arms(case: Case, index: WorkspaceIndex, root: Path, text: str, budget_tokens: int,
                 count_tokens, window: tuple[int, int], arms: Sequence[str] = ARMS
                 ) -> dict[str, tuple[ContextChunk, ...]]:
    """The context of each arm for `text`, the file with the line hidden; `window` is the FIM
    prompt's lines before and after the cursor."""
    # The index sees the file as the editor has it: without the hidden line.
    index.update_document(str(root / case.path), text)
    try:
        makers = {"none": lambda: (),
                  "ring": lambda: ring_buffer_chunks(case, root, text, budget_tokens,
                                                     count_tokens),
                  "packer": lambda: packer_chunks(case, index, text, case.line, budget_tokens,
                                                  count_tokens, window)}
        contexts = {arm: makers[arm]() for arm in arms if arm != REFERENCE_ARM}
    finally:
        index.close_document(str(root / case.path))
    if REFERENCE_ARM in arms:
        contexts[REFERENCE_ARM] = reference_chunks(case, index, budget_tokens, count_tokens,
                                                   window)
    return contexts


def reference_chunks(case: Case, index: WorkspaceIndex, budget_tokens: int, count_tokens,
                     window: tuple[int, int]) -> tuple[ContextChunk, ...]:
    """The packer told the hidden line: the file as it is on disk (the index is back on it), and
    the lines like it are looked for with the hidden line alone as the query, instead of the
    lines typed before it. Its names are nearest the cursor, so their definitions rank first."""
    query_lines = packer.QUERY_LINES
    packer.QUERY_LINES = 0
    try:
        return packer_chunks(case, index, index.text_of(case.path) or "", case.line,
                             budget_tokens, count_tokens, window)
    finally:
        packer.QUERY_LINES = query_lines


def run_recall(tokenizer_model: str, cases_per_package: int, limit: int | None,
               context_tokens: int, window: tuple[int, int]) -> dict[str, dict[str, float]]:
    """Without a model: how often each arm's context holds the hidden identifier's definition
    (the model can only copy what it is shown), how often it names it at all, how often it holds
    the hidden line itself, and how like the hidden line its likest line is (edit similarity)."""
    from model.tokenizer import VocabularyTokenizer

    tokenizer = VocabularyTokenizer(registry.resolve_model(tokenizer_model))
    found: dict[str, dict[str, int]] = {"ring": {}, "packer": {}}
    sets = case_sets(cases_per_package, limit)
    for case, index, root in sets:
        text, _column = masked(index.text_of(case.path) or "", case.line)
        arms = context_arms(case, index, root, text, context_tokens, tokenizer.count_tokens,
                            window, arms=tuple(found))
        definition = re.compile(rf"^\s*(?:(?:async\s+)?def|class)\s+{re.escape(case.identifier)}"
                                rf"\b|^\s*{re.escape(case.identifier)}\s*(?::[^=\n]*)?=",
                                re.MULTILINE)
        for arm, chunks in arms.items():
            shown = "\n".join(chunk.text for chunk in chunks)
            counts = found[arm]
            counts["defines"] = counts.get("defines", 0) + bool(definition.search(shown))
            counts["names"] = counts.get("names", 0) + bool(
                re.search(rf"\b{re.escape(case.identifier)}\b", shown))
            shown_lines = {line.strip() for line in shown.split("\n")}
            counts["line"] = counts.get("line", 0) + (case.expected in shown_lines)
            counts["likest"] = counts.get("likest", 0) + max(
                (difflib.SequenceMatcher(None, line, case.expected).ratio()
                 for line in shown_lines), default=0.0)
    report = {arm: {key: round(100 * value / max(1, len(sets)), 1)
                    for key, value in counts.items()} for arm, counts in found.items()}
    for arm, shares in report.items():
        print(f"    {arm:<7} n={len(sets):<4} context defines the identifier in "
              f"{shares.get('defines', 0):5.1f}% of cases, names it in "
              f"{shares.get('names', 0):5.1f}%, holds the line in {shares.get('line', 0):5.1f}%;"
              f" likest line {shares.get('likest', 0):5.1f}% similar", flush=True)
    return report


def run_quality(models: list[str], cases_per_package: int, limit: int | None,
                prefix_lines: int, suffix_lines: int, threads: int | None,
                context_tokens: int, resume: Sequence[Path] = (),
                arms: Sequence[str] = ARMS) -> tuple[dict, list[Outcome]]:
    """Every case in each of `arms` with each model: the run's settings and its outcomes. An
    outcome in the `resume` files (partial or results files, later ones first) whose prompt key
    is the one this run makes is kept and not generated again: every prompt is built (packing
    takes about a second a case), only the changed ones meet the model."""
    from assist import completion
    from model.engine import LlamaCppEngine

    # A shorter window than the editor's makes each prompt cheaper on a busy CPU; every arm
    # gets the same window, and the packer still reads the whole file.
    window = completion.Window(prefix_lines, suffix_lines, with_context=True)

    sets = case_sets(cases_per_package, limit)
    run = {"cases_per_package": cases_per_package, "limit": limit, "prefix_lines": prefix_lines,
           "suffix_lines": suffix_lines, "context_tokens": context_tokens, "arms": list(arms)}
    earlier = _resumed(resume)
    outcomes: list[Outcome] = []
    settings = CompletionSettings(max_tokens=MAX_TOKENS, time_budget_ms=60_000, max_lines=1)
    kept = 0
    for name in models:
        engine = LlamaCppEngine(registry.resolve_model(name), context_tokens=8192,
                                threads=threads)
        for number, (case, index, root) in enumerate(sets, start=1):
            text, column = masked(index.text_of(case.path) or "", case.line)
            contexts = context_arms(case, index, root, text, context_tokens,
                                    engine.count_tokens, (prefix_lines, suffix_lines), arms)
            for arm, chunks in contexts.items():
                key = prompt_key(engine, completion.plan_completion(
                    text, case.line, column, path=case.path, repo_name=case.package,
                    settings=settings, context=chunks, window=window), settings)
                if (resumed := earlier.get((engine.name, arm, case.name, key))) is not None:
                    outcomes.append(resumed)
                    kept += 1
                    continue
                started = time.perf_counter()
                generated = complete_at(engine, text, case.line, column, path=case.path,
                                        repo_name=case.package, settings=settings,
                                        context=chunks, window=window)
                got = generated.text.split("\n", 1)[0].strip()
                outcomes.append(Outcome(
                    engine.name, arm, case.name,
                    got == case.expected,
                    100 * difflib.SequenceMatcher(None, got, case.expected).ratio(),
                    sum(engine.count_tokens(f"{c.path}\n{c.text}\n") + 1 for c in chunks),
                    (time.perf_counter() - started) * 1e3, case.expected, got,
                    generated.generation.text, key))
            if number % 5 == 0:
                print(f"  {engine.name}: {number}/{len(sets)} cases "
                      f"({kept} outcomes resumed)", flush=True)
                _print_quality(outcomes)
                # A long run that is stopped keeps what it measured.
                RESULTS.mkdir(parents=True, exist_ok=True)
                PARTIAL.write_text(json.dumps(
                    {"run": run, "quality": [asdict(o) for o in outcomes]}, indent=2))
        del engine
    print(f"{kept} of {len(outcomes)} outcomes resumed, the rest generated", flush=True)
    return run, outcomes


def prompt_key(engine: Engine, plan: CompletionPlan, settings: CompletionSettings) -> str:
    """What an outcome depends on: the model, the prompt's tokens, the generation settings and
    the code that turns a generation into the inserted text (GENERATION_CODE)."""
    digest = hashlib.sha256(json.dumps([engine.name, asdict(settings)]).encode())
    for name in GENERATION_CODE:
        digest.update((ROOT / name).read_bytes())
    digest.update(json.dumps(fim_prompt_tokens(plan.request, engine)).encode())
    return digest.hexdigest()[:16]


def _resumed(paths: Sequence[Path]) -> dict[tuple[str, str, str, str], Outcome]:
    """The outcomes in `paths` by (model, arm, case, prompt key); the first file wins.
    Outcomes without a key (older runs) are not kept. Says what it read."""
    kept: dict[tuple[str, str, str, str], Outcome] = {}
    for path in paths:
        try:
            rows = json.loads(path.read_text())["quality"]
            outcomes = [Outcome(**row) for row in rows]
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"not resuming from {path}: not a readable run ({error})", flush=True)
            continue
        keyed = [o for o in outcomes if o.prompt]
        for outcome in keyed:
            kept.setdefault((outcome.model, outcome.arm, outcome.case, outcome.prompt), outcome)
        print(f"resuming from {path}: {len(keyed)} of {len(outcomes)} outcomes have a prompt "
              "key; each is kept while this run makes the same prompt", flush=True)
    return kept


def _resume_files(resume: list[Path] | None) -> list[Path]:
    if resume is None:
        return []
    return resume or [PARTIAL]


def _print_quality(outcomes: list[Outcome]) -> None:
    rows: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in outcomes:
        rows.setdefault((outcome.model, outcome.arm), []).append(outcome)
    for (model, arm), group in rows.items():
        exact = 100 * sum(o.exact for o in group) / len(group)
        similarity = statistics.mean(o.similarity for o in group)
        tokens = statistics.mean(o.context_tokens for o in group)
        latency = statistics.median(o.latency_ms for o in group)
        print(f"    {model:<38} {arm:<7} n={len(group):<4} exact {exact:5.1f}%  "
              f"edit sim {similarity:5.1f}  context {tokens:6.0f} tokens  "
              f"p50 {latency:6.0f} ms", flush=True)


# ---------------------------------------------------------------- speed


def run_speed(tokenizer_model: str) -> list[dict]:
    from model.tokenizer import VocabularyTokenizer

    tokenizer = VocabularyTokenizer(registry.resolve_model(tokenizer_model))
    target = install_packages(SPEED_PACKAGES)
    return [speed_of(target / package, f"{package}=={version}", tokenizer)
            for package, version in SPEED_PACKAGES.items()]


def speed_of(root: Path, package: str, tokenizer: VocabularyTokenizer) -> dict:
    """Index build, reopen and memory for the package at `root`, and packing times in it."""
    home = smallcoder_home() / "bench" / "context-home"
    store = index_store_path(root, home)
    store.unlink(missing_ok=True)
    started = time.perf_counter()
    index = WorkspaceIndex.open(root, home)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    reopened = WorkspaceIndex.open(root, home)
    reopen_s = time.perf_counter() - started
    del reopened
    tracemalloc.start()
    measured = WorkspaceIndex(root)
    measured.refresh()
    memory_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del measured
    rng = random.Random(SEED)
    files = [entry for entry in index.files() if entry.language == "python"]
    targets = []
    for entry in rng.sample(files, min(SPEED_TARGETS, len(files))):
        text = index.text_of(entry.path) or ""
        line = rng.randrange(text.count("\n") + 1)
        targets.append(Target(entry.path, text, line, kind="cursor",
                              shown=fim_window(text.count("\n") + 1, line)))
    # The first completion after the folder is indexed: nothing may be left to build then.
    started = time.perf_counter()
    pack(targets[0], SPEED_BUDGETS[0], tokenizer.count_tokens, index=index)
    first_pack_ms = (time.perf_counter() - started) * 1e3
    packing: dict[str, dict[str, float]] = {}
    for budget in SPEED_BUDGETS:
        times = []
        for target in targets:
            started = time.perf_counter()
            result = pack(target, budget, tokenizer.count_tokens, index=index)
            times.append((time.perf_counter() - started) * 1e3)
            assert result.used_tokens <= budget
        packing[str(budget)] = _percentiles(times)
    times = []
    for target in targets:
        lines = target.text.split("\n")
        lines[target.line] += " "
        edited = replace(target, text="\n".join(lines))
        started = time.perf_counter()
        index.update_document(str(root / target.path), edited.text)
        pack(edited, EDIT_BUDGET, tokenizer.count_tokens, index=index)
        times.append((time.perf_counter() - started) * 1e3)
    packing[f"{EDIT_BUDGET} after an edit"] = _percentiles(times)
    report = {"package": package, "files": len(index.files()),
              "build_s": round(build_s, 2), "reopen_s": round(reopen_s, 2),
              "memory_mb": round(memory_bytes / 1e6, 1),
              "store_mb": round(store.stat().st_size / 1e6, 1),
              "first_pack_ms": round(first_pack_ms, 1),
              "tokenizer": tokenizer.name, "packing": packing,
              "targets": len(targets)}
    print(json.dumps(report, indent=2), flush=True)
    return report


def _percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {"p50_ms": round(ordered[len(ordered) // 2], 1),
            "p95_ms": round(ordered[int(len(ordered) * 0.95)], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b-instruct-q4_k_m",
                                                        "qwen2.5-coder-1.5b-instruct-q4_k_m"])
    parser.add_argument("--cases-per-package", type=int, default=CASES_PER_PACKAGE)
    parser.add_argument("--limit", type=int, help="run only this many cases (the packages in turn)")
    parser.add_argument("--prefix-lines", type=int, default=PREFIX_LINES,
                        help="lines before the cursor in the FIM prompt (editor: %(default)s)")
    parser.add_argument("--suffix-lines", type=int, default=SUFFIX_LINES,
                        help="lines after the cursor in the FIM prompt (editor: %(default)s)")
    parser.add_argument("--threads", type=int, help="llama.cpp threads (default: physical "
                        "cores; 1 is much faster when other work shares the CPU)")
    parser.add_argument("--context-tokens", type=int, default=CONTEXT_TOKENS,
                        help="context budget of the ring and packer arms (editor: %(default)s)")
    parser.add_argument("--arms", nargs="+", choices=(*ARMS, REFERENCE_ARM),
                        default=list(ARMS), help="the arms of the quality run (default: "
                        f"{' '.join(ARMS)}; {REFERENCE_ARM}: the packer told the hidden line)")
    parser.add_argument("--resume", nargs="*", type=Path, metavar="FILE",
                        help="keep the outcomes of these results files (default: a stopped "
                        f"run's {PARTIAL.name}) whose prompt this run makes again")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--recall-only", action="store_true",
                        help="no generation: how often each arm shows the hidden definition")
    args = parser.parse_args()
    report: dict = {}
    if args.recall_only:
        report["recall"] = run_recall(args.models[0], args.cases_per_package, args.limit,
                                      args.context_tokens, (args.prefix_lines, args.suffix_lines))
    if not (args.quality_only or args.recall_only):
        report["speed"] = run_speed(args.models[0])
    if not (args.speed_only or args.recall_only):
        print(f"FIM window: {args.prefix_lines} lines before, {args.suffix_lines} after; "
              f"context budget {args.context_tokens} tokens", flush=True)
        run, outcomes = run_quality(args.models, args.cases_per_package, args.limit,
                                    args.prefix_lines, args.suffix_lines, args.threads,
                                    args.context_tokens,
                                    _resume_files(args.resume), args.arms)
        _print_quality(outcomes)
        report["run"] = run
        report["quality"] = [asdict(outcome) for outcome in outcomes]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"context-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
