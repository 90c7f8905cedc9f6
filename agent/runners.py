"""Which test runner a command starts, the report option it documents, and reading its result.

The runner is told by the command (`node --test`, `npx vitest`, `npx jest`, `cargo test`,
`mvn test`, `ctest`, `go test`, `npm test` through package.json's script) and the project's
files. The user's command is never rewritten but for one report option the runner documents,
added in the run of the scratch copy, and, in a confined run, which has no network, Maven's
`--offline`. A report the runner did not write is not an error: the output is read instead,
down to the generic reading (exit status, file:line references), which says what could not be
read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePath

from agent.failures import Failure, UnsafeReport, short_message
from agent.reports import (
    ANSI_ESCAPE,
    failures_from_compiler,
    failures_from_ctest,
    failures_from_go_json,
    failures_from_jest_json,
    failures_from_junit_report,
    failures_from_libtest,
    frames_in_output,
    generic_failure,
)

OUTPUT_DETAIL_CHARS = 1500
MAX_REPORT_BYTES = 20 * 1024 * 1024
# Where Maven's surefire (and failsafe) write their reports, per module.
SUREFIRE_FOLDERS = ("target/surefire-reports", "target/failsafe-reports")
MAX_MODULE_DEPTH = 3
# A package.json script is one command when it has none of these.
SHELL_OPERATORS = ("&&", "||", ";", "|", ">", "<", "`", "$(")
# `go build` and `go test` write their cache here, in the copy: the user's cache is read-only
# under bubblewrap, and one shared between workspaces could be poisoned by a hostile test.
GO_CACHE_FOLDER = ".smallcoder-cache/go-build"
NPM_TEST = (("npm", "test"), ("npm", "t"), ("npm", "run", "test"), ("npm", "run-script", "test"))


@dataclass(frozen=True)
class Runner:
    """A test runner as the agent drives it."""

    name: str  # "node-test", "vitest", "jest", "cargo", "maven", "ctest", "go", "node", "generic"
    report_options: tuple[str, ...] = ()  # with REPORT standing for the report's path
    through_npm: bool = False  # `npm test`: options go after `--` to the script
    # The runner's documented option for working without the network, and the spellings of it
    # a command may already have: a confined run has none (see `argv`).
    offline_options: tuple[str, ...] = ()

    @property
    def reserves_address_space(self) -> bool:
        """Runs on V8 or the JVM, whose reservations an address-space limit takes for use."""
        return self.name in ("node-test", "vitest", "jest", "maven", "node")

    def argv(self, argv: tuple[str, ...], report: Path | None, offline: bool = False
             ) -> list[str]:
        """The command with the runner's report option added, and, when the run has no network
        (`offline`), its offline option: Maven online tries to fetch what its cache lacks, and
        fails on the read-only cache, where offline it builds from what it has. Nothing else."""
        if offline and self.offline_options and not set(argv) & set(self.offline_options):
            argv = (*argv, self.offline_options[0])
        options = [option.replace("REPORT", str(report)) for option in self.report_options
                   if report is not None]
        if not options:
            return list(argv)
        if self.through_npm:
            return [*argv, "--", *options]
        if self.name == "go":  # flags before the packages: `go test -json ./...`
            index = argv.index("test") + 1
            return [*argv[:index], *options, *argv[index:]]
        return [*argv, *options]


GENERIC = Runner("generic")
NODE_TEST = Runner("node-test", ("--test-reporter=spec", "--test-reporter-destination=stdout",
                                 "--test-reporter=junit", "--test-reporter-destination=REPORT"))
# jest's own JSON report (jest-junit is a separate package a project may not have).
JEST = Runner("jest", ("--json", "--outputFile=REPORT"))
VITEST = Runner("vitest", ("--reporter=default", "--reporter=junit",
                           "--outputFile.junit=REPORT"))
CARGO = Runner("cargo")  # libtest's JSON needs a nightly compiler: its text is read
# surefire writes its XML reports without being asked
MAVEN = Runner("maven", offline_options=("--offline", "-o"))
CTEST = Runner("ctest", ("--output-junit", "REPORT"))
GO = Runner("go", ("-json",))
NODE_OTHER = Runner("node")  # another command on V8 or the JVM: read like any command


def detect_runner(argv: tuple[str, ...], root: Path) -> Runner:
    """The runner `argv` starts in the workspace `root`; GENERIC when none is known."""
    if _is_npm_test(argv):
        return _npm_script_runner(argv, root)
    return _runner_of(argv, root)


def _runner_of(argv: tuple[str, ...], root: Path) -> Runner:
    program = PurePath(argv[0]).name
    rest = argv[1:]
    if program == "node" and "--test" in rest:
        own = any(option.startswith("--test-reporter") for option in rest)
        return Runner("node-test") if own else NODE_TEST
    if program in ("npx", "pnpm", "yarn", "bunx") and rest:
        return _runner_of(rest[1:] if rest[0] in ("exec", "dlx") else rest, root)
    if program == "vitest":
        own = any(option.startswith(("--reporter", "--outputFile")) for option in rest)
        return Runner("vitest") if own or "watch" in rest or "--watch" in rest else VITEST
    if program == "jest":
        own = any(option.startswith(("--json", "--outputFile")) for option in rest)
        return Runner("jest") if own or "--watch" in rest or "--watchAll" in rest else JEST
    if program == "cargo" and "test" in rest:
        return CARGO
    if program in ("mvn", "mvnw", "mvn.cmd") and (root / "pom.xml").is_file():
        return MAVEN
    if program in ("node", "npm", "npx", "pnpm", "yarn", "java", "gradle", "gradlew"):
        return NODE_OTHER
    if program == "ctest":
        return Runner("ctest") if "--output-junit" in rest else CTEST
    if program == "go" and rest[:1] == ("test",):
        return Runner("go") if "-json" in rest else GO
    return GENERIC


def _is_npm_test(argv: tuple[str, ...]) -> bool:
    return any(tuple(argv[:len(form)]) == form for form in NPM_TEST)


def _npm_script_runner(argv: tuple[str, ...], root: Path) -> Runner:
    """`npm test` runs package.json's test script: its runner, with the report option passed
    after `--` (npm's documented way) when the script is one command taking options last."""
    try:
        scripts = json.loads((root / "package.json").read_text(encoding="utf-8"))["scripts"]
        script = str(scripts["test"])
    except (OSError, ValueError, KeyError, TypeError):
        return NODE_OTHER
    words = tuple(script.split())
    if not words or any(operator in script for operator in SHELL_OPERATORS):
        return NODE_OTHER
    runner = _runner_of(words, root)
    # Options after a file argument would go to node's test files, not to node.
    takes_options_last = runner.name != "node-test" or all(
        word.startswith("-") for word in words[1:])
    if not runner.report_options or "--" in argv or not takes_options_last:
        return Runner(runner.name)
    return Runner(runner.name, runner.report_options, through_npm=True)


def environment_for(runner: Runner, copy: Path) -> dict[str, str]:
    """Variables a runner needs to work in a confined copy."""
    if runner.name == "go" or (copy / "go.mod").is_file():
        return {"GOCACHE": str(copy / GO_CACHE_FOLDER), "GOFLAGS": os.environ.get(
            "GOFLAGS", "-mod=mod"), "GOTOOLCHAIN": "local"}
    return {}


def read_failures(runner: Runner, command: str, exit_code: int, output: str,
                  report: Path | None, copy: Path, started_at: float) -> list[Failure]:
    """The failures of a finished run: from the runner's report when it wrote one, else from
    its output; any non-zero exit with nothing read is one generic failure saying why."""
    problems: list[str] = []
    failures = _from_reports(runner, report, copy, started_at, problems)
    if any(not failure.frames for failure in failures):
        failures = _with_output_details(failures, output)
    if not failures and exit_code != 0:
        failures = _from_output(runner, output)
    if not failures and exit_code != 0:
        if not problems:
            problems.append(f"no failing test could be read from the output of the "
                            f"{runner.name if runner is not GENERIC else 'command'}: "
                            f"shown are its exit status, file:line references and last lines")
        failures = [generic_failure(command, exit_code, output, "; ".join(problems))]
    return failures


def _from_reports(runner: Runner, report: Path | None, copy: Path, started_at: float,
                  problems: list[str]) -> list[Failure]:
    files = [report] if report is not None and runner.report_options else []
    if runner.name == "maven":
        files = _surefire_reports(copy)
    failures: list[Failure] = []
    for file in files:
        try:
            if file.stat().st_mtime < started_at - 1:
                continue  # left by an earlier build: not this run's
            if file.stat().st_size > MAX_REPORT_BYTES:
                problems.append(f"{file.name} is over {MAX_REPORT_BYTES >> 20} MB: not read")
                continue
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # the runner did not write it (it crashed, or failed to build)
        if not text.strip():
            continue
        # Paths relative to the copy, as in the output: stable from run to run.
        text = text.replace(f"{copy.resolve()}{os.sep}", "")
        if runner.name == "jest":
            failures += failures_from_jest_json(text)
            continue
        try:
            failures += failures_from_junit_report(text)
        except (UnsafeReport, SyntaxError) as error:
            problems.append(f"the {runner.name} report {file.name} could not be read: {error}")
    return failures


def _with_output_details(failures: list[Failure], output: str) -> list[Failure]:
    """A failure the report gives no location for (node --test reports a test file that did
    not load as one failing test, "test failed") gets the start of the output, where the
    runner printed the error, and the output's file:line references."""
    head = ANSI_ESCAPE.sub("", output)[:OUTPUT_DETAIL_CHARS].strip()
    return [failure if failure.frames else
            Failure(failure.test_id, short_message(f"{failure.message}\n{head}"),
                    frames_in_output(head))
            for failure in failures]


def _from_output(runner: Runner, output: str) -> list[Failure]:
    """The runner's own text first, then compiler errors, then the texts of runners that a
    script may have started (cargo's libtest, ctest)."""
    if runner.name == "go":
        found = failures_from_go_json(output)
        if found:
            return found
    readers = {"cargo": (failures_from_compiler, failures_from_libtest),
               "ctest": (failures_from_ctest, failures_from_compiler)}.get(
        runner.name, (failures_from_compiler, failures_from_libtest, failures_from_ctest))
    for reader in readers:
        found = reader(output)
        if found:
            return found
    return []


def _surefire_reports(copy: Path) -> list[Path]:
    found = []
    for folder, subfolders, _files in os.walk(copy):
        depth = len(Path(folder).relative_to(copy).parts)
        subfolders[:] = [name for name in subfolders if depth < MAX_MODULE_DEPTH
                         and not name.startswith(".") and name != "node_modules"]
        for name in SUREFIRE_FOLDERS:
            reports = Path(folder) / name
            if reports.is_dir():
                found += sorted(reports.glob("TEST-*.xml"))
    return found
