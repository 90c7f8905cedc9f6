// End-to-end, issue #31: a cloned repository cannot make SmallCoder run a program of its choice.
// The workspace's .vscode/settings.json names a "Python" (and a test command) that would leave a
// marker file. Untrusted (code-server with workspace trust on: Restricted Mode), the extension
// starts the user's own server without asking; trusted, it first shows the program, and the
// user's "Use my own setting" keeps it from running. The marker must never appear.
// Run with `npm run test:e2e:trust` (after scripts/setup_editor.sh); artifacts/e2e-trust/.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
    checkToolsInstalled,
    fakeServerLauncher,
    findOutputLogs,
    installExtension,
    prepareSandbox,
    repoRoot,
    startCodeServer,
    stopCodeServer,
    writeUserSettings,
} from './codeServer.mjs';
import { assert, waitFor } from './helpers.mjs';
import { Workbench } from './workbench.mjs';

const artifactsDir = join(repoRoot, 'artifacts', 'e2e-trust');
const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const vsixPath = join(repoRoot, 'dist', `smallcoder-${version}.vsix`);
const WHOLE_RUN_LIMIT_MS = 6 * 60_000;

/** The sandbox: the user's own (fake) server, and a workspace whose settings plant another. */
function prepare() {
    const sandbox = prepareSandbox();
    const marker = join(sandbox.root, 'the-workspace-program-ran');
    const planted = fakeServerLauncher(sandbox, 'planted-python', `touch '${marker}'\n`);
    mkdirSync(join(sandbox.workspace, '.vscode'), { recursive: true });
    writeFileSync(
        join(sandbox.workspace, '.vscode', 'settings.json'),
        JSON.stringify({ 'smallcoder.pythonPath': planted, 'smallcoder.testCommand': `${planted} -m pytest` }, null, 2),
    );
    const own = fakeServerLauncher(sandbox);
    writeUserSettings(sandbox, {
        'smallcoder.pythonPath': own,
        'security.workspace.trust.enabled': true,
        'security.workspace.trust.startupPrompt': 'never',
        'security.workspace.trust.emptyWindow': false,
    });
    return { sandbox, marker, planted, own };
}

async function checkOwnServerStarted(workbench, { sandbox, marker, planted, own }, screenshot) {
    const logText = await waitFor(
        'the SmallCoder log to show the server being started',
        () => {
            const text = findOutputLogs(sandbox, 'SmallCoder').map((file) => readFileSync(file, 'utf8')).join('\n');
            return text.includes('Starting the language server:') ? text : undefined;
        },
        60_000,
    );
    await workbench.screenshot(screenshot);
    assert(!existsSync(marker), 'the program named by the workspace ran');
    assert(logText.includes(`Starting the language server: ${own} `), `the server was not started with the user's own Python:\n${logText}`);
    assert(!logText.includes(planted), 'the log names the workspace\'s planted program');
    const status = workbench.statusBarItem('SmallCoder');
    await waitFor('the status bar to say ready', async () => ((await status.getAttribute('aria-label')) ?? '').includes('ready'), 60_000);
    assert(!existsSync(marker), 'the program named by the workspace ran');
}

const scenarios = [
    {
        name: 'an untrusted workspace cannot choose the program SmallCoder runs',
        workspaceTrust: true,
        async run(workbench, setup) {
            await workbench.page.getByText('Restricted Mode').first().waitFor({ timeout: 60_000 });
            await checkOwnServerStarted(workbench, setup, 'untrusted-started');
        },
    },
    {
        name: 'a trusted workspace\'s program is shown first, and not run when the user declines',
        workspaceTrust: false,
        async run(workbench, setup) {
            const dialog = workbench.page.locator('.monaco-dialog-box');
            await dialog.waitFor({ timeout: 60_000 });
            await workbench.screenshot('trusted-asked');
            assert((await dialog.innerText()).includes(setup.planted), 'the dialog does not show the program');
            await dialog.getByRole('button', { name: 'Use my own setting' }).click();
            await checkOwnServerStarted(workbench, setup, 'trusted-declined');
        },
    },
];

async function runScenario(scenario) {
    const setup = prepare();
    console.log(`e2e sandbox: ${setup.sandbox.root}`);
    installExtension(setup.sandbox, vsixPath);
    const logName = `code-server-${scenario.workspaceTrust ? 'untrusted' : 'trusted'}.log`;
    const codeServer = await startCodeServer(setup.sandbox, join(artifactsDir, logName), { workspaceTrust: scenario.workspaceTrust });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.goto(`${codeServer.url}/?folder=${encodeURIComponent(setup.sandbox.workspace)}`);
        const workbench = new Workbench(page, artifactsDir);
        await workbench.waitUntilLoaded();
        await scenario.run(workbench, setup);
        console.log(`ok   ${scenario.name}`);
        return true;
    } catch (error) {
        console.log(`FAIL ${scenario.name}\n     ${error.message}`);
        return false;
    } finally {
        await browser.close().catch(() => undefined);
        stopCodeServer(codeServer.child);
        for (const log of findOutputLogs(setup.sandbox, 'SmallCoder')) {
            copyFileSync(log, join(artifactsDir, logName.replace('code-server', 'smallcoder')));
        }
    }
}

async function main() {
    checkToolsInstalled();
    rmSync(artifactsDir, { recursive: true, force: true });
    mkdirSync(artifactsDir, { recursive: true });
    const overtime = setTimeout(() => {
        console.error('e2e: the trust run took too long; stopping');
        process.exit(1);
    }, WHOLE_RUN_LIMIT_MS);
    let passed = 0;
    for (const scenario of scenarios) {
        passed += (await runScenario(scenario)) ? 1 : 0;
    }
    clearTimeout(overtime);
    console.log(`e2e trust: ${passed} passed, ${scenarios.length - passed} failed`);
    process.exit(passed === scenarios.length ? 0 : 1);
}

await main();
