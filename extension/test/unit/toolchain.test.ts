// The toolchain check against made-up machines: a PATH of small scripts that answer as the real
// tools do, or are missing, and an os-release naming the distribution.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { blockingProblems, checkToolchain, installHint, Machine } from '../../src/toolchain';

const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n';
const GOOD_TOOLS = {
    python3: 'echo 3 12 1',
    cc: 'echo "cc (Debian 12.2.0-14) 12.2.0"',
    'c++': 'echo "c++ (Debian 12.2.0-14) 12.2.0"',
    cmake: 'echo "cmake version 3.25.1"',
};
const folders: string[] = [];

afterEach(() => folders.splice(0).forEach((folder) => rmSync(folder, { recursive: true, force: true })));

/** A machine whose PATH holds only `tools`: each a script that runs `body` whatever it is asked. */
function machineWith(tools: Record<string, string>, osRelease = DEBIAN, platform: NodeJS.Platform = 'linux'): Machine {
    const bin = mkdtempSync(join(tmpdir(), 'smallcoder-toolchain-'));
    folders.push(bin);
    for (const [name, body] of Object.entries(tools)) {
        writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
        chmodSync(join(bin, name), 0o755);
    }
    return { platform, env: { PATH: bin }, osRelease };
}

function without(...names: string[]): Record<string, string> {
    return Object.fromEntries(Object.entries(GOOD_TOOLS).filter(([name]) => !names.includes(name)));
}

test('a machine with Python 3.12, gcc and CMake 3.25 can build, and nothing is to install', async () => {
    const report = await checkToolchain(machineWith(GOOD_TOOLS));
    assert.equal(blockingProblems(report), '');
    assert.deepEqual(report.python, ['python3']);
    assert.equal(report.installHint, '');
    assert.ok(report.findings.every((finding) => finding.ok));
});

test('a missing compiler stops the build and names build-essential on Debian', async () => {
    const report = await checkToolchain(machineWith(without('cc', 'c++')));
    assert.match(blockingProblems(report), /no C and C\+\+ compiler on PATH/);
    assert.equal(report.installHint, 'sudo apt install build-essential');
});

test('a C compiler without a C++ one is not enough for llama.cpp', async () => {
    const report = await checkToolchain(machineWith(without('c++')));
    assert.match(blockingProblems(report), /no C\+\+ compiler/);
});

test('missing CMake is reported with its package but does not stop the build', async () => {
    const report = await checkToolchain(machineWith(without('cmake')));
    assert.equal(blockingProblems(report), '');
    const cmake = report.findings.find((finding) => finding.tool === 'cmake');
    assert.equal(cmake?.ok, false);
    assert.match(cmake?.detail ?? '', /no CMake on PATH/);
    assert.equal(report.installHint, 'sudo apt install cmake');
});

test('a CMake older than 3.21 is reported as old', async () => {
    const report = await checkToolchain(machineWith({ ...GOOD_TOOLS, cmake: 'echo "cmake version 3.16.3"' }));
    assert.match(report.findings.find((finding) => finding.tool === 'cmake')?.detail ?? '', /CMake 3\.16 is older than 3\.21/);
});

test('Python 3.10 stops the build, saying which Python was found', async () => {
    const report = await checkToolchain(machineWith({ ...GOOD_TOOLS, python3: 'echo 3 10 1' }));
    assert.equal(report.python, undefined);
    assert.match(blockingProblems(report), /no Python 3\.11 or newer \(found only python3 is 3\.10\)/);
    assert.equal(report.installHint, 'sudo apt install python3 python3-venv');
});

test('no Python at all is reported as none found on PATH', async () => {
    const report = await checkToolchain(machineWith(without('python3')));
    assert.match(blockingProblems(report), /no Python 3\.11 or newer \(none found on PATH\)/);
});

test('an old python3 beside a new python: the new one creates the environment', async () => {
    const report = await checkToolchain(machineWith({ ...GOOD_TOOLS, python3: 'echo 3 9 1', python: 'echo 3 12 1' }));
    assert.deepEqual(report.python, ['python']);
    assert.equal(blockingProblems(report), '');
});

test("a Python without ensurepip (Debian's python3 without python3-venv) cannot create the environment", async () => {
    const report = await checkToolchain(machineWith({ ...GOOD_TOOLS, python3: 'echo 3 11 0' }));
    assert.equal(report.python, undefined);
    assert.match(blockingProblems(report), /cannot create environments/);
});

test('a Python that fails to run counts as missing', async () => {
    const report = await checkToolchain(machineWith({ ...GOOD_TOOLS, python3: 'exit 1' }));
    assert.match(blockingProblems(report), /none found on PATH/);
});

test('the install command follows the distribution, by ID or ID_LIKE', async () => {
    const missing = (await checkToolchain(machineWith({}))).findings;
    const hint = (osRelease: string) => installHint({ platform: 'linux', env: {}, osRelease }, missing);
    assert.equal(hint('ID=fedora\n'), 'sudo dnf install python3 gcc gcc-c++ make cmake');
    assert.equal(hint('ID=linuxmint\nID_LIKE="ubuntu debian"\n'), 'sudo apt install python3 python3-venv build-essential cmake');
    assert.equal(hint('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), 'sudo dnf install python3 gcc gcc-c++ make cmake');
    assert.equal(hint('ID=arch\n'), 'sudo pacman -S --needed python base-devel cmake');
    assert.match(hint('ID=nixos\n'), /^Install Python 3\.11\+ with its venv module, a C and C\+\+ compiler, CMake with your system's package manager\.$/);
});

test("on macOS a missing compiler means Xcode's command line tools", async () => {
    const report = await checkToolchain(machineWith(GOOD_TOOLS, '', 'darwin')); // no xcode-select on PATH
    assert.match(blockingProblems(report), /command line tools are not installed/);
    assert.equal(report.installHint, 'xcode-select --install');
});

test('on Windows the hints are winget commands, one a line', () => {
    const missing = [
        { tool: 'compiler' as const, ok: false, detail: '', required: true },
        { tool: 'cmake' as const, ok: false, detail: '', required: false },
    ];
    const hint = installHint({ platform: 'win32', env: {}, osRelease: '' }, missing).split('\n');
    assert.equal(hint.length, 2);
    assert.match(hint[0], /^winget install Microsoft\.VisualStudio\.2022\.BuildTools .*VCTools/);
    assert.equal(hint[1], 'winget install Kitware.CMake');
});
