"""A scripted typing session against `smallcoder serve`, measured at the client over stdio.

Lines of a real file are retyped a character at a time; at each pause (after a space or
punctuation) the client asks for an inline completion and waits for it, as an editor would.
Reports completion latency p50/p95 (all requests, and warm: after the first one on a line),
the share of prompt tokens the KV cache served, and the same prompts sent straight to
llama-cpp-python in the same run.

With --context-tokens N [M ...] the session types into the stdlib's email/message.py inside a
copy of the whole email package, once per budget, with the packer's cross-file chunks on: the
latency targets must hold with context too, and `--context-tokens 0 512` shows what the context
itself costs on the same file in the same run (this CPU's speed varies by the hour). The raw
replay then cannot rebuild the server's prompts, so only the LSP side is measured.

Run: .venv/bin/python bench/lsp.py [--models NAME ...] [--lines N] [--context-tokens N ...]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import json
import re
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from model import registry
from model.prompts import fim_prompt_tokens, fim_request_at

ROOT = Path(__file__).resolve().parent.parent
PAUSE_AFTER = set(" (.,=:[")
KEYSTROKE_S = 0.03
RESULTS = ROOT / "bench" / "results"
SERVER_LOG = re.compile(r"completion (\d+) ms, (\d+)/(\d+) prompt tokens evaluated, "
                        r"(\d+) generated")


def make_workspace(with_context: bool) -> Path:
    """The file typed into, in a fresh workspace folder of its own.

    Without context: a copy of the stdlib's textwrap alone, so the server indexes one file and
    the raw replay sees the very prompts the server built. With context: a copy of the email
    package, whose message.py uses helpers from its sibling modules.
    """
    workspace = Path(tempfile.mkdtemp(prefix="smallcoder-bench-lsp-"))
    if not with_context:
        return Path(shutil.copy(textwrap.__file__, workspace / "textwrap.py"))
    shutil.copytree(Path(email.__file__).parent, workspace / "email",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return workspace / "email" / "message.py"


@dataclass
class Request:
    text: str
    line: int
    character: int
    latency_ms: float
    warm: bool
    evaluated: int = 0
    prompt_tokens: int = 0
    generated: int = 0
    server_ms: int = 0  # the server's own time for it (its log line)


def target_lines(text: str, count: int) -> list[int]:
    """Statement lines inside functions, spread evenly over the file, always the same ones."""
    lines = text.split("\n")
    candidates = [index for index, line in enumerate(lines)
                  if line.startswith("        ") and 24 <= len(line.strip()) <= 70
                  and not line.strip().startswith(("#", '"', "'"))]
    step = max(1, len(candidates) // count)
    return candidates[::step][:count]


async def session(model: str, lines: int, source: Path, workspace: Path,
                  context_tokens: int) -> tuple[list[Request], str]:
    client = LanguageClient("smallcoder-bench", "1")
    logs: list[str] = []

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params) -> None:
        logs.append(params.message)

    @client.feature("smallcoder/statusChanged")
    def status_changed(params) -> None:
        return None

    await client.start_io(sys.executable, "-m", "cli", "serve", cwd=str(ROOT))
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        initialization_options={"model": model, "logLevel": "debug",
                                "inlineCompletions": {"contextTokens": context_tokens}},
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)]))
    client.initialized(types.InitializedParams())
    while True:
        status = await client.protocol.send_request_async("smallcoder/status", {})
        if status.state in ("ready", "error", "missing-model"):
            break
        await asyncio.sleep(0.1)
    if status.state != "ready":
        raise SystemExit(f"{model}: {status.message}")

    original = source.read_text()
    uri = source.as_uri()
    version = 1
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version,
                                             text=original)))
    requests: list[Request] = []
    rows = original.split("\n")
    for row in target_lines(original, lines):
        target = rows[row]
        indent = target[: len(target) - len(target.lstrip())]
        first_on_line = True
        for typed in range(len(indent), len(target) + 1):
            current = "\n".join([*rows[:row], target[:typed], *rows[row + 1:]])
            version += 1
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=current)]))
            await asyncio.sleep(KEYSTROKE_S)
            if typed > len(indent) and target[typed - 1] not in PAUSE_AFTER:
                continue
            started = time.perf_counter()
            await client.text_document_inline_completion_async(types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=row, character=typed)))
            requests.append(Request(current, row, typed,
                                    (time.perf_counter() - started) * 1e3, not first_on_line))
            first_on_line = False
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=original)]))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    stats = [SERVER_LOG.search(line) for line in logs]
    stats = [match for match in stats if match]
    if len(stats) != len(requests):
        raise SystemExit(f"expected {len(requests)} server log lines, got {len(stats)}")
    for request, match in zip(requests, stats, strict=True):
        request.server_ms, request.evaluated, request.prompt_tokens, request.generated = (
            int(match.group(1)), int(match.group(2)), int(match.group(3)), int(match.group(4)))
    return requests, status.model


def replay_raw(model: str, requests: list[Request], source: Path) -> list[float]:
    """The same prompts, same order and token counts, straight into llama-cpp-python."""
    import llama_cpp

    from model.engine import DEFAULT_CONTEXT_TOKENS, LlamaCppEngine, physical_cores

    tokenizer = LlamaCppEngine(registry.resolve_model(model))
    llm = llama_cpp.Llama(model_path=str(registry.resolve_model(model)),
                          n_ctx=DEFAULT_CONTEXT_TOKENS, n_threads=physical_cores(),
                          n_threads_batch=physical_cores(), verbose=False)
    timings = []
    for request in requests:
        prompt = fim_prompt_tokens(fim_request_at(
            request.text, request.line, request.character, repo_name=source.parent.name,
            path=source.name), tokenizer)
        started = time.perf_counter()
        llm.create_completion(prompt=prompt, max_tokens=max(request.generated, 1),
                              temperature=0.0, top_k=40, top_p=0.95, min_p=0.0)
        timings.append((time.perf_counter() - started) * 1e3)
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summarize(model: str, requests: list[Request], raw_ms: list[float] | None,
              context_tokens: int) -> dict:
    latencies = [request.latency_ms for request in requests]
    warm = [request.latency_ms for request in requests if request.warm]
    prompt_total = sum(request.prompt_tokens for request in requests)
    reused = prompt_total - sum(request.evaluated for request in requests)
    row = {
        "model": model,
        "context_tokens": context_tokens,
        "requests": len(requests),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "warm_p50_ms": round(percentile(warm, 0.5), 1),
        "warm_p95_ms": round(percentile(warm, 0.95), 1),
        "kv_cache_share": round(reused / prompt_total, 3),
        "mean_prompt_tokens": round(prompt_total / len(requests)),
        "mean_generated_tokens": round(statistics.mean(r.generated for r in requests), 1),
        # One row per request, to tell prompt evaluation from generation from overhead.
        "per_request": [{"line": r.line + 1, "character": r.character, "warm": r.warm,
                         "latency_ms": round(r.latency_ms, 1), "server_ms": r.server_ms,
                         "evaluated": r.evaluated, "prompt_tokens": r.prompt_tokens,
                         "generated": r.generated} for r in requests],
    }
    if raw_ms is not None:
        warm_raw = [raw for raw, request in zip(raw_ms, requests, strict=True) if request.warm]
        row |= {
            "raw_p50_ms": round(percentile(raw_ms, 0.5), 1),
            "raw_warm_p50_ms": round(percentile(warm_raw, 0.5), 1),
            "lsp_over_raw_warm_p50": round(percentile(warm, 0.5) / percentile(warm_raw, 0.5), 3),
            "lsp_over_raw_total": round(sum(latencies) / sum(raw_ms), 3),
        }
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: all present)")
    parser.add_argument("--lines", type=int, default=10, help="lines to retype")
    parser.add_argument("--context-tokens", type=int, nargs="+", default=[0],
                        help="cross-file context budgets, one session each (0 alone: off, on "
                        "textwrap, and the raw replay runs; otherwise all on the email package, "
                        "so 0 there is the same file without context)")
    args = parser.parse_args()
    names = args.models or [row.spec.name for row in registry.list_models() if row.present]
    replay = args.context_tokens == [0]
    source = make_workspace(not replay)
    workspace = source.parent if replay else source.parent.parent
    rows = []
    for name in names:
        for budget in args.context_tokens:
            requests, _ = asyncio.run(session(name, args.lines, source, workspace, budget))
            raw = replay_raw(name, requests, source) if replay else None
            rows.append(summarize(name, requests, raw, budget))
    print(f"{'model':<38} {'ctx':>5} {'n':>4} {'p50':>6} {'p95':>6} {'warm p50':>9} "
          f"{'warm p95':>9} {'KV share':>9} {'prompt':>7} {'raw warm p50':>13} {'LSP/raw':>8}")
    for row in rows:
        print(f"{row['model']:<38} {row['context_tokens']:>5} {row['requests']:>4} "
              f"{row['p50_ms']:>6} {row['p95_ms']:>6} {row['warm_p50_ms']:>9} "
              f"{row['warm_p95_ms']:>9} {row['kv_cache_share']:>9} "
              f"{row['mean_prompt_tokens']:>7} {row.get('raw_warm_p50_ms', 'n/a'):>13} "
              f"{row.get('lsp_over_raw_warm_p50', 'n/a'):>8}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"lsp-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"details: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
