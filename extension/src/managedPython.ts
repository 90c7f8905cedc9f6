/**
 * The Python environment SmallCoder manages for users who leave `smallcoder.pythonPath` empty:
 * a venv in the extension's global storage with the server wheel that ships inside the .vsix.
 */
import * as fs from 'fs/promises';
import * as path from 'path';
import * as vscode from 'vscode';
import {
    installFromWheelsArgs,
    llamaBuildFlags,
    llamaWheelArgs,
    llamaWheelFolder,
    pipProgressLine,
    reinstallWheelArgs,
    runCommand,
    smallcoderHome,
} from './pipCommands';
import { blockingProblems, checkToolchain, thisMachine, ToolchainReport } from './toolchain';
import { openWalkthroughOnce } from './walkthrough';

const WHEEL_FOLDER = path.join('extension', 'python-dist');
/** The venv remembers which wheel it holds, so a new extension version reinstalls the server. */
const INSTALLED_WHEEL_STAMP = '.smallcoder-wheel';

/** A build that cannot start: a required tool is missing; the message says what to install. */
export class ToolchainMissing extends Error {
    constructor(readonly report: ToolchainReport) {
        super(
            `SmallCoder cannot set up its Python environment: ${blockingProblems(report)}. ` +
                (report.installHint ? `Install what is missing (${report.installHint.split('\n').join('; ')}), then restart the server.` : ''),
        );
    }
}

/**
 * Returns the managed venv's python, creating the venv and installing the server first if
 * needed. The toolchain is checked before anything is built: a missing compiler is reported in
 * seconds, with what to install, rather than by a build that fails minutes in.
 */
export async function ensureManagedPython(
    context: vscode.ExtensionContext,
    log: vscode.LogOutputChannel,
): Promise<string> {
    const wheel = await findBundledWheel(context.extensionPath);
    const venvDir = path.join(context.globalStorageUri.fsPath, 'venv');
    const python = venvPython(venvDir);
    const stampPath = path.join(venvDir, INSTALLED_WHEEL_STAMP);
    if ((await pathExists(python)) && (await readTextOrEmpty(stampPath)) === path.basename(wheel)) {
        log.info(`Using the managed Python environment ${venvDir}`);
        return python;
    }
    await vscode.window.withProgress(
        {
            location: vscode.ProgressLocation.Notification,
            title: 'SmallCoder: first start',
        },
        async (progress) => {
            progress.report({ message: 'checking Python, the compiler and CMake…' });
            const report = await checkToolchain(await thisMachine());
            report.findings.forEach((finding) => log.info(`toolchain: ${finding.tool}: ${finding.ok ? 'ok' : 'MISSING'}: ${finding.detail}`));
            if (!(await pathExists(python))) {
                void openWalkthroughOnce(context); // a first start: the walkthrough shows what comes
                if (report.python === undefined) {
                    throw new ToolchainMissing(report);
                }
                progress.report({ message: 'creating a Python environment…' });
                log.info(`Creating the managed Python environment ${venvDir} with ${report.python.join(' ')}`);
                await fs.mkdir(path.dirname(venvDir), { recursive: true });
                await runLogged(report.python[0], [...report.python.slice(1), '-m', 'venv', venvDir], log);
            }
            const llamaWheel = await ensureLlamaWheel(python, wheel, report, log, (message) => progress.report({ message }));
            progress.report({ message: 'installing the server…' });
            log.info(`Installing ${wheel} into ${venvDir}`);
            // Forced, as scripts/setup.sh does: an environment from an older version may hold a build without the guard.
            await runLogged(python, reinstallWheelArgs(llamaWheel), log);
            await runLogged(python, installFromWheelsArgs([wheel], path.dirname(llamaWheel)), log, (line) => {
                const shown = pipProgressLine(line);
                if (shown !== undefined) {
                    progress.report({ message: shown });
                }
            });
            await fs.writeFile(stampPath, path.basename(wheel));
        },
    );
    log.info(`The managed Python environment is ready: ${python}`);
    return python;
}

/**
 * llama-cpp-python's wheel for the version the server pins, built with the AMX guard into the
 * folder scripts/setup.sh uses, unless a build is already there. Only this step compiles.
 */
async function ensureLlamaWheel(
    python: string,
    serverWheel: string,
    report: ToolchainReport,
    log: vscode.LogOutputChannel,
    say: (message: string) => void,
): Promise<string> {
    const requirement = await llamaRequirement(python, serverWheel);
    const flags = llamaBuildFlags();
    const folder = llamaWheelFolder(smallcoderHome(), requirement, flags);
    const built = await findWheel(folder, 'llama_cpp_python-');
    if (built !== undefined) {
        log.info(`Using ${built}, built before with CFLAGS="${flags}"`);
        return built;
    }
    if (blockingProblems(report)) {
        throw new ToolchainMissing(report);
    }
    say('compiling llama.cpp (about 5 minutes; once per machine)…');
    const partial = `${folder}.partial`;
    await fs.rm(partial, { recursive: true, force: true });
    const env = { ...process.env, CFLAGS: flags, CXXFLAGS: flags };
    log.info(`Building ${requirement} with CFLAGS="${flags}" into ${folder}`);
    await runLogged(python, llamaWheelArgs(requirement, partial), log, () => undefined, env);
    await fs.rm(folder, { recursive: true, force: true });
    await fs.rename(partial, folder);
    const wheel = await findWheel(folder, 'llama_cpp_python-');
    if (wheel === undefined) {
        throw new Error(`pip built no llama-cpp-python wheel into ${folder}: see SmallCoder's logs.`);
    }
    return wheel;
}

/** The `llama-cpp-python==X` pin of the bundled server wheel, read from its METADATA. */
async function llamaRequirement(python: string, serverWheel: string): Promise<string> {
    const script = [
        'import re, sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1])',
        'meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))',
        'print(re.search(r"^Requires-Dist: (llama-cpp-python==[0-9.]+)", z.read(meta).decode(), re.M).group(1))',
    ].join('\n');
    const run = await runCommand(python, ['-c', script, serverWheel]);
    const requirement = run.output.trim();
    if (run.exitCode !== 0 || !/^llama-cpp-python==[0-9.]+$/.test(requirement)) {
        throw new Error(`Could not read the llama-cpp-python version that ${path.basename(serverWheel)} needs: ${requirement.slice(-300)}`);
    }
    return requirement;
}

async function findWheel(folder: string, prefix: string): Promise<string | undefined> {
    const names = await fs.readdir(folder).catch(() => [] as string[]);
    const name = names.find((entry) => entry.startsWith(prefix) && entry.endsWith('.whl'));
    return name === undefined ? undefined : path.join(folder, name);
}

async function findBundledWheel(extensionPath: string): Promise<string> {
    const folder = path.join(extensionPath, WHEEL_FOLDER);
    const wheels = (await fs.readdir(folder).catch(() => [] as string[])).filter((name) => name.endsWith('.whl'));
    if (wheels.length !== 1) {
        throw new Error(
            `This build of SmallCoder carries ${wheels.length} server wheels in ${folder}, expected one. ` +
                'Set "smallcoder.pythonPath" to a Python that has the smallcoder package installed.',
        );
    }
    return path.join(folder, wheels[0]);
}

function venvPython(venvDir: string): string {
    return process.platform === 'win32'
        ? path.join(venvDir, 'Scripts', 'python.exe')
        : path.join(venvDir, 'bin', 'python');
}

/** Runs a command, writing each line it prints to the log; rejects when it fails. */
async function runLogged(
    command: string,
    args: string[],
    log: vscode.LogOutputChannel,
    onLine: (line: string) => void = () => undefined,
    env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
    log.info(`$ ${command} ${args.join(' ')}`);
    const run = await runCommand(command, args, {
        env,
        onLine: (line) => {
            log.info(line);
            onLine(line);
        },
    });
    if (run.exitCode !== 0) {
        throw new Error(`"${command} ${args.join(' ')}" failed with exit code ${run.exitCode}: see SmallCoder's logs.`);
    }
}

async function pathExists(file: string): Promise<boolean> {
    return fs.access(file).then(
        () => true,
        () => false,
    );
}

async function readTextOrEmpty(file: string): Promise<string> {
    return fs.readFile(file, 'utf8').catch(() => '');
}
