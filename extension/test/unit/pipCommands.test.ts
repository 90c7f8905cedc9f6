// The pip command lines of the managed environment: llama.cpp built as scripts/setup.sh builds
// it (same flags, from scripts/llama_flags.sh; same wheel folder), torch's CPU build for training.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { lacksTorchCpuBuild, llamaBuildFlags, llamaWheelFolder, smallcoderHome, trainingInstallArgs } from '../../src/pipCommands';

const SETUP_SH = readFileSync(join(process.cwd(), 'scripts', 'setup.sh'), 'utf8');
const LLAMA_FLAGS_SH = readFileSync(join(process.cwd(), 'scripts', 'llama_flags.sh'), 'utf8');
const PINS = ['torch==2.13.0', 'transformers==5.23.0', 'peft==0.21.2', 'matplotlib==3.11.2'];

test("the llama.cpp build flags on x86-64 are scripts/setup.sh's AMX guard", () => {
    assert.match(SETUP_SH, /source scripts\/llama_flags\.sh/);
    const fromSetup = /LLAMA_CFLAGS="([^"]*)"/.exec(LLAMA_FLAGS_SH)?.[1];
    assert.ok(fromSetup, 'scripts/llama_flags.sh sets no LLAMA_CFLAGS');
    assert.equal(llamaBuildFlags('x64'), fromSetup);
    assert.equal(llamaBuildFlags('arm64'), '');
});

test("the wheel folder is the one scripts/setup.sh computes, so llama.cpp compiles once per machine", () => {
    for (const flags of [llamaBuildFlags('x64'), '']) {
        const requirement = 'llama-cpp-python==0.3.36';
        const key = execFileSync('bash', ['-c', 'echo "$LLAMA $LLAMA_CFLAGS" | sha256sum | cut -c1-16'], {
            env: { ...process.env, LLAMA: requirement, LLAMA_CFLAGS: flags },
        })
            .toString()
            .trim();
        assert.equal(llamaWheelFolder('/home/me/.cache/smallcoder', requirement, flags), join('/home/me/.cache/smallcoder', 'wheels', key));
    }
    assert.match(SETUP_SH, /WHEELS=\$\{SMALLCODER_HOME:-\$HOME\/\.cache\/smallcoder\}\/wheels\/\$\(echo "\$LLAMA \$LLAMA_CFLAGS" \| sha256sum \| cut -c1-16\)/);
});

test('SMALLCODER_HOME is honoured, ~ expanded, else ~/.cache/smallcoder', () => {
    assert.equal(smallcoderHome({ SMALLCODER_HOME: '~/sc' }, '/home/me'), '/home/me/sc');
    assert.equal(smallcoderHome({}, '/home/me'), join('/home/me', '.cache', 'smallcoder'));
});

test('on Linux x86-64 torch is pinned to its CPU build; the CPU index only when asked', () => {
    const args = trainingInstallArgs(PINS, false, 'linux', 'x64');
    assert.deepEqual(args.slice(-4), ['torch==2.13.0+cpu', 'transformers==5.23.0', 'peft==0.21.2', 'matplotlib==3.11.2']);
    assert.ok(!args.includes('--extra-index-url'));
    const withIndex = trainingInstallArgs(PINS, true, 'linux', 'x64');
    assert.equal(withIndex[withIndex.indexOf('--extra-index-url') + 1], 'https://download.pytorch.org/whl/cpu');
});

test("on macOS and Windows PyPI's torch is already the CPU build: the pins go as they are", () => {
    for (const platform of ['darwin', 'win32'] as const) {
        assert.deepEqual(trainingInstallArgs(PINS, false, platform, 'x64').slice(-4), PINS);
    }
    assert.deepEqual(trainingInstallArgs(PINS, false, 'linux', 'arm64').slice(-4), PINS);
});

test("pip's error for a missing CPU build is told apart from other failures", () => {
    assert.ok(lacksTorchCpuBuild('ERROR: Could not find a version that satisfies the requirement torch==2.13.0+cpu (from versions: 2.12.0, 2.13.0)\nERROR: No matching distribution found for torch==2.13.0+cpu'));
    assert.ok(!lacksTorchCpuBuild('ERROR: No matching distribution found for peft==0.21.2'));
    assert.ok(!lacksTorchCpuBuild('OSError: [Errno 28] No space left on device'));
});
