"""Engine speed on this machine: prompt and generation tokens/s, overhead against raw
llama-cpp-python on identical prompts, warm vs cold latency of a one-character edit, and what
prompt lookup (model/lookup.py) saves when the answer repeats the prompt: a rewrite of code
against raw llama-cpp-python's greedy decoding of the same tokens, and the share of guesses kept.

Run: .venv/bin/python bench/engine.py [--models NAME ...] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import textwrap as textwrap_module
import time
from itertools import islice
from pathlib import Path

from model import registry
from model.engine import GenerationParams, LlamaCppEngine
from model.prompts import fim_prompt_tokens, fim_request_at

FILE_TOKENS = 1500
GENERATED_TOKENS = 64
REWRITE_TOKENS = 128
EDIT_GENERATED_TOKENS = 16
RESULTS = Path(__file__).resolve().parent / "results"


def source_of_about(engine: LlamaCppEngine, tokens: int) -> str:
    """A real Python file (the stdlib's textwrap) cut to about `tokens` tokens."""
    lines = Path(textwrap_module.__file__).read_text().split("\n")
    kept: list[str] = []
    for line in lines:
        kept.append(line)
        if engine.count_tokens("\n".join(kept)) >= tokens:
            break
    return "\n".join(kept) + "\n"


def edit_prompts(engine: LlamaCppEngine, text: str) -> tuple[list[int], list[int]]:
    """FIM prompts before and after typing one character at a cursor in the middle."""
    lines = text.split("\n")
    row = len(lines) * 2 // 3
    while not lines[row].strip():
        row += 1
    column = len(lines[row]) // 2
    before = fim_request_at(text, row, column, repo_name="bench", path="textwrap.py")
    typed = lines[row][:column] + "x" + lines[row][column:]
    after_text = "\n".join([*lines[:row], typed, *lines[row + 1:]])
    after = fim_request_at(after_text, row, column + 1, repo_name="bench", path="textwrap.py")
    return fim_prompt_tokens(before, engine), fim_prompt_tokens(after, engine)


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return (time.perf_counter() - start) * 1e3, value


def bench_model(name: str, repeats: int) -> dict:
    engine = LlamaCppEngine(registry.resolve_model(name))
    llm = engine.llama
    text = source_of_about(engine, FILE_TOKENS)
    before, after = edit_prompts(engine, text)
    story = engine.chat_prompt([{"role": "user", "content":
                                 "Write a long, detailed story about a lighthouse keeper."}])
    params = GenerationParams(max_tokens=GENERATED_TOKENS)

    ours_ms, raw_ms, prompt_rates, generation_rates = [], [], [], []
    for _ in range(repeats):
        # Identical work both ways: cold cache, same prompt, greedy, same token count.
        engine.clear_cache()
        elapsed, result = timed(lambda: engine.generate(before, params))
        ours_ms.append(elapsed)
        prompt_rates.append(result.evaluated_prompt_tokens / result.prompt_ms * 1e3)
        llm.reset()
        same_length = result.generated_tokens
        elapsed, raw = timed(lambda n=same_length: llm.create_completion(
            prompt=before, max_tokens=n, temperature=0.0,
            top_k=40, top_p=0.95, min_p=0.0, repeat_penalty=1.0))
        raw_ms.append(elapsed)
        engine.clear_cache()
        story_result = engine.generate(story, params)
        generation_rates.append(story_result.tokens_per_second or 0.0)

    cold_ms, warm_ms, warm_evaluated = [], [], []
    edit_params = GenerationParams(max_tokens=EDIT_GENERATED_TOKENS)
    for _ in range(repeats):
        engine.clear_cache()
        elapsed, _cold = timed(lambda: engine.generate(after, edit_params))
        cold_ms.append(elapsed)
        engine.clear_cache()
        engine.generate(before, edit_params)
        elapsed, warm = timed(lambda: engine.generate(after, edit_params))
        warm_ms.append(elapsed)
        warm_evaluated.append(warm.evaluated_prompt_tokens)

    rewrite = engine.chat_prompt([{"role": "user", "content":
                                   f"Add type hints to this code:\n```python\n{text}```"}])
    rewrite_ms, raw_rewrite_ms, kept_shares = [], [], []
    extra = engine.counters.extra
    for _ in range(repeats):
        # Both ways the prompt is in the cache but its last token, which each evaluates again.
        engine.clear_cache()
        engine.generate(rewrite, GenerationParams(max_tokens=1))
        kept = extra.get("lookup_kept", 0)
        elapsed, rewritten = timed(lambda: engine.generate(
            rewrite, GenerationParams(max_tokens=REWRITE_TOKENS)))
        rewrite_ms.append(elapsed)
        kept_shares.append((extra.get("lookup_kept", 0) - kept)
                           / max(1, rewritten.generated_tokens))
        llm.reset()
        llm.eval(rewrite)
        elapsed, _raw = timed(lambda n=rewritten.generated_tokens: list(islice(llm.generate(
            rewrite, temp=0.0, top_k=40, top_p=0.95, min_p=0.0, repeat_penalty=1.0), n)))
        raw_rewrite_ms.append(elapsed)

    median = statistics.median
    # The fastest of the repeats is the least disturbed by other work on the machine.
    return {
        "model": name,
        "file_prompt_tokens": len(before),
        "prompt_tokens_per_s": round(median(prompt_rates), 1),
        "generated_tokens_per_s": round(median(generation_rates), 1),
        "engine_ms": round(min(ours_ms), 1),
        "raw_llama_cpp_ms": round(min(raw_ms), 1),
        "overhead_ratio": round(min(ours_ms) / min(raw_ms), 3),
        "cold_edit_ms": round(min(cold_ms), 1),
        "warm_edit_ms": round(min(warm_ms), 1),
        "warm_evaluated_prompt_tokens": int(median(warm_evaluated)),
        "cold_over_warm": round(min(cold_ms) / min(warm_ms), 1),
        "raw_text_matches": raw["choices"][0]["text"] == result.text,
        "rewrite_tokens": rewritten.generated_tokens,
        "rewrite_ms": round(min(rewrite_ms), 1),
        "raw_rewrite_ms": round(min(raw_rewrite_ms), 1),
        "rewrite_speedup": round(min(raw_rewrite_ms) / min(rewrite_ms), 2),
        "rewrite_tokens_from_lookup": round(median(kept_shares), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="registry names (default: all present)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = args.models or [row.spec.name for row in registry.list_models() if row.present]
    if not names:
        print("no model is downloaded: run `make setup` first", file=sys.stderr)
        return 1
    rows = [bench_model(name, args.repeats) for name in names]
    header = (f"{'model':<38} {'prompt t/s':>10} {'gen t/s':>8} {'overhead':>9} "
              f"{'cold ms':>8} {'warm ms':>8} {'cold/warm':>9} {'rewrite x':>9} {'looked up':>9}")
    print(header)
    for row in rows:
        print(f"{row['model']:<38} {row['prompt_tokens_per_s']:>10} "
              f"{row['generated_tokens_per_s']:>8} {row['overhead_ratio']:>9} "
              f"{row['cold_edit_ms']:>8} {row['warm_edit_ms']:>8} {row['cold_over_warm']:>9} "
              f"{row['rewrite_speedup']:>9} {row['rewrite_tokens_from_lookup']:>9}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"engine-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"details: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
