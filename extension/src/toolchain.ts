/**
 * What building SmallCoder's managed environment needs, checked before any build starts: a
 * Python 3.11+ that can create environments, a C and C++ compiler for llama.cpp, and CMake.
 * Free of `vscode`, so that the unit tests run it against made-up PATHs.
 */
import * as cp from 'child_process';
import * as fs from 'fs/promises';
import * as path from 'path';

export const MINIMUM_PYTHON: readonly [number, number] = [3, 11];
/** llama-cpp-python's build asks scikit-build-core for this CMake, which fetches one through pip when it is missing. */
const MINIMUM_CMAKE: readonly [number, number] = [3, 21];
const CHECK_TIMEOUT_MS = 10_000;
/** Prints the version, and whether `-m venv` can install pip (Debian splits ensurepip off). */
const PYTHON_PROBE = 'import sys, importlib.util as u; print(*sys.version_info[:2], int(u.find_spec("ensurepip") is not None))';

export type Tool = 'python' | 'compiler' | 'cmake';

export interface Finding {
    tool: Tool;
    ok: boolean;
    /** What was found ("python3 is 3.11"), or what is wrong when not ok. */
    detail: string;
    /** A missing required tool stops the build before it starts; CMake only slows it down. */
    required: boolean;
}

export interface ToolchainReport {
    findings: Finding[];
    /** The Python to create the managed environment with: a command and its leading arguments. */
    python: string[] | undefined;
    /** What to install on this OS for the tools that are missing; empty when nothing is. */
    installHint: string;
}

/** Where and how the check looks: the real machine by default, made-up ones in the tests. */
export interface Machine {
    platform: NodeJS.Platform;
    env: NodeJS.ProcessEnv;
    /** The text of /etc/os-release (Linux), to name the distribution's packages. */
    osRelease: string;
}

/** This machine, as the check sees it. */
export async function thisMachine(): Promise<Machine> {
    const osRelease = process.platform === 'linux' ? await fs.readFile('/etc/os-release', 'utf8').catch(() => '') : '';
    return { platform: process.platform, env: process.env, osRelease };
}

/** Runs `command`, resolving to its stdout, or undefined when it is missing or fails. */
function probe(machine: Machine, command: string, args: string[]): Promise<string | undefined> {
    return new Promise((resolve) => {
        cp.execFile(command, args, { env: machine.env, timeout: CHECK_TIMEOUT_MS, windowsHide: true }, (error, stdout) =>
            resolve(error ? undefined : stdout.toString()),
        );
    });
}

export async function checkToolchain(machine: Machine): Promise<ToolchainReport> {
    const [python, compiler, cmake] = await Promise.all([findPython(machine), findCompiler(machine), findCMake(machine)]);
    const findings = [python.finding, compiler, cmake];
    return { findings, python: python.command, installHint: installHint(machine, findings) };
}

/** Missing required tools, as one sentence for an error message; empty when the build can start. */
export function blockingProblems(report: ToolchainReport): string {
    return report.findings
        .filter((finding) => finding.required && !finding.ok)
        .map((finding) => finding.detail)
        .join('; ');
}

async function findPython(machine: Machine): Promise<{ finding: Finding; command: string[] | undefined }> {
    const candidates = machine.platform === 'win32' ? [['py', '-3'], ['python']] : [['python3'], ['python']];
    const seen: string[] = [];
    for (const candidate of candidates) {
        const output = await probe(machine, candidate[0], [...candidate.slice(1), '-c', PYTHON_PROBE]);
        const [major, minor, hasEnsurepip] = (output ?? '').trim().split(' ').map(Number);
        if (output === undefined || Number.isNaN(minor)) {
            continue;
        }
        const name = `${candidate.join(' ')} is ${major}.${minor}`;
        if (!atLeast([major, minor], MINIMUM_PYTHON)) {
            seen.push(name);
            continue;
        }
        if (!hasEnsurepip) {
            const detail = `${name} but cannot create environments (its venv module has no ensurepip)`;
            return { finding: { tool: 'python', ok: false, detail, required: true }, command: undefined };
        }
        return { finding: { tool: 'python', ok: true, detail: name, required: true }, command: candidate };
    }
    const found = seen.length > 0 ? `found only ${seen.join(', ')}` : 'none found on PATH';
    const detail = `no Python ${MINIMUM_PYTHON.join('.')} or newer (${found})`;
    return { finding: { tool: 'python', ok: false, detail, required: true }, command: undefined };
}

/** llama.cpp is C and C++: both compilers, or, on Windows, Visual Studio's C++ build tools. */
async function findCompiler(machine: Machine): Promise<Finding> {
    if (machine.platform === 'win32' && (await visualStudioWithCpp(machine))) {
        return { tool: 'compiler', ok: true, detail: 'Visual Studio C++ build tools', required: true };
    }
    if (machine.platform === 'darwin' && (await probe(machine, 'xcode-select', ['-p'])) === undefined) {
        return { tool: 'compiler', ok: false, detail: "no C compiler (Xcode's command line tools are not installed)", required: true };
    }
    const c = await firstAnswering(machine, ['cc', 'gcc', 'clang'], ['--version']);
    const cpp = await firstAnswering(machine, ['c++', 'g++', 'clang++'], ['--version']);
    if (c === undefined || cpp === undefined) {
        const missing = [c === undefined ? 'C' : '', cpp === undefined ? 'C++' : ''].filter(Boolean).join(' and ');
        return { tool: 'compiler', ok: false, detail: `no ${missing} compiler on PATH (llama.cpp is compiled on this machine)`, required: true };
    }
    return { tool: 'compiler', ok: true, detail: `${c.name} and ${cpp.name}: ${c.output.split('\n')[0].trim()}`, required: true };
}

async function visualStudioWithCpp(machine: Machine): Promise<boolean> {
    const programFiles = machine.env['ProgramFiles(x86)'] ?? 'C:\\Program Files (x86)';
    const vswhere = path.win32.join(programFiles, 'Microsoft Visual Studio', 'Installer', 'vswhere.exe');
    const args = ['-latest', '-products', '*', '-requires', 'Microsoft.VisualStudio.Component.VC.Tools.x86.x64', '-property', 'installationPath'];
    return Boolean((await probe(machine, vswhere, args))?.trim());
}

async function findCMake(machine: Machine): Promise<Finding> {
    const output = await probe(machine, 'cmake', ['--version']);
    const match = /version (\d+)\.(\d+)/.exec(output ?? '');
    const fallback = 'the build fetches one through pip, which is slower';
    if (match === null) {
        return { tool: 'cmake', ok: false, detail: `no CMake on PATH (${fallback})`, required: false };
    }
    const version: [number, number] = [Number(match[1]), Number(match[2])];
    if (!atLeast(version, MINIMUM_CMAKE)) {
        return { tool: 'cmake', ok: false, detail: `CMake ${version.join('.')} is older than ${MINIMUM_CMAKE.join('.')} (${fallback})`, required: false };
    }
    return { tool: 'cmake', ok: true, detail: `CMake ${version.join('.')}`, required: false };
}

async function firstAnswering(machine: Machine, names: string[], args: string[]): Promise<{ name: string; output: string } | undefined> {
    for (const name of names) {
        const output = await probe(machine, name, args);
        if (output !== undefined) {
            return { name, output };
        }
    }
    return undefined;
}

function atLeast(version: readonly [number, number], minimum: readonly [number, number]): boolean {
    return version[0] > minimum[0] || (version[0] === minimum[0] && version[1] >= minimum[1]);
}

/** Each OS's packages for each tool; a Linux family is keyed by an os-release ID. */
const PACKAGES: Record<string, { install: string; tools: Record<Tool, string> }> = {
    debian: { install: 'sudo apt install', tools: { python: 'python3 python3-venv', compiler: 'build-essential', cmake: 'cmake' } },
    fedora: { install: 'sudo dnf install', tools: { python: 'python3', compiler: 'gcc gcc-c++ make', cmake: 'cmake' } },
    arch: { install: 'sudo pacman -S --needed', tools: { python: 'python', compiler: 'base-devel', cmake: 'cmake' } },
    suse: { install: 'sudo zypper install', tools: { python: 'python311', compiler: 'gcc gcc-c++ make', cmake: 'cmake' } },
    alpine: { install: 'sudo apk add', tools: { python: 'python3', compiler: 'build-base', cmake: 'cmake' } },
    darwin: { install: '', tools: { python: 'brew install python@3.12', compiler: 'xcode-select --install', cmake: 'brew install cmake' } },
    win32: {
        install: '',
        tools: {
            python: 'winget install Python.Python.3.12',
            compiler: 'winget install Microsoft.VisualStudio.2022.BuildTools --override "--add Microsoft.VisualStudio.Workload.VCTools --includeRecommended --passive"',
            cmake: 'winget install Kitware.CMake',
        },
    },
};
/** os-release IDs (and ID_LIKE words) of each family. */
const LINUX_FAMILIES: Record<string, string> = {
    debian: 'debian', ubuntu: 'debian', linuxmint: 'debian', pop: 'debian',
    fedora: 'fedora', rhel: 'fedora', centos: 'fedora', rocky: 'fedora', almalinux: 'fedora',
    arch: 'arch', manjaro: 'arch', endeavouros: 'arch',
    suse: 'suse', opensuse: 'suse', 'opensuse-leap': 'suse', 'opensuse-tumbleweed': 'suse',
    alpine: 'alpine',
};

/** The commands to run for the missing tools on this OS (one line each), or a sentence when the distribution is unknown. */
export function installHint(machine: Machine, findings: Finding[]): string {
    const missing = findings.filter((finding) => !finding.ok).map((finding) => finding.tool);
    if (missing.length === 0) {
        return '';
    }
    const family = machine.platform === 'linux' ? linuxFamily(machine.osRelease) : machine.platform;
    const table = family === undefined ? undefined : PACKAGES[family];
    if (table === undefined) {
        const names = { python: `Python ${MINIMUM_PYTHON.join('.')}+ with its venv module`, compiler: 'a C and C++ compiler', cmake: 'CMake' };
        return `Install ${missing.map((tool) => names[tool]).join(', ')} with your system's package manager.`;
    }
    if (table.install) {
        return `${table.install} ${missing.map((tool) => table.tools[tool]).join(' ')}`;
    }
    return missing.map((tool) => table.tools[tool]).join('\n');
}

function linuxFamily(osRelease: string): string | undefined {
    const field = (name: string) => new RegExp(`^${name}="?([^"\\n]*)"?`, 'm').exec(osRelease)?.[1] ?? '';
    const ids = [field('ID'), ...field('ID_LIKE').split(/\s+/)].filter(Boolean);
    return ids.map((id) => LINUX_FAMILIES[id]).find((family) => family !== undefined);
}
