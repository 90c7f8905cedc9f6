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

With --adapter ADAPTER.gguf each session runs without and then with the personal adapter
(`smallcoder.adapter`), `--rounds` times in turn, so the adapter's serving cost is measured in
one run; the raw replay applies the adapter too. Each row goes to bench/results/lsp-*.jsonl as
it is measured, after a first line with the machine's raw llama.cpp prompt and generation
tokens/s.

Run: .venv/bin/python bench/lsp.py [--models NAME ...] [--lines N] [--context-tokens N ...]
                                   [--adapter ADAPTER.gguf [--rounds N]]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.session import raw_speed
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
                  context_tokens: int, adapter: Path | None = None) -> tuple[list[Request], str]:
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
                                "adapter": str(adapter) if adapter else "",
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
    if adapter is not None and not status.adapter:
        raise SystemExit(f"{model}: the adapter was not applied: {status.message}")

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


def replay_raw(model: str, requests: list[Request], source: Path,
               adapter: Path | None = None) -> list[float]:
    """The same prompts, same order and token counts, straight into llama-cpp-python (with the
    same adapter)."""
    import llama_cpp

    from model.engine import DEFAULT_CONTEXT_TOKENS, LlamaCppEngine, physical_cores

    tokenizer = LlamaCppEngine(registry.resolve_model(model))
    llm = llama_cpp.Llama(model_path=str(registry.resolve_model(model)),
                          n_ctx=DEFAULT_CONTEXT_TOKENS, n_threads=physical_cores(),
                          n_threads_batch=physical_cores(), verbose=False,
                          lora_path=None if adapter is None else str(adapter))
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
              context_tokens: int, adapter: Path | None = None) -> dict:
    latencies = [request.latency_ms for request in requests]
    warm = [request.latency_ms for request in requests if request.warm]
    prompt_total = sum(request.prompt_tokens for request in requests)
    reused = prompt_total - sum(request.evaluated for request in requests)
    row = {
        "model": model,
        "adapter": None if adapter is None else str(adapter),
        "context_tokens": context_tokens,
        "requests": len(requests),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "warm_p50_ms": round(percentile(warm, 0.5), 1),
        "warm_p95_ms": round(percentile(warm, 0.95), 1),
        "kv_cache_share": round(reused / prompt_total, 3),
        "mean_prompt_tokens": round(prompt_total / len(requests)),
        "mean_generated_tokens": round(statistics.mean(r.generated for r in requests), 1),
        "total_latency_ms": round(sum(latencies), 1),
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
    parser.add_argument("--adapter", type=Path,
                        help="a GGUF LoRA adapter of the (one) model: every session also runs "
                        "with it, to measure its serving cost")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --adapter: sessions without and with it, taken in turn")
    args = parser.parse_args()
    names = args.models or [row.spec.name for row in registry.list_models() if row.present]
    adapters: list[Path | None] = [None]
    if args.adapter is not None:
        if not args.adapter.is_file():
            parser.error(f"--adapter {args.adapter}: no such file")
        if len(names) != 1:
            parser.error("--adapter belongs to one base model: give it with --models NAME")
        adapters = [None, args.adapter.resolve()] * max(1, args.rounds)
    replay = args.context_tokens == [0]
    source = make_workspace(not replay)
    workspace = source.parent if replay else source.parent.parent
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"lsp-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"

    def write(row: dict) -> None:
        with out.open("a") as stream:
            stream.write(json.dumps(row) + "\n")

    rows = []
    for name in names:
        speed = raw_speed(registry.resolve_model(name), textwrap.__doc__ * 20)
        print(f"{name}: raw llama.cpp {speed['raw_prompt_tokens_per_s']} prompt, "
              f"{speed['raw_generation_tokens_per_s']} generated tokens/s", flush=True)
        write({"model": name, "raw_speed": speed})
        for budget in args.context_tokens:
            for adapter in adapters:
                requests, _ = asyncio.run(session(name, args.lines, source, workspace, budget,
                                                  adapter))
                raw = replay_raw(name, requests, source, adapter) if replay else None
                rows.append(summarize(name, requests, raw, budget, adapter) | speed)
                write(rows[-1])
                print_row(rows[-1])
    if args.adapter is not None:
        print_adapter_cost(rows)
    print(f"details: {out}")
    return 0


def print_row(row: dict) -> None:
    arm = "adapter" if row["adapter"] else "base"
    print(f"{row['model']:<38} {arm:>7} ctx {row['context_tokens']:>5}  n {row['requests']:>3}  "
          f"p50 {row['p50_ms']:>7}  p95 {row['p95_ms']:>7}  warm p50 {row['warm_p50_ms']:>7}  "
          f"warm p95 {row['warm_p95_ms']:>7}  KV {row['kv_cache_share']:>5}  "
          f"prompt {row['mean_prompt_tokens']:>5}  raw warm p50 "
          f"{row.get('raw_warm_p50_ms', 'n/a'):>7}  "
          f"LSP/raw {row.get('lsp_over_raw_warm_p50', 'n/a')}",
          flush=True)


def adapter_cost(rows: list[dict]) -> dict[int, dict[str, float]]:
    """Per context budget: the adapter's latency over the base's (medians over the rounds of
    p50, warm p50 and the session's total), > 1 when the adapter is slower."""
    cost = {}
    for budget in sorted({row["context_tokens"] for row in rows}):
        arms = {arm: [row for row in rows if row["context_tokens"] == budget
                      and bool(row["adapter"]) == arm] for arm in (False, True)}
        cost[budget] = {
            key: round(statistics.median(row[key] for row in arms[True])
                       / statistics.median(row[key] for row in arms[False]), 3)
            for key in ("p50_ms", "warm_p50_ms", "total_latency_ms")}
    return cost


def print_adapter_cost(rows: list[dict]) -> None:
    for budget, ratios in adapter_cost(rows).items():
        print(f"adapter over base, ctx {budget}: p50 x{ratios['p50_ms']}, warm p50 "
              f"x{ratios['warm_p50_ms']}, whole session x{ratios['total_latency_ms']}")


if __name__ == "__main__":
    sys.exit(main())
