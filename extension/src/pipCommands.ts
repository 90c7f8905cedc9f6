/**
 * The pip command lines SmallCoder runs in the Python that serves it: llama.cpp's wheel built once
 * with scripts/setup.sh's flags and wheel folder, the server, the training packages. Free of
 * `vscode`, so that the unit tests check them.
 */
import * as cp from 'child_process';
import { createHash } from 'crypto';
import * as os from 'os';
import * as path from 'path';

/**
 * llama.cpp builds for this CPU (-march=native), which turns on its AMX kernels where the CPU
 * reports AMX; a VM that reports AMX without enabling its registers crashes on the first decode.
 * The same flags as scripts/setup.sh (a unit test reads them there).
 */
export function llamaBuildFlags(arch: string = process.arch): string {
    return arch === 'x64' ? '-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' : '';
}

/** $SMALLCODER_HOME, as model/home.py resolves it. */
export function smallcoderHome(env: NodeJS.ProcessEnv = process.env, home: string = os.homedir()): string {
    const configured = env.SMALLCODER_HOME;
    return configured ? configured.replace(/^~(?=$|[/\\])/, home) : path.join(home, '.cache', 'smallcoder');
}

/**
 * The folder that holds llama-cpp-python's wheel built with `flags`: the one scripts/setup.sh
 * fills (the first 16 hex digits of sha256 of `echo "$LLAMA $LLAMA_CFLAGS"`), so a machine
 * compiles llama.cpp once for both. Not pip's own cache: that would hand over a wheel built
 * with other flags.
 */
export function llamaWheelFolder(home: string, requirement: string, flags: string): string {
    const key = createHash('sha256').update(`${requirement} ${flags}\n`).digest('hex').slice(0, 16);
    return path.join(home, 'wheels', key);
}

const QUIET_PIP = ['--disable-pip-version-check', '--progress-bar', 'off'];

/** Builds llama-cpp-python's wheel alone, never from pip's cache, into `wheelDir`. */
export function llamaWheelArgs(requirement: string, wheelDir: string): string[] {
    return ['-m', 'pip', 'wheel', ...QUIET_PIP, '--no-deps', '--no-cache-dir', '--wheel-dir', wheelDir, requirement];
}

/** Puts exactly this wheel in place of whatever build of its package is installed. */
export function reinstallWheelArgs(wheel: string): string[] {
    return ['-m', 'pip', 'install', ...QUIET_PIP, '--force-reinstall', '--no-deps', wheel];
}

/** Installs `wheels` letting pip take llama-cpp-python from the folder of built wheels. */
export function installFromWheelsArgs(wheels: string[], wheelDir: string): string[] {
    return ['-m', 'pip', 'install', ...QUIET_PIP, '--find-links', wheelDir, ...wheels];
}

/**
 * PyTorch's index of CPU builds. PyPI's torch for Linux on x86-64 is the CUDA build, several GB;
 * the CPU build is `+cpu` there. Asked only when pip's own sources have no `+cpu` build.
 */
export const TORCH_CPU_INDEX = 'https://download.pytorch.org/whl/cpu';

/**
 * `pip install` of the training packages the server says are missing (pins such as
 * `torch==2.13.0`). On Linux x86-64 torch is pinned to its CPU build; `withCpuIndex` adds the
 * index that has it.
 */
export function trainingInstallArgs(pins: string[], withCpuIndex: boolean, platform: NodeJS.Platform = process.platform, arch: string = process.arch): string[] {
    const wantsCpuBuild = platform === 'linux' && arch === 'x64';
    const requirements = pins.map((pin) => (wantsCpuBuild && /^torch==[\d.]+$/.test(pin) ? `${pin}+cpu` : pin));
    const index = withCpuIndex ? ['--extra-index-url', TORCH_CPU_INDEX] : [];
    return ['-m', 'pip', 'install', ...QUIET_PIP, ...index, ...requirements];
}

/** Whether pip failed only because its sources have no CPU build of torch (then: try with the CPU index). */
export function lacksTorchCpuBuild(pipOutput: string): boolean {
    return /No matching distribution found for torch==[\d.]+\+cpu/.test(pipOutput);
}

/** A pip output line worth showing in a progress notification, shortened. */
export function pipProgressLine(line: string): string | undefined {
    return /^(Collecting|Downloading|Building|Installing|Successfully)/.test(line) ? line.slice(0, 90) : undefined;
}

export interface Run {
    /** The command's stdout and stderr, as one text. */
    output: string;
    exitCode: number | null;
}

/**
 * Runs `command`, handing each line it prints to `onLine`; `cancelled` stops it (its process
 * group on POSIX, so pip's own children stop too).
 */
export function runCommand(
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; cancelled?: (stop: () => void) => void } = {},
): Promise<Run> {
    return new Promise((resolve, reject) => {
        const child = cp.spawn(command, args, { env: options.env ?? process.env, detached: process.platform !== 'win32', windowsHide: true });
        let output = '';
        let pending = '';
        const forward = (chunk: Buffer) => {
            output += chunk.toString();
            const lines = (pending + chunk.toString()).split(/\r?\n|\r/);
            pending = lines.pop() ?? '';
            lines.filter((line) => line.trim()).forEach((line) => options.onLine?.(line.trim()));
        };
        child.stdout.on('data', forward);
        child.stderr.on('data', forward);
        options.cancelled?.(() => {
            if (child.exitCode === null && child.pid !== undefined) {
                try {
                    process.kill(process.platform === 'win32' ? child.pid : -child.pid);
                } catch {
                    child.kill();
                }
            }
        });
        child.on('error', reject);
        child.on('close', (exitCode) => {
            if (pending.trim()) {
                options.onLine?.(pending.trim());
            }
            resolve({ output, exitCode });
        });
    });
}
