"""The failure readers of every test runner, on what the real tools wrote: recorded output
(runner_fixtures/, see runner_projects.py) always, and the tools themselves where installed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from agent.isolation import isolation_name
from agent.reports import BUILD_FAILURE_ID, frames_in_output
from agent.runner import Limits, TestCommand, run_tests
from agent.runners import detect_runner, read_failures
from tests.agent.runner_projects import (
    FIXTURES,
    PROJECTS,
    RECORDED_ROOT,
    as_the_runner_sees,
    node_modules_with,
    write_project,
)

# project → the failing test ids, and for each a file:line that must be among its frames.
EXPECTED = {
    "node": {"test/calc.test.js::add sums two numbers": "test/calc.test.js:6",
             "test/calc.test.js::statistics::mean of a list": "test/calc.test.js:11"},
    "jest": {"test/calc.test.js::add sums two numbers": "test/calc.test.js:4",
             "test/calc.test.js::statistics > mean of a list": "test/calc.test.js:9"},
    "vitest": {"test/calc.test.ts::calc > adds two numbers": "test/calc.test.ts:6",
               "test/calc.test.ts::calc > takes the mean": "test/calc.test.ts:10"},
    "cargo": {"tests::adds": "src/lib.rs:15", "tests::mean_of_three": "src/lib.rs:20"},
    "maven": {"calc.CalcTest::addsTwoNumbers": "calc/CalcTest.java:10",
              "calc.CalcTest::meanOfThree": "calc/CalcTest.java:15"},
    "ctest": {"add_sums": "tests/test_calc.c:5", "mean_of_three": "tests/test_calc.c:9"},
    "go": {"example.com/calc::TestAdd": "calc_test.go:7",
           "example.com/calc::TestMean": "calc_test.go:13"},
}
# project → what the message of the first failing test says (the values compared).
MESSAGES = {"node": "-1 !== 5", "jest": "Received: -1", "vitest": "expected -1 to be 5",
            "cargo": "left: -1", "maven": "expected: <5> but was: <-1>",
            "ctest": "Assertion `add(2, 3) == 5'", "go": "Add(2, 3) = -1, want 5"}
# A broken build: where the compiler (or node's loader) says the error is.
BROKEN_AT = {"node": "calc.js:2", "jest": "calc.js:2", "cargo": "src/lib.rs:1", "maven":
             "src/main/java/calc/Calc.java:7", "ctest": "calc.c:4", "go": "calc.go:4"}


def locations(failure) -> set[str]:
    return {f"{frame.file}:{frame.line}" for frame in failure.frames}


def recorded(project: str, broken: bool = False):
    """The failures read from what the real tool wrote when it was recorded."""
    stem = f"{project}-broken" if broken else project
    command = PROJECTS[project][1]
    runner = detect_runner(tuple(command.split()), Path(RECORDED_ROOT))
    report = FIXTURES / f"{stem}.{'json' if project == 'jest' else 'xml'}"
    if project == "maven":  # surefire's reports are found in the copy: give them there
        return _maven_recorded(stem, runner, command)
    return read_failures(runner, command, 1, as_the_runner_sees((FIXTURES / f"{stem}.out")
                                                                 .read_text()),
                         report if report.is_file() else None, Path(RECORDED_ROOT), 0.0)


def _maven_recorded(stem, runner, command):
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        reports = Path(folder) / "target" / "surefire-reports"
        reports.mkdir(parents=True)
        (Path(folder) / "pom.xml").write_text("<project/>")
        for file in FIXTURES.glob(f"{stem}-TEST-*.xml"):
            (reports / file.name.removeprefix(f"{stem}-")).write_text(file.read_text())
        runner = detect_runner(tuple(command.split()), Path(folder))
        return read_failures(runner, command, 1,
                             as_the_runner_sees((FIXTURES / f"{stem}.out").read_text()), None,
                             Path(folder), 0.0)


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_recorded_output_gives_the_failing_tests_their_messages_and_lines(project):
    failures = recorded(project)
    assert {failure.test_id: failure for failure in failures}.keys() == EXPECTED[project].keys()
    for failure in failures:
        assert EXPECTED[project][failure.test_id] in locations(failure)
    first = min(failures, key=lambda failure: failure.test_id)
    assert MESSAGES[project] in first.message


@pytest.mark.parametrize("project", sorted(BROKEN_AT))
def test_a_recorded_build_failure_is_a_failure_at_the_compilers_line(project):
    failures = recorded(project, broken=True)
    assert len(failures) == 1
    assert BROKEN_AT[project] in locations(failures[0])
    if project not in ("node", "jest"):  # they report the test file that did not load
        assert failures[0].test_id == BUILD_FAILURE_ID


def tool_missing(project: str) -> str | None:
    tool = PROJECTS[project][2]
    if shutil.which(tool) is None:
        return f"{tool} is not installed here"
    if project in ("vitest", "jest") and node_modules_with(project) is None:
        return (f"{project} is not installed: set SMALLCODER_{project.upper()}_MODULES to a "
                f"node_modules with it")
    if project == "maven" and not (Path.home() / ".m2/repository/org/apache/maven/plugins/"
                                   "maven-surefire-plugin/3.2.5").is_dir():
        return "Maven cannot reach Maven Central here and surefire 3.2.5 is not in ~/.m2"
    return None


def live_project(project: str, root: Path, broken: bool = False) -> str:
    if (why := tool_missing(project)) is not None:
        pytest.skip(why)
    command = write_project(project, root, broken)
    if project in ("vitest", "jest"):
        shutil.copytree(node_modules_with(project), root / "node_modules", symlinks=True)
    return command


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_the_real_runner_gives_the_failing_tests_their_messages_and_lines(project, tmp_path):
    command = live_project(project, tmp_path)
    run = run_tests(TestCommand.parse(command), tmp_path, limits=Limits(timeout_s=300))
    assert not run.passed
    assert run.failing_ids == EXPECTED[project].keys()
    for failure in run.failures:
        assert EXPECTED[project][failure.test_id] in locations(failure)


@pytest.mark.parametrize("project", sorted(BROKEN_AT))
def test_the_real_runner_reports_a_broken_build_at_its_line(project, tmp_path):
    command = live_project(project, tmp_path, broken=True)
    run = run_tests(TestCommand.parse(command), tmp_path, limits=Limits(timeout_s=300))
    assert not run.passed
    assert any(BROKEN_AT[project] in locations(failure) for failure in run.failures)


@pytest.mark.parametrize(("command", "runner", "added"), [
    ("node --test", "node-test", "--test-reporter=junit"),
    ("node --test --test-reporter=tap", "node-test", None),
    ("npx vitest run", "vitest", "--reporter=junit"),
    ("npx jest --ci", "jest", "--json"),
    ("vitest --watch", "vitest", None),
    ("cargo test --release", "cargo", None),
    ("ctest --test-dir build", "ctest", "--output-junit"),
    ("go test ./...", "go", "-json"),
    ("make check", "generic", None),
])
def test_the_runner_is_told_by_the_command_and_only_a_report_option_is_added(
        command, runner, added, tmp_path):
    argv = tuple(command.split())
    found = detect_runner(argv, tmp_path)
    assert found.name == runner
    new_argv = found.argv(argv, tmp_path / "report.xml")
    # The user's words stay, in their order; anything added is the report option.
    assert [word for word in new_argv if word in argv] == list(argv)
    added_words = [word for word in new_argv if word not in argv]
    if added is None:
        assert added_words == []
    else:
        assert any(word.startswith(added) for word in added_words)
        assert all(word.startswith(("--test-reporter", "--reporter", "--outputFile", "--json",
                                    "--output-junit", "-json")) or word == str(
            tmp_path / "report.xml") for word in added_words)


def test_npm_test_passes_the_report_option_to_its_script_after_a_double_dash(tmp_path):
    (tmp_path / "package.json").write_text('{"scripts": {"test": "node --test"}}')
    runner = detect_runner(("npm", "test"), tmp_path)
    argv = runner.argv(("npm", "test"), tmp_path / "r.xml")
    assert runner.name == "node-test"
    assert argv[:3] == ["npm", "test", "--"]
    assert f"--test-reporter-destination={tmp_path / 'r.xml'}" in argv


def test_an_npm_script_of_several_commands_is_run_as_it_is(tmp_path):
    (tmp_path / "package.json").write_text('{"scripts": {"test": "tsc && node --test"}}')
    runner = detect_runner(("npm", "test"), tmp_path)
    assert runner.argv(("npm", "test"), tmp_path / "r.xml") == ["npm", "test"]


def test_node_test_summary_lines_are_not_taken_for_the_failure(tmp_path):
    """The reported bug: `# skipped 0 / # todo 0 / # duration_ms` read as the failure."""
    command = live_project("node", tmp_path)
    run = run_tests(TestCommand.parse(command), tmp_path, limits=Limits(timeout_s=120))
    for failure in run.failures:
        assert "duration_ms" not in failure.message
        assert failure.test_id != command


def test_an_unknown_command_gets_the_generic_reading_saying_what_could_not_be_read():
    output = "checking...\nsrc/util.js:12: values differ\n# skipped 0\n# duration_ms 90\n"
    from agent.runners import GENERIC
    [failure] = read_failures(GENERIC, "make check", 2, output, None, Path("/nowhere"), 0.0)
    assert failure.test_id == "make check"
    assert "exit status 2" in failure.message
    assert "no failing test could be read from the output of the command" in failure.message
    assert "src/util.js:12" in locations(failure)


def test_a_report_the_runner_did_not_write_is_not_an_error(tmp_path):
    from agent.runners import NODE_TEST
    [failure] = read_failures(NODE_TEST, "node --test", 1, "Error: cannot find module x\n",
                              tmp_path / "never-written.xml", tmp_path, time.time())
    assert "exit status 1" in failure.message


def test_a_report_with_a_document_type_is_refused_and_the_output_read(tmp_path):
    from agent.runners import NODE_TEST
    report = tmp_path / "report.xml"
    report.write_text('<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]>'
                      '<testsuites><testcase name="x"><failure>&a;</failure></testcase>'
                      '</testsuites>')
    [failure] = read_failures(NODE_TEST, "node --test", 1, "boom\n", report, tmp_path, 0.0)
    assert "declares a document type" in failure.message


def test_a_surefire_report_left_by_an_earlier_build_is_not_read(tmp_path):
    from agent.runners import MAVEN
    reports = tmp_path / "target" / "surefire-reports"
    reports.mkdir(parents=True)
    old = reports / "TEST-calc.OldTest.xml"
    old.write_text('<testsuite><testcase name="gone" classname="calc.OldTest">'
                   '<failure message="old"/></testcase></testsuite>')
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    failures = read_failures(MAVEN, "mvn test", 1, "[ERROR] something\n", None, tmp_path,
                             time.time())
    assert [failure.test_id for failure in failures] == ["mvn test"]


def test_frames_of_a_v8_stack_are_turned_outermost_first_without_the_runtimes():
    stack = ("    at add (calc.js:2:10)\n    at TestContext.<anonymous> (test/a.test.js:6:3)\n"
             "    at Test.run (node:internal/test_runner/test:796:25)\n")
    assert [(frame.file, frame.line) for frame in frames_in_output(stack)] == [
        ("test/a.test.js", 6), ("calc.js", 2)]


def test_recorded_ctest_junit_gives_the_failing_tests_and_their_assertions():
    from agent.runners import CTEST
    failures = read_failures(CTEST, "ctest --test-dir build", 8, "", FIXTURES / "ctest-junit.xml",
                             Path(RECORDED_ROOT), 0.0)
    assert {failure.test_id: locations(failure) for failure in failures} == {
        "add_sums": {"tests/test_calc.c:5"}, "mean_of_three": {"tests/test_calc.c:9"}}


def test_ctest_run_on_its_own_reports_through_its_junit_option(tmp_path):
    if (why := tool_missing("ctest")) is not None:
        pytest.skip(why)
    import subprocess
    write_project("ctest", tmp_path)
    subprocess.run(["cmake", "-S", ".", "-B", "build"], cwd=tmp_path, check=True,
                   capture_output=True)
    subprocess.run(["cmake", "--build", "build"], cwd=tmp_path, check=True, capture_output=True)
    run = run_tests(TestCommand.parse("ctest --test-dir build"), tmp_path,
                    limits=Limits(timeout_s=120))
    assert run.failing_ids == {"add_sums", "mean_of_three"}
    assert "tests/test_calc.c:5" in locations(next(
        failure for failure in run.failures if failure.test_id == "add_sums"))


def test_npm_test_runs_the_scripts_runner_with_its_report(tmp_path):
    command = live_project("node", tmp_path)
    assert command == "node --test"
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed here")
    run = run_tests(TestCommand.parse("npm test"), tmp_path, limits=Limits(timeout_s=120))
    assert run.failing_ids == EXPECTED["node"].keys()


@pytest.mark.parametrize(("command", "expected"), [
    ("mvn -q test", ["mvn", "-q", "test", "--offline"]),
    ("mvn -o -q test", ["mvn", "-o", "-q", "test"]),
    ("./mvnw --offline test", ["./mvnw", "--offline", "test"]),
])
def test_maven_runs_offline_where_the_run_has_no_network(command, expected, tmp_path):
    (tmp_path / "pom.xml").write_text("<project/>")
    argv = tuple(command.split())
    runner = detect_runner(argv, tmp_path)
    assert runner.argv(argv, None, offline=True) == expected
    assert runner.argv(argv, None, offline=False) == list(argv)


@pytest.mark.skipif(isolation_name() != "bubblewrap", reason="runs confined only under bubblewrap")
def test_the_offered_maven_command_runs_confined_from_the_read_only_cache(tmp_path):
    """`mvn -q test` (what Solve offers) online, confined: Maven tried to fetch a pom its cache
    lacked and failed on the read-only ~/.m2, and no test ran. Offline it builds from the cache."""
    command = live_project("maven", tmp_path).replace(" -o", "")
    run = run_tests(TestCommand.parse(command), tmp_path, limits=Limits(timeout_s=300))
    assert run.failing_ids == EXPECTED["maven"].keys()
