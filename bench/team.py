"""A team on one llama-server: 1, 4 and 8 simulated users typing at once, each in their own
file, against one server started with `--parallel` equal to the users; then one user on the
embedded engine for comparison, and this run's raw llama.cpp prompt and generation tokens/s.

Each user retypes line tails of a stdlib module (their own, so prompts differ as a team's do)
and asks for an inline completion at every pause after a space or punctuation, through
`assist.completion.complete_at` (the editor's own path, without cross-file context), waits
for it, then pauses a seeded think time. Reported per run: each user's p50/p95 latency, all
users' p50/p95, and the aggregate generated tokens/s (all users' generated tokens over the
run's wall time). Rows go to bench/results/team-<time>.jsonl as they come: a cut run keeps them.

Run: .venv/bin/python bench/team.py [--model NAME] [--users 1 4 8] [--requests N]
     [--threads N] [--think-ms A B]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assist.completion import CompletionSettings, complete_at
from model import registry
from model.engine import Engine, LlamaCppEngine
from model.llama_server import LlamaServerProcess, ServerOptions
from model.remote import RemoteConfig, RemoteEngine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
# One module per user: real code, different for each, always the same ones.
MODULES = ("textwrap", "shlex", "csv", "calendar", "fractions", "difflib", "pprint", "ftplib")
REQUESTS_PER_USER = 8
THINK_MS = (300, 900)  # the pause between a suggestion and the next one asked for
WINDOW_LINES = 100  # of each file: about 1,000 tokens of prompt
PAUSE_AFTER = " (.,=:["  # a request goes out after these (bench/session.py's pauses)
CONTEXT_PER_SLOT = 2048
SEED = 20261207
API_KEY = "bench-team-key"
RAW_PROMPT_TOKENS = 512
RAW_GENERATED_TOKENS = 64


@dataclass(frozen=True)
class Moment:
    """Where a user asks: the file as it is while the line is retyped, and the cursor."""

    text: str
    line: int
    character: int


def moments(module: str, count: int, seed: int) -> list[Moment]:
    """`count` pauses while retyping whole lines of `module`'s head, seeded: every pause after
    a space or punctuation on a line (warm: only the typed part is new), then the next line
    (cold from that line on), as a user types."""
    source = Path(importlib.import_module(module).__file__).read_text(encoding="utf-8")
    lines = source.split("\n")[:WINDOW_LINES]
    candidates = [index for index, line in enumerate(lines)
                  if line.startswith("    ") and 20 <= len(line.strip()) <= 70
                  and not line.strip().startswith(("#", '"', "'"))]
    rng = random.Random(seed)
    result: list[Moment] = []
    for index in sorted(rng.sample(candidates, min(len(candidates), count))):
        line = lines[index]
        indent = len(line) - len(line.lstrip())
        for cut in [at + 1 for at, char in enumerate(line) if char in PAUSE_AFTER
                    and at + 1 > indent]:
            typed = [*lines[:index], line[:cut], *lines[index + 1:]]
            result.append(Moment("\n".join(typed), index, cut))
            if len(result) == count:
                return result
    return result


@dataclass
class UserRun:
    user: int
    latencies_ms: list[float]
    generated_tokens: int = 0
    evaluated_prompt_tokens: int = 0
    errors: int = 0


def simulate_user(engine: Engine, user: int, requests: int, think_ms: tuple[int, int],
                  write_row) -> UserRun:
    module = MODULES[user % len(MODULES)]
    run = UserRun(user, [])
    rng = random.Random(SEED + user)
    for number, moment in enumerate(moments(module, requests, SEED + user)):
        started = time.perf_counter()
        try:
            completion = complete_at(engine, moment.text, moment.line, moment.character,
                                     path=f"{module}.py", repo_name="team",
                                     settings=CompletionSettings())
        except Exception as error:  # a failed request is counted and reported, not fatal
            run.errors += 1
            write_row({"kind": "error", "user": user, "request": number, "error": str(error)})
            continue
        latency = (time.perf_counter() - started) * 1e3
        generation = completion.generation
        run.latencies_ms.append(latency)
        run.generated_tokens += generation.generated_tokens
        run.evaluated_prompt_tokens += generation.evaluated_prompt_tokens
        write_row({"kind": "request", "user": user, "request": number, "module": module,
                   "latency_ms": round(latency, 1), "prompt_tokens": generation.prompt_tokens,
                   "evaluated_prompt_tokens": generation.evaluated_prompt_tokens,
                   "generated_tokens": generation.generated_tokens,
                   "finish": generation.finish_reason})
        time.sleep(rng.uniform(*think_ms) / 1e3)
    return run


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run_users(engines: list[Engine], requests: int, think_ms: tuple[int, int], label: str,
              write_row) -> dict:
    """All users at once, one thread each; the summary row."""
    runs: list[UserRun] = [None] * len(engines)  # type: ignore[list-item]

    def one(user: int) -> None:
        runs[user] = simulate_user(engines[user], user, requests, think_ms, write_row)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(user,)) for user in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    everyone = [latency for run in runs for latency in run.latencies_ms]
    summary = {
        "kind": "summary", "engine": label, "users": len(engines), "wall_s": round(wall_s, 1),
        "requests": len(everyone), "errors": sum(run.errors for run in runs),
        "p50_ms": round(statistics.median(everyone), 1) if everyone else None,
        "p95_ms": round(percentile(everyone, 0.95), 1),
        "aggregate_generated_tokens_per_s": round(
            sum(run.generated_tokens for run in runs) / wall_s, 1),
        # Completions typed mid-line stop within a few tokens: prompts are most of the work.
        "aggregate_evaluated_prompt_tokens_per_s": round(
            sum(run.evaluated_prompt_tokens for run in runs) / wall_s, 1),
        "per_user": [{"user": run.user, "p50_ms": round(percentile(run.latencies_ms, 0.5), 1),
                      "p95_ms": round(percentile(run.latencies_ms, 0.95), 1)} for run in runs],
    }
    write_row(summary)
    return summary


def raw_speeds(engine: LlamaCppEngine) -> dict:
    """Raw llama.cpp prompt and generation tokens/s on this machine now, through
    llama-cpp-python directly (cold prompt, greedy generation)."""
    llm = engine.llama
    source = Path(importlib.import_module("textwrap").__file__).read_text(encoding="utf-8")
    prompt = engine.tokenize(source)[:RAW_PROMPT_TOKENS]
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    prompt_s = time.perf_counter() - started
    started = time.perf_counter()
    generated = 0
    for _ in llm.generate(prompt, temp=0.0, top_k=40, top_p=0.95, min_p=0.0,
                          repeat_penalty=1.0):
        generated += 1
        if generated >= RAW_GENERATED_TOKENS:
            break
    generation_s = time.perf_counter() - started
    engine.clear_cache()
    return {"kind": "raw-llama-cpp", "prompt_tokens": len(prompt),
            "prompt_tokens_per_s": round(len(prompt) / prompt_s, 1),
            "generated_tokens": generated,
            "generated_tokens_per_s": round(generated / generation_s, 1)}


def print_summary(row: dict) -> None:
    users = " ".join(f"u{entry['user']}:{entry['p50_ms']:.0f}/{entry['p95_ms']:.0f}"
                     for entry in row["per_user"])
    print(f"{row['engine']:<14} users {row['users']}  p50 {row['p50_ms']} ms  p95 "
          f"{row['p95_ms']} ms  aggregate {row['aggregate_generated_tokens_per_s']} generated "
          f"tok/s, {row['aggregate_evaluated_prompt_tokens_per_s']} prompt tok/s  "
          f"({row['requests']} requests, {row['errors']} errors, {row['wall_s']} s)  "
          f"per user p50/p95: {users}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_USER)
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads, both sides")
    parser.add_argument("--think-ms", type=int, nargs=2, default=list(THINK_MS))
    args = parser.parse_args()
    path = registry.resolve_model(args.model)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"team-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    lock = threading.Lock()

    def write_row(row: dict) -> None:
        with lock, out.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(row) + "\n")

    write_row({"kind": "machine", "model": args.model, "platform": platform.platform(),
               "processor": platform.processor(), "threads": args.threads,
               "requests_per_user": args.requests, "think_ms": args.think_ms})
    local = LlamaCppEngine(path, threads=args.threads)
    raw = raw_speeds(local)
    write_row(raw)
    print(f"raw llama.cpp: prompt {raw['prompt_tokens_per_s']} tok/s, generation "
          f"{raw['generated_tokens_per_s']} tok/s", flush=True)
    print_summary(run_users([local], args.requests, tuple(args.think_ms), "local", write_row))
    del local  # its memory and threads are the server's now
    for users in args.users:
        options = ServerOptions(model_path=path, api_key=API_KEY, parallel=users,
                                context_tokens=CONTEXT_PER_SLOT * users, threads=args.threads)
        with tempfile.TemporaryDirectory() as logs, \
                LlamaServerProcess(options, Path(logs) / "server.log") as server:
            config = RemoteConfig("llama-server", server.url, api_key=API_KEY)
            engines = [RemoteEngine(path, config) for _ in range(users)]
            print_summary(run_users(engines, args.requests, tuple(args.think_ms),
                                    "llama-server", write_row))
    raw_after = raw_speeds(LlamaCppEngine(path, threads=args.threads))
    write_row({**raw_after, "when": "after"})
    print(f"raw llama.cpp after: prompt {raw_after['prompt_tokens_per_s']} tok/s, generation "
          f"{raw_after['generated_tokens_per_s']} tok/s")
    print(f"rows: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
