"""The README's main job: `smallcoder serve` driven over stdio exactly as an editor drives it.

On examples/ it asks for an inline completion (cold, then warm after typing), an explanation,
a refactor, and the agent's fix of the failing test, and prints each with its latency; the
user's files are never written.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DIM, BOLD, RESET = "\033[2m", "\033[1m", "\033[0m"


class Editor:
    """Just enough of an editor: open files, ask for things, time the answers."""

    def __init__(self) -> None:
        self.client = LanguageClient("smallcoder-demo", "1")
        self.ready = asyncio.Event()
        self.status: dict = {}

        @self.client.feature("smallcoder/statusChanged")
        def status_changed(params) -> None:
            self.status = params._asdict()
            if params.state == "ready":
                self.ready.set()
            elif params.state in ("error", "missing-model"):
                print(f"server: {params.message}")
                self.ready.set()

        @self.client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def progress_create(params) -> None:
            return None

        @self.client.feature(types.PROGRESS)
        def progress(params) -> None:
            kind = getattr(params.value, "kind", "")
            if kind == "begin":
                print(f"server: {params.value.title}")
            elif kind == "report" and getattr(params.value, "message", None):
                print(f"{DIM}server: {params.value.message}{RESET}")

        @self.client.feature(types.WINDOW_LOG_MESSAGE)
        def log_message(params) -> None:
            return None

    async def start(self) -> None:
        await self.client.start_io(sys.executable, "-m", "cli", "serve", cwd=str(ROOT))
        model = os.environ.get("SMALLCODER_MODEL", "qwen2.5-coder-1.5b-instruct-q4_k_m")
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True)),
            initialization_options={"model": model},
            workspace_folders=[types.WorkspaceFolder(uri=EXAMPLES.as_uri(), name="examples")]))
        self.client.initialized(types.InitializedParams())
        started = time.perf_counter()
        await asyncio.wait_for(self.ready.wait(), 300)
        print(f"{BOLD}model{RESET} {self.status['model']}: {self.status['state']} after "
              f"{time.perf_counter() - started:.1f} s")
        if self.status["state"] != "ready":
            raise SystemExit(1)

    def open(self, path: Path, text: str, version: int = 1) -> str:
        uri = path.as_uri()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python",
                                                 version=version, text=text)))
        return uri

    def change(self, uri: str, text: str, version: int) -> None:
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    async def complete(self, uri: str, line: int, character: int) -> tuple[str, float]:
        started = time.perf_counter()
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=line, character=character)))
        elapsed = (time.perf_counter() - started) * 1e3
        return (result.items[0].insert_text if result and result.items else ""), elapsed

    async def request(self, method: str, params: dict) -> tuple[object, float]:
        started = time.perf_counter()
        result = await self.client.protocol.send_request_async(method, params)
        return result, (time.perf_counter() - started) * 1e3

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def heading(title: str, latency_ms: float) -> None:
    print(f"\n{BOLD}--- {title}{RESET} ({latency_ms:.0f} ms)")


def line_of(text: str, prefix: str) -> int:
    return next(index for index, line in enumerate(text.split("\n")) if line.startswith(prefix))


async def demo() -> int:
    editor = Editor()
    await editor.start()

    stats = (EXAMPLES / "stats.py").read_text()
    row = line_of(stats, "def median") + 3
    lines = stats.split("\n")
    typing = "\n".join([*lines[:row], "    ", *lines[row + 1:]])
    uri = editor.open(EXAMPLES / "stats.py", typing)
    completion, latency = await editor.complete(uri, row, 4)
    heading("inline completion in stats.py, median(), cold", latency)
    print(f"{lines[row - 3]}\n    ...\n    {DIM}{completion}{RESET}")

    typed = "\n".join([*lines[:row], "    if", *lines[row + 1:]])
    editor.change(uri, typed, 2)
    completion, latency = await editor.complete(uri, row, 6)
    heading("the same after typing `if`: warm KV cache", latency)
    print(f"    if{DIM}{completion}{RESET}")

    inventory_path = EXAMPLES / "inventory.py"
    inventory = inventory_path.read_text()
    inventory_uri = editor.open(inventory_path, inventory)
    discount = line_of(inventory, "def apply_discount")
    explanation, latency = await editor.request("smallcoder/explain", {
        "textDocument": {"uri": inventory_uri}, "position": {"line": discount, "character": 4}})
    heading("Explain this function: apply_discount", latency)
    print(explanation.markdown)

    low_stock = line_of(inventory, "def low_stock")
    refactor, latency = await editor.request("smallcoder/refactor", {
        "textDocument": {"uri": inventory_uri}, "position": {"line": low_stock, "character": 4},
        "instruction": "use an explicit for loop instead of the list comprehension"})
    heading("Refactor this function: low_stock (shown as a diff, nothing is written)", latency)
    edit = refactor.edit.documentChanges[0].edits[0]
    rows = inventory.split("\n")
    start, end = edit.range.start, edit.range.end
    after = "\n".join(rows[:start.line]) + "\n" + rows[start.line][:start.character] + \
        edit.newText + rows[end.line][end.character:] + "\n" + "\n".join(rows[end.line + 1:])
    sys.stdout.writelines(difflib.unified_diff(
        inventory.splitlines(keepends=True), after.splitlines(keepends=True),
        "examples/inventory.py", "examples/inventory.py (refactored)"))

    solve, latency = await editor.request("smallcoder/solve", {
        "workspaceFolder": EXAMPLES.as_uri(), "testCommand": f"{sys.executable} -m pytest -q",
        "workDoneToken": "demo-solve"})
    heading(f"Solve with agent: {solve.status} after {solve.rounds} round(s), "
            f"{solve.failingBefore} → {solve.failingAfter} failing (the diff; examples/ is "
            f"untouched)", latency)
    print(solve.diff or solve.message)

    await editor.stop()
    vsix = sorted((ROOT / "dist").glob("smallcoder-*.vsix"))
    if vsix:
        print(f"\n{BOLD}VS Code extension{RESET}: {vsix[-1].relative_to(ROOT)} "
              f"(install with `code --install-extension {vsix[-1].relative_to(ROOT)}`)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(demo()))
