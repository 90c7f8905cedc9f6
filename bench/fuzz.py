"""A long seeded fuzz run of `smallcoder serve` with the fake engine (the CI test runs 5,000).

The same messages as tests/server/test_lsp_fuzz.py (tests/lsp_fuzz.py: real and mutated
messages, random JSON, broken framing, huge and odd payloads) for --minutes against one server.
A line of figures goes to bench/results/fuzz-<seed>-<time>.jsonl every --every seconds and at
the end: messages, requests, answered, crashes, hangs, RSS after warm-up and now, and RSS at
rest (every document closed, the server idle a moment): what the messages left behind, which is
what a leak or a fragmented heap makes grow; RSS "now" also holds whatever huge documents happen
to be open.

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

from server.memory import TRIM_DELAY_S  # noqa: E402
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
        fuzzer = Fuzzer(args.seed, root, str(model))
        last_line = [time.monotonic()]
        # RSS after warm-up, one sample a batch: huge documents come and go, so stability is
        # the median of the later half against the earlier half, not two single samples.
        rss_samples: list[int] = []
        # And RSS at rest, once a line: every document closed, the server idle for a moment.
        # What stays then is what the messages left behind; the first is taken at warm-up.
        idle_samples: list[int] = []

        def on_batch(report: FuzzReport) -> None:
            if report.rss_warm_bytes is not None and server.alive():
                rss_samples.append(server.rss_bytes())
            if (report.rss_warm_bytes is not None and not idle_samples) or (
                    time.monotonic() - last_line[0] >= args.every):
                last_line[0] = time.monotonic()
                now = server.rss_bytes() if server.alive() else None
                idle = idle_rss(server, fuzzer, report.messages)
                if report.rss_warm_bytes is not None and idle is not None:
                    idle_samples.append(idle)
                write_line(out, report, final=False, now=now, idle=idle)

        report = run_fuzz(server, fuzzer,
                          seconds=args.minutes * 60, warm_up_messages=args.warm_up_messages,
                          on_batch=on_batch)
        write_line(out, report, final=True)
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
          f"{rss_stability(rss_samples)}; {idle_stability(idle_samples)}; "
          f"server exit code {exit_code} {exit_seconds:.1f} s after shutdown was asked for; "
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


def idle_stability(samples: list[int]) -> str:
    if len(samples) < 3:
        return "too few RSS samples at rest"
    half = len(samples) // 2
    later = statistics.median(samples[half:])
    return (f"RSS at rest {samples[0] / 1024**2:.0f} MB after warm-up, "
            f"{samples[-1] / 1024**2:.0f} MB at the last line, median of the later half "
            f"{later / samples[0] - 1:+.0%} against warm-up ({len(samples)} samples)")


def idle_rss(server: WireServer, fuzzer: Fuzzer, messages: int) -> int | None:
    """The server's RSS with every document the fuzzer may have opened closed, once it has
    answered a request sent after the closes and then had the trim delay to free memory."""
    if not server.alive():
        return None
    for uri in fuzzer.uris:
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    try:
        server.request("smallcoder/status", {}, f"rest-{messages}", timeout_s=60)
    except AssertionError:
        return None
    time.sleep(TRIM_DELAY_S + 1)
    return server.rss_bytes() if server.alive() else None


def write_line(out: Path, report: FuzzReport, *, final: bool,
               now: int | None = None, idle: int | None = None) -> None:
    figures = report.figures()
    if not final:
        figures["rss_now_mb"] = round(now / 1024**2, 1) if now is not None else None
        figures["rss_at_rest_mb"] = round(idle / 1024**2, 1) if idle is not None else None
        figures["unanswered"] = None  # known only at the end
    figures["final"] = final
    with out.open("a") as file:
        file.write(json.dumps(figures) + "\n")
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    sys.exit(main())
