"""What a rewritten function must pass before it is offered: its callers' calls still bind, the
linters the workspace uses report nothing new, and the workspace's tests, run in a scratch copy
with limits, fail no test that passed before.

Parsing and keeping the signature are checked by `assist/actions.py` itself; these checks need
the workspace. Each returns a `CheckResult`, shown to the user whether it passed or not.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from pyflakes.checker import Checker
from pyflakes.messages import UndefinedName

from agent.limits import Limits
from agent.runner import TestCommand, TestCommandError, TestRun, run_tests
from agent.sandbox import Sandbox, SandboxError
from analyzers.calls import call_fits, python_call_sites, python_signature
from analyzers.definitions import definitions
from analyzers.index import WorkspaceIndex
from assist.workspace import WorkspaceContext
from model.engine import CancelToken

LINT_TIMEOUT_S = 60
TEST_TIMEOUT_S = 300
TEST_MEMORY_BYTES = 2 * 1024**3
MAX_COPY_BYTES = 512 * 1024**2
MAX_SHOWN_CALLS = 3
TSC_SCRIPT = "node_modules/typescript/bin/tsc"
ESLINT_CONFIGS = ("eslint.config.js", "eslint.config.mjs", "eslint.config.cjs",
                  "eslint.config.ts", ".eslintrc", ".eslintrc.js", ".eslintrc.cjs",
                  ".eslintrc.json", ".eslintrc.yml", ".eslintrc.yaml")


class Cancelled(Exception):
    """The user cancelled while a check ran."""


@dataclass(frozen=True)
class CheckResult:
    name: str  # "parses", "signature", "callers", "ruff", "pyflakes", "eslint", "tsc", "tests"
    passed: bool
    detail: str

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Rewrite:
    """One candidate: the file before and after, the function's name and new text."""

    path: str  # relative to the workspace folder, forward slashes
    language: str
    old_document: str
    new_document: str
    function_name: str
    new_function: str  # dedented
    is_method: bool


@dataclass
class RefactorChecks:
    """The checks of one refactor; the scratch copy for its tests is made once, on first use,
    and removed by `close`. `workspace_programs`: whether programs the workspace brings
    (node_modules/.bin/eslint) may run; the server allows them only with a test command, which
    the extension passes only in a trusted workspace."""

    workspace: Path | None
    path: str = ""  # the file's, relative to `workspace`, forward slashes
    index: WorkspaceIndex | None = None
    test_command: str = ""
    workspace_programs: bool = False
    cancel: CancelToken | None = None
    test_timeout_s: float = TEST_TIMEOUT_S
    max_copy_bytes: int = MAX_COPY_BYTES
    _sandbox: Sandbox | None = field(default=None, init=False, repr=False)
    _baseline: TestRun | None = field(default=None, init=False, repr=False)
    _tsc_baseline: TestRun | None = field(default=None, init=False, repr=False)
    _undefined_before: set[str] | None = field(default=None, init=False, repr=False)

    def run(self, rewrite: Rewrite, signature_changed: bool) -> list[CheckResult]:
        """The checks in order, cheapest first, stopping at the first that fails."""
        results: list[CheckResult] = []
        steps: list[Callable[[], CheckResult | None]] = [
            lambda: self.callers(rewrite, signature_changed),
            lambda: self.names(rewrite),
            *(lambda linter=linter: linter(self.workspace, rewrite)
              for linter in self.linters(rewrite.language)),
            lambda: self.typescript(rewrite),
            lambda: self.tests(rewrite)]
        for step in steps:
            result = step()
            if result is None:
                continue
            results.append(result)
            if not result.passed:
                break
        return results

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # ------------------------------------------------------------ callers

    def callers(self, rewrite: Rewrite, signature_changed: bool) -> CheckResult | None:
        if rewrite.language != "python":
            return None
        sites = [site for path, text in self._python_files(rewrite)
                 for site in python_call_sites(path, text, rewrite.function_name)]
        renamed = _defined_name(rewrite.new_function, rewrite.language)
        if sites and renamed not in (None, rewrite.function_name):
            shown = "; ".join(f"{site.path}:{site.line + 1} `{site.text}`"
                              for site in sites[:MAX_SHOWN_CALLS])
            return CheckResult("callers", False, f"renamed to `{renamed}`, but {len(sites)} "
                                                 f"call(s) still use `{rewrite.function_name}`: "
                                                 f"{shown}")
        if not signature_changed:
            return CheckResult("callers", True, f"signature kept: {len(sites)} call(s) unchanged")
        parsed = python_signature(rewrite.new_function)
        if parsed is None:
            return CheckResult("callers", False, "the rewritten function has no signature")
        signature, bound = parsed
        broken = [(site, why) for site in sites
                  if (why := call_fits(site, signature, bound and rewrite.is_method))]
        if broken:
            shown = "; ".join(f"{site.path}:{site.line + 1} `{site.text}` ({why})"
                              for site, why in broken[:MAX_SHOWN_CALLS])
            return CheckResult("callers", False,
                               f"{len(broken)} of {len(sites)} call(s) no longer fit: {shown}")
        return CheckResult("callers", True, f"{len(sites)} call(s) fit the new signature")

    # ------------------------------------------------------------ names

    def names(self, rewrite: Rewrite) -> CheckResult | None:
        """Python: names the rewritten file uses that nothing defines, and the original did not
        (pyflakes, in this process: nothing of the workspace runs). A rewrite that drops the
        function's own `import math` fails here, also where no test command is set. The
        original's are found once for all the candidates."""
        if rewrite.language != "python":
            return None
        if self._undefined_before is None:
            self._undefined_before = _undefined(rewrite.old_document)
        new = _undefined(rewrite.new_document) - self._undefined_before
        if not new:
            return CheckResult("names", True, "no undefined name")
        return CheckResult("names", False, f"uses {', '.join(f'`{n}`' for n in sorted(new))}"
                                           f", defined nowhere in {rewrite.path}")

    def _python_files(self, rewrite: Rewrite) -> list[tuple[str, str]]:
        files = [(rewrite.path, rewrite.new_document)]
        if self.index is not None:
            for path, _lines in self.index.references_to(rewrite.function_name):
                text = self.index.text_of(path)
                if path != rewrite.path and text is not None and path.endswith(".py"):
                    files.append((path, text))
        return files

    # ------------------------------------------------------------ linters

    def linters(self, language: str) -> list[Callable[[Path | None, Rewrite], CheckResult]]:
        """The linters the workspace is configured for and that can run here."""
        root = self.workspace
        if root is None:
            return []
        found: list[Callable[[Path | None, Rewrite], CheckResult]] = []
        if language == "python":
            if _uses_ruff(root) and _ruff_program() is not None:
                found.append(_ruff)
            if _uses_flake8(root) and find_spec("pyflakes") is not None:
                found.append(_pyflakes)
        elif (language in ("javascript", "typescript", "tsx") and self.workspace_programs
              and any((root / name).is_file() for name in ESLINT_CONFIGS)
              and (root / "node_modules" / ".bin" / "eslint").is_file()):
            found.append(_eslint)
        return found

    # ------------------------------------------------------------ tsc

    def typescript(self, rewrite: Rewrite) -> CheckResult | None:
        """The workspace's own tsc on the scratch copy, when it has a tsconfig.json and may run
        its programs: passed when the file has no type error the original did not have."""
        root = self.workspace
        if (rewrite.language not in ("typescript", "tsx") or root is None
                or not self.workspace_programs or not (root / "tsconfig.json").is_file()
                or not (root / TSC_SCRIPT).is_file()):
            return None
        # Started by its path in the copy, where the runner mounts node_modules: the shared
        # folder's real path is hidden from a confined run when it lies under /tmp.
        command = TestCommand(("node", TSC_SCRIPT, "--noEmit", "--pretty", "false", "-p", "."))
        try:
            sandbox = self._sandbox_made()
        except SandboxError as error:
            return CheckResult("tsc", False, f"cannot copy the workspace: {error}")
        after = self._run_on(command, sandbox, rewrite)
        if self._tsc_baseline is None:
            self._tsc_baseline = self._run(command, sandbox)
        new = Counter(_tsc_errors(after.output, rewrite.path)) - Counter(
            _tsc_errors(self._tsc_baseline.output, rewrite.path))
        if after.timed_out:
            return CheckResult("tsc", False, f"tsc did not finish in {self.test_timeout_s:.0f} s")
        if new:
            return CheckResult("tsc", False, "new: " + "; ".join(list(new.elements())[:3]))
        return CheckResult("tsc", True, "no new type error")

    # ------------------------------------------------------------ tests

    def tests(self, rewrite: Rewrite) -> CheckResult | None:
        """The test command on the rewritten file in the scratch copy; when it fails, the same
        command on the original decides whether those failures were there already."""
        if not self.test_command or self.workspace is None:
            return None
        try:
            command = TestCommand.parse(self.test_command)
            sandbox = self._sandbox_made()
        except (TestCommandError, SandboxError) as error:
            return CheckResult("tests", False, f"cannot run the tests: {error}")
        after = self._run_on(command, sandbox, rewrite)
        if after.passed:
            return CheckResult("tests", True, f"`{command}` passes ({after.duration_s:.1f} s)")
        if after.timed_out:
            return CheckResult("tests", False, f"`{command}` did not finish in "
                                               f"{self.test_timeout_s:.0f} s")
        if self._baseline is None:
            self._baseline = self._run(command, sandbox)
        before = self._baseline
        if str(command) in before.failing_ids | after.failing_ids:
            # No per-test report (not pytest, or it could not start): failing before tells
            # nothing about what the rewrite did.
            return CheckResult("tests", False, f"`{command}` fails (exit code {after.exit_code}) "
                                               f"without naming the failing tests, before the "
                                               f"rewrite too: cannot tell whether it keeps "
                                               f"behaviour")
        new = sorted(after.failing_ids - before.failing_ids)
        if not before.passed and not new and after.failing_ids:
            return CheckResult("tests", True, f"`{command}`: the {len(after.failing_ids)} "
                                              f"failing test(s) failed before the rewrite too")
        what = ", ".join(new[:MAX_SHOWN_CALLS]) or f"exit code {after.exit_code}"
        said = [f.message.strip().splitlines()[-1][:200] for f in after.failures
                if f.test_id in new and f.message.strip()]
        what += f" ({said[0]})" if said else ""
        return CheckResult("tests", False, f"`{command}` fails after the rewrite and passed "
                                           f"before: {what}")

    def _sandbox_made(self) -> Sandbox:
        if self._sandbox is None:
            assert self.workspace is not None
            self._sandbox = Sandbox(self.workspace, self.max_copy_bytes)
        return self._sandbox

    def _run_on(self, command: TestCommand, sandbox: Sandbox, rewrite: Rewrite) -> TestRun:
        """`command` in the copy holding the rewritten file; the original is put back after."""
        sandbox.write(rewrite.path, rewrite.new_document)
        try:
            return self._run(command, sandbox)
        finally:
            sandbox.write(rewrite.path, rewrite.old_document)

    def _run(self, command: TestCommand, sandbox: Sandbox) -> TestRun:
        run = run_tests(command, sandbox.root, cancel=self.cancel,
                        limits=Limits(timeout_s=self.test_timeout_s,
                                      memory_bytes=TEST_MEMORY_BYTES),
                        shared_folders=sandbox.shared_folders)
        if run.cancelled:
            raise Cancelled("cancelled")
        return run


def checks_in(workspace: WorkspaceContext, path: str, test_command: str = "",
              cancel: CancelToken | None = None, max_copy_bytes: int = MAX_COPY_BYTES
              ) -> RefactorChecks:
    """The checks of a refactor of the file at `path` (absolute): its workspace folder's linters,
    and `test_command` run in a scratch copy. Programs the workspace brings (its eslint) run only
    with a test command: whoever gives one trusts the workspace's code to run (the extension
    sends one only in a trusted workspace)."""
    index = workspace.index_for(path)
    folder = index.root if index is not None else workspace.folder_of(path)
    relative = Path(path).resolve().relative_to(folder).as_posix() if folder else path
    return RefactorChecks(folder, relative, index, test_command=test_command,
                          workspace_programs=bool(test_command), cancel=cancel,
                          max_copy_bytes=max_copy_bytes)


def _tsc_errors(output: str, path: str) -> list[str]:
    """tsc's errors in `path` (`file(line,col): error TS1234: message`), without positions."""
    pattern = rf"^{re.escape(path)}\(\d+,\d+\): error (TS\d+: .*)$"
    return re.findall(pattern, output, re.MULTILINE)


def _uses_ruff(root: Path) -> bool:
    if (root / "ruff.toml").is_file() or (root / ".ruff.toml").is_file():
        return True
    return "ruff" in _pyproject_tools(root)


def _uses_flake8(root: Path) -> bool:
    if (root / ".flake8").is_file():
        return True
    for name in ("setup.cfg", "tox.ini"):
        config = root / name
        if config.is_file() and re.search(r"^\[(flake8|pyflakes)\]", config.read_text(
                errors="replace"), re.MULTILINE):
            return True
    return bool({"flake8", "pyflakes"} & _pyproject_tools(root))


def _pyproject_tools(root: Path) -> set[str]:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return set()
    try:
        return set(tomllib.loads(pyproject.read_text(errors="replace")).get("tool", {}))
    except tomllib.TOMLDecodeError:
        return set()


def _ruff_program() -> str | None:
    """SmallCoder's own ruff (its environment, then PATH): never a program the workspace
    brings, so an untrusted workspace cannot choose what runs."""
    own = Path(sys.executable).parent / "ruff"
    return str(own) if own.is_file() else shutil.which("ruff")


def _ruff(root: Path | None, rewrite: Rewrite) -> CheckResult:
    program = _ruff_program() or "ruff"

    def problems(text: str) -> list[str]:
        output = _lint([program, "check", "--no-cache", "--output-format", "json", "--exit-zero",
                        "--stdin-filename", rewrite.path, "-"], root, text)
        return [f"{item['code']} {item['message']}" for item in json.loads(output or "[]")]

    return _new_problems("ruff", problems, rewrite)


def _pyflakes(root: Path | None, rewrite: Rewrite) -> CheckResult:
    def problems(text: str) -> list[str]:
        output = _lint([sys.executable, "-m", "pyflakes"], root, text)
        return [line.split(": ", 1)[-1] for line in output.splitlines() if ": " in line]

    return _new_problems("pyflakes", problems, rewrite)


def _eslint(root: Path | None, rewrite: Rewrite) -> CheckResult:
    assert root is not None
    program = str(root / "node_modules" / ".bin" / "eslint")

    def problems(text: str) -> list[str]:
        output = _lint([program, "--format", "json", "--stdin", "--stdin-filename",
                        rewrite.path], root, text)
        return [f"{message.get('ruleId')} {message.get('message')}"
                for report in json.loads(output or "[]") for message in report["messages"]]

    return _new_problems("eslint", problems, rewrite)


def _new_problems(name: str, problems: Callable[[str], list[str]],
                  rewrite: Rewrite) -> CheckResult:
    """Passed when the rewritten file has no problem the original did not have (by rule and
    message, whatever the line): the workspace's old warnings are not the rewrite's fault."""
    try:
        new = Counter(problems(rewrite.new_document)) - Counter(problems(rewrite.old_document))
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as error:
        return CheckResult(name, False, f"{name} could not check the file: {error}")
    if new:
        return CheckResult(name, False, "new: " + "; ".join(list(new.elements())[:3]))
    return CheckResult(name, True, "nothing new")


def _lint(argv: list[str], root: Path | None, text: str) -> str:
    result = subprocess.run(argv, input=text, capture_output=True, text=True, cwd=root,
                            timeout=LINT_TIMEOUT_S, check=False)
    if result.returncode not in (0, 1) and not result.stdout:
        raise ValueError(result.stderr.strip()[-300:] or f"exit code {result.returncode}")
    return result.stdout


def _undefined(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):  # a rewrite that does not parse failed earlier
        return set()
    return {message.message_args[0] for message in Checker(tree).messages
            if isinstance(message, UndefinedName)}


def _defined_name(function: str, language: str) -> str | None:
    """The name a rewritten function is defined under (its outermost definition)."""
    found = definitions(function, language)
    return found[0].name if found else None
