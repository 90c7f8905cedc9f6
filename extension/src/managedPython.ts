/**
 * The Python environment SmallCoder manages for users who leave `smallcoder.pythonPath` empty:
 * a venv in the extension's global storage with the server wheel that ships inside the .vsix.
 */
import * as cp from 'child_process';
import * as fs from 'fs/promises';
import * as path from 'path';
import * as vscode from 'vscode';

const MINIMUM_PYTHON: readonly [number, number] = [3, 11];
const WHEEL_FOLDER = path.join('extension', 'python-dist');
/** The venv remembers which wheel it holds, so a new extension version reinstalls the server. */
const INSTALLED_WHEEL_STAMP = '.smallcoder-wheel';

/** Returns the managed venv's python, creating the venv and installing the server first if needed. */
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
            if (!(await pathExists(python))) {
                progress.report({ message: 'creating a Python environment…' });
                const basePython = await findBasePython(log);
                log.info(`Creating the managed Python environment ${venvDir} with ${basePython.join(' ')}`);
                await fs.mkdir(path.dirname(venvDir), { recursive: true });
                await runLogged(basePython[0], [...basePython.slice(1), '-m', 'venv', venvDir], log);
            }
            progress.report({ message: 'installing the server (compiling llama.cpp may take minutes)…' });
            log.info(`Installing ${wheel} into ${venvDir}`);
            const pipInstall = ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', wheel];
            await runLogged(python, pipInstall, log, (line) => {
                if (/^(Collecting|Building|Installing|Successfully)/.test(line)) {
                    progress.report({ message: line.slice(0, 80) });
                }
            });
            await fs.writeFile(stampPath, path.basename(wheel));
        },
    );
    log.info(`The managed Python environment is ready: ${python}`);
    return python;
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

/** The first Python on PATH new enough for the server, as a command and its leading arguments. */
async function findBasePython(log: vscode.LogOutputChannel): Promise<string[]> {
    const candidates = process.platform === 'win32' ? [['py', '-3'], ['python']] : [['python3'], ['python']];
    const found: string[] = [];
    for (const candidate of candidates) {
        const version = await pythonVersion(candidate).catch(() => undefined);
        if (version === undefined) {
            continue;
        }
        found.push(`${candidate.join(' ')} is ${version.join('.')}`);
        if (version[0] > MINIMUM_PYTHON[0] || (version[0] === MINIMUM_PYTHON[0] && version[1] >= MINIMUM_PYTHON[1])) {
            return candidate;
        }
    }
    const wanted = MINIMUM_PYTHON.join('.');
    const seen = found.length > 0 ? ` (found: ${found.join('; ')})` : ' (none found on PATH)';
    log.error(`No Python ${wanted} or newer${seen}`);
    throw new Error(
        `SmallCoder needs Python ${wanted} or newer to run its server${seen}. ` +
            'Install one, or set "smallcoder.pythonPath".',
    );
}

function pythonVersion(command: string[]): Promise<[number, number]> {
    return new Promise((resolve, reject) => {
        cp.execFile(
            command[0],
            [...command.slice(1), '-c', 'import sys; print("%d %d" % sys.version_info[:2])'],
            { timeout: 10_000 },
            (error, stdout) => {
                if (error) {
                    reject(error);
                    return;
                }
                const [major, minor] = stdout.trim().split(' ').map(Number);
                resolve([major, minor]);
            },
        );
    });
}

/** Runs a command, writing each line it prints to the log; rejects when it fails. */
function runLogged(
    command: string,
    args: string[],
    log: vscode.LogOutputChannel,
    onLine: (line: string) => void = () => undefined,
): Promise<void> {
    return new Promise((resolve, reject) => {
        log.info(`$ ${command} ${args.join(' ')}`);
        const child = cp.spawn(command, args, { env: process.env });
        const forward = (chunk: Buffer) => {
            for (const line of chunk.toString().split(/\r?\n/)) {
                if (line.trim()) {
                    log.info(line);
                    onLine(line.trim());
                }
            }
        };
        child.stdout.on('data', forward);
        child.stderr.on('data', forward);
        child.on('error', reject);
        child.on('close', (code) => {
            if (code === 0) {
                resolve();
            } else {
                reject(new Error(`"${command} ${args.join(' ')}" failed with exit code ${code}: see SmallCoder's logs.`));
            }
        });
    });
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
