"""Failing tests read from the reports and output of test runners other than pytest: JUnit XML
(node --test, vitest, Maven surefire, ctest), `go test -json`, cargo's libtest text, compiler
errors, and, for any other command, the file:line references and test names in its output.

Every reader takes text the test command wrote, which the workspace controls: XML is parsed
without DTDs or entities (safe_xml), and nothing here runs or resolves what it reads.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import PurePosixPath

from agent.failures import LIBRARY_PATH, Failure, Frame, frames_in, safe_xml, short_message

# The id of a failure that stopped the build: worse than any failing test (see TestRun).
BUILD_FAILURE_ID = "build"
FRAMES_KEPT = 12
MESSAGE_LINES = 40
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SOURCE_SUFFIXES = ("py", "js", "mjs", "cjs", "jsx", "ts", "tsx", "mts", "cts", "rs", "java",
                   "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "go", "kt", "cs", "rb")
_SUFFIX = "|".join(SOURCE_SUFFIXES)
# Any file:line(:col): V8's `at fn (file:l:c)`, vitest's arrow line, rustc's `--> file:l:c`,
# gcc's and go's `file:l:c: error`, a Rust panic, a C assert's `file:line: function`.
FILE_LINE = re.compile(rf"(?P<file>(?:[A-Za-z]:)?[\w./\\@+-]*\.(?:{_SUFFIX})):(?P<line>\d+)"
                       rf"(?::\d+)?")
# Babel's parse errors, as jest prints them: `SyntaxError: /path/calc.js: Unexpected token (2:13)`.
BABEL_ERROR = re.compile(rf"(?P<file>[\w./\\@+-]+\.(?:{_SUFFIX})): [^\n]*\((?P<line>\d+):\d+\)")
# javac through Maven: `/path/Calc.java:[7,21] ';' expected`.
JAVAC_ERROR = re.compile(r"(?P<file>[^\s\[\]]+\.java):\[(?P<line>\d+),\d+\]\s*(?P<message>.*)")
# TypeScript's compiler: `src/calc.ts(3,5): error TS2322: ...`.
TSC_ERROR = re.compile(r"(?P<file>[\w./\\@+-]+\.(?:ts|tsx|mts|cts))\((?P<line>\d+),\d+\): error")
# gcc, clang, go vet/build, rustc's headline, javac on its own.
COMPILE_ERROR = re.compile(r"^(?:error(?:\[E\d+\])?: (?!test failed|could not compile|aborting)"
                           r"|.*\.(?:c|cc|cpp|cxx|h|hpp|go|java):\d+(?::\d+)?: (?:fatal )?error"
                           r"|.*\.go:\d+:\d+: (?!.*\bFAIL\b))", re.MULTILINE)
# A V8 stack line; the function in front of the location is optional.
V8_FRAME = re.compile(r"^\s*at (?:(?P<function>[^()\n]+?) \()?(?P<file>[^()\s]+?):(?P<line>\d+)"
                      r":\d+\)?(?: \{)?\s*$", re.MULTILINE)
# A JVM stack line: `at calc.CalcTest.meanOfThree(CalcTest.java:15)`.
JVM_FRAME = re.compile(r"^\s*at (?:[\w.]+/)?(?P<function>[\w$.<>]+)\((?P<file>[\w$]+\.\w+):"
                       r"(?P<line>\d+)\)",
                       re.MULTILINE)
# Frames that are the runtime's, not the project's.
RUNTIME_FILES = re.compile(r"^(?:node:|internal/|/rustc/|<anonymous>)|(?:^|[/\\])(?:node_modules|"
                           r"\.cargo|\.rustup|go/src)[/\\]")
RUNTIME_CLASSES = re.compile(r"^(?:java|javax|jdk|sun|org\.junit|org\.opentest4j|"
                             r"org\.apache\.maven|junit)\.")
# libtest (cargo test): `test tests::adds ... FAILED` and the section of its output.
LIBTEST_RESULT = re.compile(r"^test (?P<name>\S+) \.\.\. FAILED$", re.MULTILINE)
LIBTEST_SECTION = re.compile(r"^---- (?P<name>\S+) stdout ----$", re.MULTILINE)
LIBTEST_END = re.compile(r"^(?:failures:|test result:)", re.MULTILINE)
PANIC = re.compile(r"panicked at (?P<file>[^\s:]+):(?P<line>\d+):\d+:?")
RUST_STACK_FRAME = re.compile(r"^\s+\d+: (?P<function>\S+)\n\s+at (?P<file>[^\s:]+):(?P<line>\d+)",
                              re.MULTILINE)
# ctest's summary: `  1 - add_sums (Subprocess aborted)` under "The following tests FAILED:".
CTEST_FAILED = re.compile(r"^\s*\d+ - (?P<name>\S+) \((?P<why>[^)]*)\)\s*$", re.MULTILINE)
CTEST_RESULT = re.compile(r"^\s*\d+/\d+ Test\s+#\d+: (?P<name>\S+) \.+\**(?P<why>[^\n]*?)\s+"
                          r"[\d.]+ sec$", re.MULTILINE)
OUTPUT_TAIL_CHARS = 3000
# A test that failed for want of the network or a service (a database, a server): under
# bubblewrap there is no network at all. Not a bug in the code: such failures are not edited.
ENVIRONMENT_PROBLEM = re.compile(
    r"ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ENETUNREACH|Connection refused|Name or service not known"
    r"|Temporary failure in name resolution|getaddrinfo failed|Network is unreachable"
    r"|could not connect to server|No route to host|dial tcp [^:]+:\d+: connect", re.IGNORECASE)


def failures_from_junit_report(xml_text: str) -> list[Failure]:
    """Failed and erroring test cases of a JUnit XML report as node --test, vitest, jest-junit,
    Maven surefire and ctest write it. Frames come from the stack in the failure's text."""
    root = safe_xml(xml_text)
    found = []
    for suite_path, case in _cases(root, ()):
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        if problem is None:
            continue
        details = "\n".join(filter(None, [problem.get("message") or "", problem.text or "",
                                          *(child.text or "" for child in case
                                            if child.tag in ("system-out", "system-err"))]))
        frames = frames_in_output(details)
        found.append(Failure(_junit_id(case, suite_path, frames), _message(details), frames))
    return found


def failures_from_jest_json(report_text: str) -> list[Failure]:
    """Failed tests of jest's `--json` report; a test file that did not run (it did not load
    or compile) is one failure named after the file, with jest's message."""
    try:
        report = json.loads(report_text)
    except ValueError:
        return []
    found = []
    for suite in report.get("testResults", []) if isinstance(report, dict) else []:
        file = str(suite.get("name", ""))
        cases = [case for case in suite.get("assertionResults", []) if isinstance(case, dict)]
        for case in cases:
            if case.get("status") != "failed":
                continue
            text = "\n".join(str(message) for message in case.get("failureMessages", []))
            name = " > ".join([*map(str, case.get("ancestorTitles", [])),
                               str(case.get("title", ""))])
            found.append(Failure(f"{file}::{name}", _message(text), frames_in_output(text)))
        if suite.get("status") == "failed" and not any(
                case.get("status") == "failed" for case in cases):
            text = str(suite.get("message", ""))
            found.append(Failure(file, _message(text), frames_in_output(text)))
    return found


def failures_from_go_json(output: str) -> list[Failure]:
    """Failed tests of `go test -json`; a package that failed without a failing test (it did
    not build) is a build failure with the compiler's lines."""
    outputs: dict[tuple[str, str], list[str]] = {}
    failed: list[tuple[str, str]] = []
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        key = (str(event.get("Package", "")), str(event.get("Test") or ""))
        if event.get("Action") == "output":
            outputs.setdefault(key, []).append(str(event.get("Output", "")))
        elif event.get("Action") == "fail":
            failed.append(key)
    tests = [key for key in failed if key[1]]
    # A parent test fails with its failing subtests: only the innermost ones are shown.
    tests = [key for key in tests if not any(other[0] == key[0] and
                                             other[1].startswith(key[1] + "/")
                                             for other in tests)]
    found = [Failure(f"{package}::{name}", _message("".join(outputs.get((package, name), []))),
                     frames_in_output("".join(outputs.get((package, name), []))))
             for package, name in tests]
    for package, name in failed:
        if not name and not any(key[0] == package for key in tests):
            text = "".join(outputs.get((package, ""), []))
            found.append(Failure(BUILD_FAILURE_ID, _message(text), frames_in_output(text)))
    if not found and output.strip() and "{" not in output.lstrip()[:1]:
        return failures_from_compiler(output)  # `go vet` or the build failed before any JSON
    return found


def failures_from_libtest(output: str) -> list[Failure]:
    """Failed tests of cargo test (libtest's plain output): each test's captured output, its
    panic location and the backtrace's project frames."""
    sections = {match["name"]: match.end() for match in LIBTEST_SECTION.finditer(output)}
    found = []
    for match in LIBTEST_RESULT.finditer(output):
        name = match["name"]
        start = sections.get(name)
        text = ""
        if start is not None:
            end = LIBTEST_END.search(output, start)
            nexts = [other for other in sections.values() if other > start]
            stop = min([end.start() if end else len(output), *(
                output.rfind("\n----", start, other) for other in nexts)])
            text = output[start:stop]
        frames = [Frame(m["file"].removeprefix("./"), int(m["line"]), m["function"])
                  for m in RUST_STACK_FRAME.finditer(text)
                  if not RUNTIME_FILES.search(m["file"])]
        frames.reverse()  # a backtrace lists the innermost first
        panic = PANIC.search(text)
        if panic:
            frames.append(Frame(panic["file"], int(panic["line"]), name.rsplit("::", 1)[-1]))
        message = "\n".join(line for line in text.split("stack backtrace:")[0].splitlines()
                            if line.strip())
        found.append(Failure(name, _message(message), tuple(frames[-FRAMES_KEPT:])))
    return found


def failures_from_ctest(output: str) -> list[Failure]:
    """Failed tests in ctest's own output, with what each printed (--output-on-failure)."""
    results = {match["name"]: match for match in CTEST_RESULT.finditer(output)}
    names = [match["name"] for match in CTEST_FAILED.finditer(output)]
    found = []
    for name in dict.fromkeys(names):
        result = results.get(name)
        text = ""
        if result is not None:
            following = output[result.end():]
            end = re.search(r"^\s*Start \d+:|^\d+/\d+ Test|^\d+% tests passed", following,
                            re.MULTILINE)
            text = following[:end.start() if end else len(following)]
            text = f"{result['why'].strip()}\n{text}"
        found.append(Failure(name, _message(text), frames_in_output(text)))
    return found


def failures_from_compiler(output: str) -> list[Failure]:
    """One build failure holding the compiler's errors with their file:line, when there are."""
    plain = ANSI_ESCAPE.sub("", output)
    lines = plain.splitlines()
    starts = [index for index, line in enumerate(lines)
              if COMPILE_ERROR.match(line) or JAVAC_ERROR.search(line) or TSC_ERROR.search(line)]
    if not starts:
        return []
    kept: list[str] = []
    for index in starts[:8]:
        kept += lines[index:index + 6] if lines[index].startswith("error") else [lines[index]]
    text = "\n".join(dict.fromkeys(kept))
    frames = [Frame(m["file"], int(m["line"]), "") for m in JAVAC_ERROR.finditer(text)]
    frames += [Frame(m["file"], int(m["line"]), "") for m in TSC_ERROR.finditer(text)]
    frames += frames_in_output(text)
    return [Failure(BUILD_FAILURE_ID, _message("the build failed:\n" + text),
                    tuple(dict.fromkeys(frames))[:FRAMES_KEPT])]


def generic_failure(command: str, exit_code: int, output: str, what: str) -> Failure:
    """Any command: its exit status, the end of its output and the file:line references in
    it, with a note saying which report could not be read."""
    plain = ANSI_ESCAPE.sub("", output)
    tail = plain[-OUTPUT_TAIL_CHARS:].strip()
    note = f"({what})\n" if what else ""
    return Failure(command, short_message(f"exit status {exit_code}\n{note}{tail}"),
                   frames_in_output(plain))


def environment_problem(failure: Failure) -> str | None:
    """The line saying a failure wanted the network or a service, when it did."""
    match = ENVIRONMENT_PROBLEM.search(failure.message)
    if match is None:
        return None
    start = failure.message.rfind("\n", 0, match.start()) + 1
    end = failure.message.find("\n", match.end())
    return failure.message[start:end if end >= 0 else None].strip()


def frames_in_output(text: str) -> tuple[Frame, ...]:
    """Project file:line references in any output, outermost first as Python prints them (V8
    and JVM stacks list the innermost first, and are turned round); Python's tracebacks too."""
    plain = ANSI_ESCAPE.sub("", text)
    stack = [Frame(m["file"].removeprefix("file://"), int(m["line"]),
                   (m["function"] or "").strip()) for m in V8_FRAME.finditer(plain)]
    stack += [Frame(_jvm_file(m["function"], m["file"]), int(m["line"]),
                    m["function"].rsplit(".", 1)[-1]) for m in JVM_FRAME.finditer(plain)
              if not RUNTIME_CLASSES.match(m["function"])]
    stack = [frame for frame in stack if not RUNTIME_FILES.search(frame.file)]
    stack.reverse()
    stack = [*(frame for frame in frames_in(plain) if not LIBRARY_PATH.search(frame.file)),
             *stack]
    seen = {(frame.file, frame.line) for frame in stack}
    # References outside the stacks: a stack's runtime lines are not the project's.
    rest = JVM_FRAME.sub("", V8_FRAME.sub("", plain))
    loose = [Frame(m["file"].removeprefix("./"), int(m["line"]), "")
             for pattern in (FILE_LINE, BABEL_ERROR) for m in pattern.finditer(rest)
             if not RUNTIME_FILES.search(m["file"]) and not m["file"].startswith(("http", "//"))]
    loose = [frame for frame in dict.fromkeys(loose)
             if (frame.file, frame.line) not in seen and
             not any(other.file.endswith(frame.file) and other.line == frame.line
                     for other in stack)]
    return tuple([*loose, *stack][-FRAMES_KEPT:])


def _jvm_file(function: str, file: str) -> str:
    """`calc.CalcTest.meanOfThree` in CalcTest.java → calc/CalcTest.java, the path under a
    source root (the context finds it under src/main/java or src/test/java)."""
    package = function.rsplit(".", 2)[0] if function.count(".") >= 2 else ""
    return f"{package.replace('.', '/')}/{file}" if package else file


def _cases(element: ElementTree.Element, suites: tuple[str, ...]
           ) -> list[tuple[tuple[str, ...], ElementTree.Element]]:
    found = []
    for child in element:
        if child.tag == "testsuite":
            found += _cases(child, (*suites, child.get("name", "")))
        elif child.tag == "testcase":
            found.append((suites, child))
    return found


def _junit_id(case: ElementTree.Element, suites: tuple[str, ...],
              frames: tuple[Frame, ...]) -> str:
    """`file::suite::name` when the report or a frame says the test's file, else the
    classname (Java's class, vitest's file) with the name."""
    name = case.get("name", "")
    file = case.get("file") or ""
    classname = case.get("classname", "")
    if not file and PurePosixPath(classname).suffix:
        file = classname  # vitest names the test file as the class
    if not file and classname in ("", "test"):  # node --test names neither file nor class
        test_frames = [frame.file for frame in frames if "test" in frame.file.lower()]
        file = test_frames[0] if test_frames else ""
    inner = [suite for suite in suites if suite and suite != file
             and not PurePosixPath(suite).suffix and suite != "(empty)"]
    if file:
        return "::".join([file, *inner, name])
    if classname and classname not in (name, "test"):
        return f"{classname}::{name}"
    return "::".join([*inner, name])


def _message(text: str) -> str:
    """A failure's text without colours, blank runs and runtime stack lines."""
    lines = []
    for line in ANSI_ESCAPE.sub("", text).strip().splitlines():
        stripped = line.strip()
        if (match := V8_FRAME.match(line)) and RUNTIME_FILES.search(match["file"]):
            continue
        if (match := JVM_FRAME.match(line)) and RUNTIME_CLASSES.match(match["function"]):
            continue
        if lines and not stripped and not lines[-1].strip():
            continue
        lines.append(line.rstrip())
    return short_message("\n".join(lines[:MESSAGE_LINES]))
