"""A long seeded fuzz run of `smallcoder serve` with the fake engine (the CI test runs 5,000).

The same messages as tests/server/test_lsp_fuzz.py (tests/lsp_fuzz.py: real and mutated
messages, random JSON, broken framing, huge and odd payloads) for --minutes against one server.
A line of figures goes to bench/results/fuzz-<seed>-<time>.jsonl every --every seconds and at
the end: messages, requests, answered, crashes, hangs, RSS after warm-up and now.

Run: .venv/bin/python bench/fuzz.py --minutes 30 [--seed 31]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lsp_fuzz import Fuzzer, FuzzReport, run_fuzz  # noqa: E402
from tests.lsp_wire import WireServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--every", type=float, default=30, help="seconds between lines")
    parser.add_argument("--warm-up-messages", type=int, default=5000)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fuzz-{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    with tempfile.TemporaryDirectory(prefix="smallcoder-fuzz-") as scratch:
        root = Path(scratch) / "project"
        root.mkdir()
        (root / "stats.py").write_text("def mean(values):\n    return sum(values)\n")
        model = Path(scratch) / "fake.gguf"
        model.write_bytes(b"GGUF")
        server = WireServer(Path(scratch) / "server.log")
        server.initialize(str(model))
        server.wait_ready()
        last_line = [time.monotonic()]
        # RSS after warm-up, one sample a batch: huge documents come and go, so stability is
        # the median of the later half against the earlier half, not two single samples.
        rss_samples: list[int] = []

        def on_batch(report: FuzzReport) -> None:
            if report.rss_warm_bytes is not None and server.alive():
                rss_samples.append(server.rss_bytes())
            if time.monotonic() - last_line[0] >= args.every:
                last_line[0] = time.monotonic()
                write_line(out, report, server, final=False)

        report = run_fuzz(server, Fuzzer(args.seed, root, str(model)),
                          seconds=args.minutes * 60, warm_up_messages=args.warm_up_messages,
                          on_batch=on_batch)
        write_line(out, report, server, final=True)
        # A loaded machine may still be working through the last huge messages: the exit is
        # timed, and given a minute before it counts as a hang.
        closing = time.monotonic()
        exit_code = server.close(timeout_s=60)
        exit_seconds = time.monotonic() - closing
        with out.open("a") as file:
            file.write(json.dumps({"exit_code": exit_code,
                                   "exit_seconds": round(exit_seconds, 2)}) + "\n")
    figures = report.figures()
    print(f"{figures['messages']} messages ({figures['messages'] / report.seconds:.0f}/s), "
          f"{figures['requests']} requests, {figures['unanswered']} unanswered, "
          f"{figures['crashes']} crashes, {figures['hangs']} hangs; RSS after warm-up "
          f"{figures['rss_warm_mb']} MB, at end {figures['rss_end_mb']} MB; "
          f"{rss_stability(rss_samples)}; server exit code {exit_code} "
          f"{exit_seconds:.1f} s after shutdown was asked for; "
          f"lines in {out.relative_to(ROOT)}")
    clean = (report.crashes, report.hangs, len(report.unanswered), exit_code) == (0, 0, 0, 0)
    return 0 if clean else 1


def rss_stability(samples: list[int]) -> str:
    if len(samples) < 4:
        return "too few RSS samples after warm-up"
    half = len(samples) // 2
    earlier, later = statistics.median(samples[:half]), statistics.median(samples[half:])
    return (f"RSS after warm-up {min(samples) / 1024**2:.0f}-{max(samples) / 1024**2:.0f} MB "
            f"over {len(samples)} samples, median of the later half {later / earlier - 1:+.0%} "
            f"against the earlier half")


def write_line(out: Path, report: FuzzReport, server: WireServer, *, final: bool) -> None:
    figures = report.figures()
    if not final:
        figures["rss_now_mb"] = round(server.rss_bytes() / 1024**2, 1) if server.alive() else None
        figures["unanswered"] = None  # known only at the end
    figures["final"] = final
    with out.open("a") as file:
        file.write(json.dumps(figures) + "\n")
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    sys.exit(main())
