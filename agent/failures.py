"""Failing tests as the agent sees them: ids, messages and traceback frames.

Read from pytest's junit xml (standard library, without DTDs: see safe_xml), or from any
command's output and exit code; agent/reports.py reads the other runners.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import PurePosixPath

# Written by our pytest plugin for parametrized tests.
from agent.pytest_plugin.smallcoder_report import PROPERTY_PREFIX

# Python's own traceback lines, as `--tb=native` and uncaught exceptions print them.
FRAME_LINE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)',
                        re.MULTILINE)
# Frames outside the project: the interpreter's library, installed packages, pytest itself.
LIBRARY_PATH = re.compile(r"[/\\](?:site-packages|dist-packages|lib[/\\]python[\d.]*)[/\\]")
# The project frames shown with a failure, the innermost ones (a deep recursion has hundreds).
TRACE_FRAMES = 6
# Python 3.11's markers under the failing expression: noise for the model.
CARETS = re.compile(r"^\s*[\^~]+\s*$")
MESSAGE_CHARS = 2000
# pytest's line-by-line diff of two values that its first line already shows whole.
FULL_DIFF = re.compile(r"^\s*Full diff:")
OUTPUT_TAIL_CHARS = 3000


@dataclass(frozen=True)
class Frame:
    file: str  # as the traceback names it: absolute, or relative to where the tests ran
    line: int  # 1-based
    function: str  # "<module>" for top-level code


@dataclass(frozen=True)
class Failure:
    test_id: str  # pytest's node id, or the command itself for other test commands
    message: str
    frames: tuple[Frame, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()  # (name, repr) of a parametrized test's inputs


class UnsafeReport(ValueError):
    """A report with a document type: no test runner writes one, so it is not read."""


def safe_xml(text: str) -> ElementTree.Element:
    """Parse a report the tests may have written. Entities can only be declared in a document
    type, so refusing any DOCTYPE (as defusedxml's forbid_dtd does) rules out the billion-laughs
    and external-entity attacks; no runner writes one. A DOCTYPE quoted in a failure's text
    refuses the report too: the output is read instead."""
    if "<!doctype" in text.lower():
        raise UnsafeReport("the report declares a document type")
    return ElementTree.fromstring(text)


def frames_in(text: str) -> tuple[Frame, ...]:
    """The traceback frames written in `text`, outermost first."""
    return tuple(Frame(match["file"], int(match["line"]), match["function"])
                 for match in FRAME_LINE.finditer(text))


def failures_from_junit(xml_text: str) -> list[Failure]:
    """Every failed or erroring test case in a pytest junit xml report (xunit1 family)."""
    root = safe_xml(xml_text)
    found = []
    for case in root.iter("testcase"):
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        if problem is None:
            continue
        details = problem.text or ""
        # The exception with pytest's explanation when there is a traceback; else the summary.
        message = _error_lines(details) or problem.get("message") or ""
        trace = _project_trace(details, case.get("file"))
        message = f"{trace}\n{message}" if trace else message
        parameters = tuple((item.get("name", "")[len(PROPERTY_PREFIX):], item.get("value", ""))
                           for item in case.iter("property")
                           if item.get("name", "").startswith(PROPERTY_PREFIX))
        found.append(Failure(_node_id(case), short_message(message), frames_in(details),
                             parameters))
    return found


def failure_from_output(command: str, exit_code: int, output: str) -> Failure:
    """A whole command's failure: what it printed last, and the frames of its traceback."""
    tail = "\n".join(line for line in output[-OUTPUT_TAIL_CHARS:].splitlines()
                     if not CARETS.match(line))
    return Failure(command, f"exit status {exit_code}\n{tail.strip()}", frames_in(output))


def failure_text(failure: Failure) -> str:
    """A failure as the model is shown it, indented under its id: the test's inputs when it
    is parametrized (its id alone does not say them), then what went wrong."""
    lines = [f"with {name} = {value}" for name, value in failure.parameters]
    lines += failure.message.splitlines()
    return "\n".join(f"    {line}" for line in lines)


def _node_id(case: ElementTree.Element) -> str:
    """pytest's node id `path::Class::name` from a test case's file, classname and name."""
    name = case.get("name", "")
    file = case.get("file")
    classname = case.get("classname", "")
    if not file:
        return f"{classname}::{name}" if classname else name
    module = PurePosixPath(file).with_suffix("").as_posix().replace("/", ".")
    inner = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
    return "::".join([file, *inner.split("."), name] if inner else [file, name])


def _error_lines(details: str) -> str:
    """The lines of a traceback that say what went wrong (the exception and pytest's E lines)."""
    lines = details.strip().splitlines()
    start = next((index for index in range(len(lines) - 1, -1, -1)
                  if FRAME_LINE.match(lines[index])), -1)
    # After the last frame come its source line and then the exception with its explanation.
    kept = lines[start + 2:] if start >= 0 else lines[-10:]
    end = next((index for index, line in enumerate(kept) if FULL_DIFF.match(line)), len(kept))
    return "\n".join(line for line in kept[:end] if not CARETS.match(line)).rstrip()


def _project_trace(details: str, test_file: str | None) -> str:
    """Where it failed, in the project's own files: `path:line in function: source` for the
    innermost frames, a run of the same frame (recursion) said once with its count."""
    lines = details.splitlines()
    frames = []
    for index, line in enumerate(lines):
        match = FRAME_LINE.match(line)
        if match is None or LIBRARY_PATH.search(match["file"]):
            continue
        source = lines[index + 1].strip() if index + 1 < len(lines) else ""
        frames.append((match["file"], match["line"], match["function"], source))
    if not frames:
        return ""
    # Paths relative to the project: the test file's frame tells where the project is.
    root = next((file[:-len(test_file)] for file, *_ in frames
                 if test_file and file.endswith("/" + test_file)), "")
    runs = [(frame, len(list(group))) for frame, group in itertools.groupby(
        (file.removeprefix(root), line, function, source)
        for file, line, function, source in frames)]
    rendered = [f"  {file}:{line} in {function}{f', {count} times' if count > 1 else ''}: "
                f"{source}" for (file, line, function, source), count in runs[-TRACE_FRAMES:]]
    return "Traceback (most recent call last):\n" + "\n".join(rendered)


def short_message(text: str) -> str:
    """A message cut to MESSAGE_CHARS, saying so."""
    text = text.strip()
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS] + "\n[…]"
