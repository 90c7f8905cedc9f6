"""A seeded fuzz run in CI: 5,000 messages against the fake engine, nothing unanswered.

Real and mutated messages, random JSON, broken framing, huge and odd payloads (tests/lsp_fuzz.py)
must leave the server alive, answering every request it could read, never stalled for
HANG_S, and its memory after the run within a bound of what it held after warming up.
"""

from __future__ import annotations

import time

from tests.lsp_fuzz import Fuzzer, run_fuzz
from tests.lsp_wire import WireServer

SEED = 31
MESSAGES = 5000
RSS_GROWTH_BOUND = 1.5


def test_five_thousand_fuzzed_messages_leave_every_request_answered(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "stats.py").write_text("def mean(values):\n    return sum(values)\n")
    model = tmp_path / "fake.gguf"
    model.write_bytes(b"GGUF")
    server = WireServer(tmp_path / "server.log")
    server.initialize(str(model))
    server.wait_ready()
    started = time.monotonic()
    report = run_fuzz(server, Fuzzer(SEED, root, str(model)), messages=MESSAGES)
    figures = report.figures()
    print(figures)
    exit_code = server.close()
    assert report.messages >= MESSAGES
    assert all(report.kinds[kind] > 0 for kind in ("real", "mutated", "framing", "odd"))
    assert (report.crashes, report.hangs, report.unanswered) == (0, 0, []), figures
    assert report.requests > 1000
    assert report.rss_end_bytes <= RSS_GROWTH_BOUND * report.rss_warm_bytes, figures
    assert exit_code == 0
    assert time.monotonic() - started < 100
