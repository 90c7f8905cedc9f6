"""A pytest plugin the agent loads into one run of the failing tests: it records which of the
project's functions each test executed (sys.settrace, calls only), for localisation.

Imported by the user's interpreter, so it uses nothing but pytest and the standard library.
Enabled by SMALLCODER_TRACE_FILE (where the JSON goes) and SMALLCODER_TRACE_ROOT (the project).
"""

import json
import os
import sys

import pytest

_OUT = os.environ.get("SMALLCODER_TRACE_FILE")
_ROOT = os.path.realpath(os.environ.get("SMALLCODER_TRACE_ROOT", os.getcwd())) + os.sep
# Folders under the project that are not its code: a virtual environment, installed packages.
_NOT_OURS = ("site-packages", "dist-packages", os.sep + ".venv" + os.sep, os.sep + "venv" + os.sep)
_covered = {}  # node id → {(path relative to the root, first line, name)}
_ours = {}  # file name → relative path, or None when not the project's


def _relative(filename):
    if filename not in _ours:
        real = os.path.realpath(filename)
        # `<frozen os>`, `<string>`: no file, though realpath puts one in the working folder.
        inside = (not filename.startswith("<") and real.startswith(_ROOT)
                  and not any(part in real for part in _NOT_OURS))
        _ours[filename] = real[len(_ROOT):].replace(os.sep, "/") if inside else None
    return _ours[filename]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if not _OUT:
        yield
        return
    seen = _covered.setdefault(item.nodeid, set())

    def on_call(frame, event, _arg):
        # Calls only: no per-line tracing, so the tests run at near their usual speed.
        code = frame.f_code
        path = _relative(code.co_filename)
        if path is not None:
            seen.add((path, code.co_firstlineno, code.co_name))

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


def pytest_sessionfinish(session):
    if not _OUT:
        return
    with open(_OUT, "w", encoding="utf-8") as sink:
        json.dump({node: sorted(functions) for node, functions in _covered.items()}, sink)
