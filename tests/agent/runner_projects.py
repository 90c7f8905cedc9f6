"""Small projects, one per test runner, each with a planted bug (`add` subtracts) that makes
two of its tests fail and one pass; and a broken-build variant of some. The runner tests run
the real tools on them, and `python -m tests.agent.runner_projects [NAME ...]` records what the
tools wrote into runner_fixtures/ (the project's path written as /WORKSPACE), for the tests
that read recorded output where a tool is missing. ctest-junit.xml is ctest's own
`--output-junit` report of the CMake project, built by hand first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "runner_fixtures"
RECORDED_ROOT = "/WORKSPACE"

NODE = {
    "package.json": '{"name": "calc", "version": "1.0.0", "scripts": {"test": "node --test"}}\n',
    "calc.js": """\
function add(a, b) {
  return a - b;
}

function mean(values) {
  return values.reduce((sum, v) => add(sum, v), 0) / values.length;
}

module.exports = { add, mean };
""",
    "test/calc.test.js": """\
const test = require('node:test');
const assert = require('node:assert');
const { add, mean } = require('../calc');

test('add sums two numbers', () => {
  assert.strictEqual(add(2, 3), 5);
});

test.describe('statistics', () => {
  test.it('mean of a list', () => {
    assert.strictEqual(mean([1, 2, 3]), 2);
  });
});

test('a passing one', () => {
  assert.ok(true);
});
""",
}

VITEST = {
    "package.json": '{"name": "calc-ts", "version": "1.0.0", "type": "module"}\n',
    "src/calc.ts": """\
export function add(a: number, b: number): number {
  return a - b;
}

export function mean(values: number[]): number {
  return values.reduce((sum, v) => add(sum, v), 0) / values.length;
}
""",
    "test/calc.test.ts": """\
import { describe, expect, it } from "vitest";
import { add, mean } from "../src/calc";

describe("calc", () => {
  it("adds two numbers", () => {
    expect(add(2, 3)).toBe(5);
  });

  it("takes the mean", () => {
    expect(mean([1, 2, 3])).toBe(2);
  });

  it("passes", () => {
    expect(1).toBe(1);
  });
});
""",
}

JEST = {
    "package.json": '{"name": "calc", "version": "1.0.0", "scripts": {"test": "jest"}}\n',
    "calc.js": NODE["calc.js"],
    "test/calc.test.js": """\
const { add, mean } = require('../calc');

test('add sums two numbers', () => {
  expect(add(2, 3)).toBe(5);
});

describe('statistics', () => {
  test('mean of a list', () => {
    expect(mean([1, 2, 3])).toBe(2);
  });
});

test('a passing one', () => {
  expect(true).toBe(true);
});
""",
}

CARGO = {
    "Cargo.toml": '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n',
    "src/lib.rs": """\
pub fn add(a: i32, b: i32) -> i32 {
    a - b
}

pub fn mean(values: &[i32]) -> i32 {
    values.iter().fold(0, |sum, v| add(sum, *v)) / values.len() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(2, 3), 5);
    }

    #[test]
    fn mean_of_three() {
        assert_eq!(mean(&[1, 2, 3]), 2, "mean of 1, 2, 3");
    }

    #[test]
    fn passes() {
        assert!(true);
    }
}
""",
}

MAVEN = {
    "pom.xml": """\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.smallcoder.bench</groupId>
  <artifactId>calc</artifactId>
  <version>1.0</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency>
      <groupId>org.junit.jupiter</groupId>
      <artifactId>junit-jupiter</artifactId>
      <version>5.10.2</version>
      <scope>test</scope>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><artifactId>maven-compiler-plugin</artifactId><version>3.13.0</version></plugin>
      <plugin><artifactId>maven-surefire-plugin</artifactId><version>3.2.5</version></plugin>
      <plugin><artifactId>maven-resources-plugin</artifactId><version>3.3.1</version></plugin>
    </plugins>
  </build>
</project>
""",
    "src/main/java/calc/Calc.java": """\
package calc;

public final class Calc {
    private Calc() {}

    public static int add(int a, int b) {
        return a - b;
    }

    public static int mean(int[] values) {
        int sum = 0;
        for (int value : values) {
            sum = add(sum, value);
        }
        return sum / values.length;
    }
}
""",
    "src/test/java/calc/CalcTest.java": """\
package calc;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class CalcTest {
    @Test
    void addsTwoNumbers() {
        assertEquals(5, Calc.add(2, 3));
    }

    @Test
    void meanOfThree() {
        assertEquals(2, Calc.mean(new int[] {1, 2, 3}), "mean of 1, 2, 3");
    }

    @Test
    void passes() {
        assertEquals(1, 1);
    }
}
""",
}

CMAKE = {
    "CMakeLists.txt": """\
cmake_minimum_required(VERSION 3.16)
project(calc C)
enable_testing()
add_library(calc calc.c)
add_executable(test_calc tests/test_calc.c)
target_link_libraries(test_calc calc)
target_include_directories(test_calc PRIVATE ${CMAKE_SOURCE_DIR})
add_test(NAME add_sums COMMAND test_calc add)
add_test(NAME mean_of_three COMMAND test_calc mean)
add_test(NAME passes COMMAND test_calc pass)
""",
    "calc.h": "int add(int a, int b);\nint mean(const int *values, int count);\n",
    "calc.c": """\
#include "calc.h"

int add(int a, int b) {
    return a - b;
}

int mean(const int *values, int count) {
    int sum = 0;
    for (int i = 0; i < count; i++) sum = add(sum, values[i]);
    return sum / count;
}
""",
    "tests/test_calc.c": """\
#include <assert.h>
#include <string.h>
#include "calc.h"

static void test_add(void) { assert(add(2, 3) == 5); }

static void test_mean(void) {
    int values[] = {1, 2, 3};
    assert(mean(values, 3) == 2);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "add") == 0) test_add();
    if (argc > 1 && strcmp(argv[1], "mean") == 0) test_mean();
    return 0;
}
""",
    # Builds, then runs ctest with the arguments given (the agent adds --output-junit only
    # when the command is ctest itself).
    "check.sh": """\
#!/bin/sh
set -e
cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug > /dev/null
cmake --build build
ctest --test-dir build --output-on-failure "$@"
""",
}

GO = {
    "go.mod": "module example.com/calc\n\ngo 1.19\n",
    "calc.go": """\
package calc

func Add(a, b int) int {
\treturn a - b
}

func Mean(values []int) int {
\tsum := 0
\tfor _, v := range values {
\t\tsum = Add(sum, v)
\t}
\treturn sum / len(values)
}
""",
    "calc_test.go": """\
package calc

import "testing"

func TestAdd(t *testing.T) {
\tif got := Add(2, 3); got != 5 {
\t\tt.Errorf("Add(2, 3) = %d, want 5", got)
\t}
}

func TestMean(t *testing.T) {
\tif got := Mean([]int{1, 2, 3}); got != 2 {
\t\tt.Fatalf("Mean = %d, want 2", got)
\t}
}

func TestPasses(t *testing.T) {}
""",
}

# name → (files, test command, tool that must be on PATH, (path, old, new) breaking the build)
PROJECTS = {
    "node": (NODE, "node --test", "node", ("calc.js", "return a - b;", "return a - ;")),
    "vitest": (VITEST, "npx vitest run", "npx", None),
    "jest": (JEST, "npx jest", "npx", ("calc.js", "return a - b;", "return a - ;")),
    "cargo": (CARGO, "cargo test", "cargo", ("src/lib.rs", "    a - b\n", "    a - b;\n")),
    "maven": (MAVEN, "mvn -o -q test", "mvn",
              ("src/main/java/calc/Calc.java", "return a - b;", "return a - b")),
    "ctest": (CMAKE, "sh check.sh", "cmake", ("calc.c", "return a - b;", "return a - b")),
    "go": (GO, "go test ./...", "go", ("calc.go", "return a - b", "return a - c")),
}


def write_project(name: str, root: Path, broken_build: bool = False) -> str:
    """Write project `name` under `root`; its test command."""
    files, command, _tool, breakage = PROJECTS[name]
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if broken_build and breakage is not None:
        path, old, new = breakage
        (root / path).write_text((root / path).read_text().replace(old, new))
    return command


def node_modules_with(package: str) -> Path | None:
    """A node_modules holding `package` (vitest, jest): SMALLCODER_<PACKAGE>_MODULES, else
    the one scripts/setup_test_tools.sh installs them in, else the repository's own."""
    repository = Path(__file__).resolve().parents[2]
    for folder in (os.environ.get(f"SMALLCODER_{package.upper()}_MODULES"),
                   str(repository / ".tools" / "test-runners" / "node_modules"),
                   str(repository / "node_modules")):
        if folder and (Path(folder) / package / "package.json").is_file():
            return Path(folder)
    return None


def as_the_runner_sees(output: str) -> str:
    """Recorded output with paths relative to the copy, as agent.runner hands it on."""
    return output.replace(f"{RECORDED_ROOT}/", "")


def record(name: str, broken_build: bool = False) -> None:
    """Run the real tool as the agent would (its report option added) and keep what it wrote:
    its output, and its report or surefire's reports, with the project's path as /WORKSPACE."""
    from agent.runners import detect_runner, environment_for

    stem = f"{name}-broken" if broken_build else name
    with tempfile.TemporaryDirectory(prefix="smallcoder-record-") as folder:
        root = Path(folder).resolve() / "project"
        root.mkdir()
        command = write_project(name, root, broken_build)
        if name in ("vitest", "jest"):
            modules = node_modules_with(name)
            if modules is None:
                raise SystemExit(f"{name} is not installed: set SMALLCODER_{name.upper()}_MODULES")
            shutil.copytree(modules, root / "node_modules", symlinks=True)
        runner = detect_runner(tuple(command.split()), root)
        report = Path(folder) / "report.xml"
        completed = subprocess.run(runner.argv(tuple(command.split()), report), cwd=root,
                                   env={**os.environ, **environment_for(runner, root)},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=600, check=False)
        kept = {f"{stem}.out": completed.stdout.decode(errors="replace")}
        if report.is_file():
            kept[f"{stem}.json" if name == "jest" else f"{stem}.xml"] = report.read_text()
        for file in sorted(root.glob("target/surefire-reports/TEST-*.xml")):
            kept[f"{stem}-{file.name}"] = file.read_text()
        FIXTURES.mkdir(exist_ok=True)
        for file_name, text in kept.items():
            (FIXTURES / file_name).write_text(text.replace(str(root), RECORDED_ROOT))
        print(f"{stem}: runner {runner.name}, exit {completed.returncode}, kept {sorted(kept)}")


if __name__ == "__main__":
    for project in sys.argv[1:] or [*PROJECTS, *(f"{name}-broken" for name, spec in
                                                  PROJECTS.items() if spec[3])]:
        record(project.removesuffix("-broken"), project.endswith("-broken"))
