// End-to-end tests in a real editor: code-server with the packaged .vsix, driven by Debian's
// chromium through playwright-core, on a copy of examples/. Screenshots go to artifacts/e2e/.
// Set up first with scripts/setup_editor.sh; `npm run test:e2e` repackages the .vsix, then runs
// this. SMALLCODER_MODEL picks the model (the test target uses the 0.5B one). `--fake-server`
// swaps in fake_server.py to test the editor side alone; `--fake-engine` runs the real server
// with tests/lsp_fake_server.py's rule-following engine, for the scenarios where the server's
// own behaviour (languages, exclusions, files changed on disk) meets the editor's;
// `--managed-python` tests the first start of a user without smallcoder.pythonPath.
// `--only REGEX` runs the scenarios whose names match (and the two start-up ones they need).
// SMALLCODER_E2E_SERVER_URL runs them with smallcoder.engine llama-server at that URL.
// Prints "e2e: N passed, N failed" and exits non-zero on any failure.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { ACTION_CHECK_SETTINGS, actionCheckScenarios } from './actionChecks.mjs';
import { agentRunnerScenarios } from './agentRunners.mjs';
import { EDITOR_CONVENTION_SETTINGS, editorConventionScenarios } from './editorConventions.mjs';
import { REFACTOR_PLACEHOLDER, assert, lineNumberOf, userSetting, waitFor } from './helpers.mjs';
import { Workbench } from './workbench.mjs';

// `--managed-python` leaves smallcoder.pythonPath empty: the extension then builds its own venv
// from the wheel in the .vsix, which compiles llama.cpp unless pip's cache has it (minutes).
const usesFakeServer = process.argv.includes('--fake-server');
const usesFakeEngine = process.argv.includes('--fake-engine');
const usesManagedPython = process.argv.includes('--managed-python');
const onlyIndex = process.argv.indexOf('--only');
const onlyPattern = onlyIndex > 0 ? new RegExp(process.argv[onlyIndex + 1], 'i') : undefined;
// A managed-python run builds an environment and may install the training packages into it.
const WHOLE_RUN_LIMIT_MS = (usesManagedPython ? 40 : usesFakeEngine ? 8 : 5) * 60_000;
const SERVER_READY_TIMEOUT_MS = (usesManagedPython ? 12 : 2) * 60_000;
const CHROMIUM_FLAGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
];

const artifactsDir = join(repoRoot, 'artifacts', 'e2e');
const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const vsixPath = join(repoRoot, 'dist', `smallcoder-${version}.vsix`);

/** What the extension's output channel holds so far: its own lines and the server's log. */
function smallcoderLog(sandbox) {
    return findOutputLogs(sandbox, 'SmallCoder').map((file) => readFileSync(file, 'utf8')).join('\n');
}

/**
 * The server's line for warming `fileName` at a 1-based line; the server may name the file
 * relative to its folder or by its base name.
 */
function warmingLine(fileName, line) {
    return new RegExp(String.raw`warming \S*\b${fileName.replace(/\./g, '\\.')}:${line}\b`);
}

/** The notification of an explain request, up until its answer comes. */
function explainingNotification(workbench) {
    return workbench.page.locator('.notifications-toasts .notification-list-item', { hasText: 'explaining' }).first();
}

/** The scenarios, in order; each gets the workbench and the sandbox and throws on failure. */
/**
 * Opens fixtures' totals.py in `count_above` and runs "SmallCoder: Refactor Function"; returns
 * the file, its text before and the instruction box.
 */
async function refactorCountAbove(workbench, sandbox) {
    const file = join(sandbox.workspace, 'totals.py');
    await workbench.openFile('totals.py');
    const before = readFileSync(file, 'utf8');
    await workbench.goTo(lineNumberOf(file, 'def count_above') + 2, 9);
    await workbench.runCommand('SmallCoder: Refactor Function');
    return { file, before, instruction: await workbench.inputBox(REFACTOR_PLACEHOLDER) };
}

const scenarios = [
    {
        name: 'the extension activates, shows its status and starts the server',
        startUp: true,
        async run(workbench, sandbox) {
            const status = workbench.statusBarItem('SmallCoder');
            await status.waitFor({ timeout: 60_000 });
            await workbench.screenshot('status-bar');
            const logText = await waitFor(
                'the SmallCoder log to show the server being started',
                () => {
                    const text = smallcoderLog(sandbox);
                    return text.includes('Starting the language server:') ? text : undefined;
                },
                usesManagedPython ? SERVER_READY_TIMEOUT_MS : 30_000,
            );
            assert(logText.includes('-m cli serve'), 'the log does not show `python -m cli serve`');
        },
    },
    {
        name: 'the server reports ready in the status bar',
        startUp: true,
        async run(workbench) {
            const status = workbench.statusBarItem('SmallCoder');
            try {
                await waitFor(
                    'the status bar to say ready',
                    async () => {
                        const label = (await status.getAttribute('aria-label')) ?? '';
                        if (/failed|error|stopped/.test(label)) {
                            throw new Error(`the status bar says "${label}"`);
                        }
                        return label.includes('ready');
                    },
                    SERVER_READY_TIMEOUT_MS,
                );
            } finally {
                await workbench.screenshot('server-ready');
            }
        },
    },
    {
        name: 'opening a file, then jumping far in it, warms the regions the cursor lands in (smallcoder/prefill)',
        async run(workbench, sandbox) {
            // A file no earlier scenario opened: the cursor starts on line 1.
            await workbench.openFile('inventory.py');
            await waitFor('the server to warm inventory.py at line 1', () => warmingLine('inventory.py', 1).test(smallcoderLog(sandbox)), 20_000, 200);
            if (usesFakeServer) {
                // The fake server keeps warming for seconds; the real one may be done before a look.
                const status = workbench.statusBarItem('SmallCoder');
                await waitFor(
                    'the status bar to say it warms inventory.py:1',
                    async () => ((await status.getAttribute('aria-label')) ?? '').includes('warming inventory.py:1'),
                    10_000,
                    200,
                );
                await workbench.screenshot('warming');
            }
            const far = lineNumberOf(join(sandbox.workspace, 'inventory.py'), 'def low_stock');
            assert(far > 20, `def low_stock is on line ${far}: less than a jump from line 1`);
            await workbench.goTo(far, 1);
            await waitFor(`the server to warm inventory.py at line ${far}`, () => warmingLine('inventory.py', far).test(smallcoderLog(sandbox)), 20_000, 200);
        },
    },
    {
        name: 'an inline completion shows as ghost text and Tab accepts it',
        async run(workbench, sandbox) {
            const file = join(sandbox.workspace, 'stats.py');
            const before = readFileSync(file, 'utf8');
            await workbench.openFile('stats.py');
            // The empty line after median's two-line docstring: the body is still to be written.
            await workbench.goTo(lineNumberOf(file, 'def median') + 3, 1);
            const typed = '    if';
            await workbench.page.keyboard.type(typed, { delay: 80 });
            const ghost = workbench.ghostText();
            try {
                await ghost.waitFor({ timeout: 20_000 });
            } catch {
                // The automatic trigger may have raced the model's first load; ask again as a user can.
                await workbench.runCommand('Trigger Inline Suggestion');
                await ghost.waitFor({ timeout: 30_000 });
            }
            await workbench.screenshot('ghost-text');
            await workbench.page.keyboard.press('Tab');
            await workbench.save();
            await workbench.screenshot('completion-accepted');
            const after = readFileSync(file, 'utf8');
            assert(
                after.length > before.length + typed.length,
                `stats.py grew by ${after.length - before.length} characters, no more than the ${typed.length} typed`,
            );
        },
    },
    {
        name: '"Refactor this function" from the Quick Fix menu rewrites the function',
        async run(workbench, sandbox) {
            // A function written the long way round (fixtures/totals.py), so that the model has
            // something to change: on an already tidy function it rightly declines to rewrite.
            const file = join(sandbox.workspace, 'totals.py');
            await workbench.openFile('totals.py');
            const before = readFileSync(file, 'utf8');
            await workbench.goTo(lineNumberOf(file, 'def total_cents') + 2, 9); // in its body
            const menu = await workbench.openCodeActionMenu();
            const refactor = menu.locator('.monaco-list-row', { hasText: 'Refactor this function' }).first();
            await refactor.waitFor({ timeout: 30_000 });
            await workbench.screenshot('code-action-menu');
            await refactor.click();
            // codeAction/resolve asks the model for the new function: seconds on a CPU. The diff
            // is shown first, and the buffer changes only when it is applied.
            // No test command is set here: the question says that the behaviour was not tested.
            const question = await workbench.reviewRefactoring(120_000, { screenshot: 'refactor-diff', button: 'Apply' });
            assert(question.includes('No tests ran'), `the question does not say that no tests ran: "${question}"`);
            await workbench.waitForUnlessError(workbench.page.locator('.tab.active.dirty'), 20_000);
            await workbench.screenshot('refactored');
            await workbench.save();
            const after = readFileSync(file, 'utf8');
            assert(after !== before, 'totals.py did not change');
        },
    },
    {
        name: '"SmallCoder: Refactor Function" from the command palette follows an instruction',
        async run(workbench, sandbox) {
            const { file, before, instruction } = await refactorCountAbove(workbench, sandbox);
            await instruction.fill('use sum with a generator expression');
            await workbench.screenshot('refactor-instruction');
            await workbench.page.keyboard.press('Enter');
            // The notification counts the tokens the model has written so far.
            const counting = workbench.page.locator('.notifications-toasts .notification-list-item', {
                hasText: /refactoring count_above… \d+ tokens/,
            });
            await workbench.waitForUnlessError(counting.first(), 120_000);
            await workbench.screenshot('refactor-progress');
            await workbench.reviewRefactoring(120_000, { button: 'Apply' });
            await workbench.waitForUnlessError(workbench.page.locator('.tab.active.dirty'), 20_000);
            await workbench.screenshot('refactored-with-instruction');
            await workbench.save();
            const after = readFileSync(file, 'utf8');
            assert(after !== before, 'totals.py did not change');
        },
    },
    {
        name: 'a refactoring is shown as a diff first, and Discard leaves the file as it was',
        fakeServerOnly: true,
        async run(workbench, sandbox) {
            const { file, before, instruction } = await refactorCountAbove(workbench, sandbox);
            await instruction.press('Enter');
            // The buffer stays as it is while the diff is shown, and after Discard.
            const question = workbench.page.locator('.notifications-toasts .notification-list-item', { hasText: 'Apply the change?' }).first();
            await workbench.waitForUnlessError(question, 60_000);
            assert(!(await workbench.page.locator('.tab.dirty').first().isVisible()), 'the buffer changed before Apply');
            await workbench.reviewRefactoring(10_000, { screenshot: 'refactor-diff-discard', button: 'Discard' });
            assert(!(await workbench.page.locator('.tab.dirty').first().isVisible()), 'the discarded refactoring edited the buffer');
            assert(readFileSync(file, 'utf8') === before, 'totals.py changed on disk');
        },
    },
    {
        name: '"SmallCoder: Explain Function" from the command palette shows the explanation as the model writes it',
        async run(workbench, sandbox) {
            await workbench.openFile('stats.py');
            await workbench.goTo(lineNumberOf(join(sandbox.workspace, 'stats.py'), 'def mean'), 6); // on its name
            await workbench.runCommand('SmallCoder: Explain Function');
            const explaining = explainingNotification(workbench);
            await workbench.waitForUnlessError(explaining, 30_000);
            // The panel opens with the first words, while the request still runs: its
            // notification is still up (looked at first, so that a panel seen open was open then).
            const panelTab = workbench.page.locator('.tab[aria-label*="SmallCoder: Explain mean"]').first();
            await waitFor(
                'the explanation panel to open while the model writes',
                async () => {
                    const running = await explaining.isVisible();
                    const opened = await panelTab.isVisible();
                    if (!running) {
                        throw new Error(opened ? 'the explanation panel opened only after the explain request ended' : 'the explain request ended without opening the panel');
                    }
                    return opened;
                },
                120_000,
                100,
            );
            const explanation = workbench.webviewBody('#smallcoder-explanation');
            // The fake server writes for seconds: the panel can be watched as its text grows.
            // The model may be done before the new webview can be read.
            const firstWords = usesFakeServer
                ? await waitFor(
                      'the explanation panel to show text',
                      async () => {
                          const text = (await explanation.innerText({ timeout: 250 }).catch(() => '')).trim();
                          if (text && !(await explaining.isVisible())) {
                              throw new Error(`the panel showed text only after the explain request ended: "${text.slice(0, 80)}"`);
                          }
                          return text || undefined;
                      },
                      30_000,
                      100,
                  )
                : '';
            await workbench.screenshot('explanation-being-written');
            await explaining.waitFor({ state: 'hidden', timeout: 120_000 });
            const text = (await explanation.innerText()).trim();
            await workbench.screenshot('explanation');
            assert(text.length > 20, `the explanation panel shows only "${text}"`);
            assert(text.length > firstWords.length, `the explanation did not grow after its first words: "${text}"`);
        },
    },
    {
        name: '"Explain this function" from the Quick Fix menu passes the function to the command',
        async run(workbench, sandbox) {
            await workbench.openFile('inventory.py');
            await workbench.goTo(lineNumberOf(join(sandbox.workspace, 'inventory.py'), 'def low_stock') + 2, 9);
            const menu = await workbench.openCodeActionMenu();
            const explain = menu.locator('.monaco-list-row', { hasText: 'Explain this function' }).first();
            await explain.waitFor({ timeout: 30_000 });
            await explain.click();
            const panelTab = workbench.page.locator('.tab[aria-label*="SmallCoder: Explain low_stock"]').first();
            await workbench.waitForUnlessError(panelTab, 120_000);
            await explainingNotification(workbench).waitFor({ state: 'hidden', timeout: 120_000 });
            const explanation = workbench.webviewBody('#smallcoder-explanation');
            await explanation.waitFor({ timeout: 30_000 });
            await workbench.screenshot('explanation-from-code-action');
            assert((await explanation.innerText()).trim().length > 20, 'the explanation panel is empty');
        },
    },
    {
        name: '"SmallCoder: Solve with Agent" fixes the failing test and Accept writes the fix',
        // The 0.5B model of `make test` does not find apply_discount's bug within a budget that
        // fits this run (the 1.5B does, in one round: see the demo); the editor side is tested
        // with the fake server's canned fix.
        fakeServerOnly: true,
        async run(workbench, sandbox) {
            // examples/tests/test_inventory.py fails on apply_discount; the agent works in a copy
            // and the file changes only when Accept is pressed.
            const file = join(sandbox.workspace, 'inventory.py');
            const before = readFileSync(file, 'utf8');
            await workbench.runCommand('SmallCoder: Solve with Agent');
            const command = workbench.page.locator('.quick-input-widget input');
            await command.waitFor();
            await waitFor('pytest to be offered as the test command', async () => (await command.inputValue()).includes('pytest'), 10_000, 200);
            await workbench.screenshot('solve-test-command');
            await workbench.page.keyboard.press('Enter');
            const toasts = workbench.page.locator('.notifications-toasts .notification-list-item');
            const review = toasts.filter({ hasText: 'Accept the change' }).first();
            const noFix = toasts.filter({ hasText: 'still failing' }).or(toasts.filter({ hasText: 'no function of the workspace' })).first();
            await workbench.waitForUnlessError(review.or(noFix), 180_000);
            if (!(await review.isVisible())) {
                throw new Error(`the agent found no fix: ${(await noFix.innerText()).replace(/\s+/g, ' ')}`);
            }
            assert(readFileSync(file, 'utf8') === before, 'inventory.py changed before Accept');
            await workbench.page.locator('.tab', { hasText: "SmallCoder's fix" }).first().waitFor({ timeout: 10_000 });
            await workbench.screenshot('solve-diff');
            await review.locator('.monaco-button', { hasText: 'Accept' }).first().click();
            await waitFor('inventory.py to be saved with the fix', () => readFileSync(file, 'utf8') !== before, 20_000);
            await workbench.screenshot('solve-accepted');
        },
    },
    {
        name: '"SmallCoder: Train Personal Adapter" without the training packages installs them with progress, then trains',
        // With --fake-server pip's part is scripted (fake_server.py as `-m pip`). With
        // --managed-python it is the real installation into the fresh managed environment
        // (minutes), and the run ends at the first training step, cancelled.
        fakeServerOnly: true,
        alsoWithManagedPython: true,
        async run(workbench, sandbox) {
            const missingMarker = join(sandbox.root, 'training-packages-missing');
            if (usesFakeServer) {
                writeFileSync(missingMarker, '');
            }
            await workbench.runCommand('SmallCoder: Train Personal Adapter');
            const toasts = workbench.page.locator('.notifications-toasts .notification-list-item');
            const offer = toasts.filter({ hasText: 'training needs torch, transformers, peft, matplotlib' }).first();
            await workbench.waitForUnlessError(offer, 20_000);
            await workbench.screenshot('train-install-offer');
            const installStarted = Date.now();
            await offer.locator('.monaco-button', { hasText: 'Install Training Packages' }).first().click();
            await workbench.waitForUnlessError(toasts.filter({ hasText: 'installing the training packages' }).filter({ hasText: /\d+ packages? so far/ }).first(), 60_000);
            await workbench.screenshot('train-install-progress');
            // Once pip is done, the command goes on where it was: which repositories to learn from.
            const workspaceRow = workbench.page.locator('.quick-input-list .monaco-list-row', { hasText: 'workspace' }).first();
            await workbench.waitForUnlessError(workspaceRow, usesFakeServer ? 30_000 : 20 * 60_000);
            console.log(`     the training packages were installed in ${((Date.now() - installStarted) / 1000).toFixed(1)} s`);
            assert(!existsSync(missingMarker), 'the repositories were asked for before pip had finished');
            const pipArgs = usesFakeServer
                ? readFileSync(join(sandbox.root, 'pip-args.txt'), 'utf8')
                : (/-m pip install .*transformers==.*$/m.exec(smallcoderLog(sandbox))?.[0] ?? '');
            for (const expected of ['install', 'transformers==5.23.0', 'peft==0.21.2', 'matplotlib==3.11.2']) {
                assert(pipArgs.split(' ').includes(expected), `pip was run with "${pipArgs}", without ${expected}`);
            }
            const torch = process.platform === 'linux' && process.arch === 'x64' ? 'torch==2.13.0+cpu' : 'torch==2.13.0';
            assert(pipArgs.split(' ').includes(torch), `pip was run with "${pipArgs}", without ${torch}`);
            await workbench.page.keyboard.press('Enter');
            const minutes = workbench.page.locator('.quick-input-widget input');
            await waitFor('the minutes budget to be offered', async () => (await minutes.inputValue()) === '60', 10_000, 200);
            await workbench.page.keyboard.press('Enter');
            await chooseToContinueFromTheCheckpoint(workbench);
            if (!usesFakeServer) {
                // A training step needs torch, transformers and peft: the installation works.
                const step = toasts.filter({ hasText: /step \d+\/\d+/ }).first();
                await workbench.waitForUnlessError(step, 20 * 60_000);
                await workbench.screenshot('train-first-real-step');
                await step.locator('.monaco-button', { hasText: 'Cancel' }).first().click();
                await workbench.waitForUnlessError(toasts.filter({ hasText: 'training stopped' }).first(), 60_000);
                return;
            }
            await workbench.waitForUnlessError(toasts.filter({ hasText: 'tokens/s' }).first(), 20_000);
            const offerToEnable = toasts.filter({ hasText: 'Enable it for completions' }).first();
            await workbench.waitForUnlessError(offerToEnable, 30_000);
            const preview = workbench.page.locator('.tab', { hasText: 'workspace-fake.report.md' }).first();
            await preview.waitFor({ timeout: 10_000 });
            await workbench.screenshot('train-after-install');
            // The report's preview takes the keyboard focus, F1 included: give it back to the workbench.
            await workbench.page.locator('.part.sidebar .title-label').first().click();
            await workbench.runCommand('View: Close All Editors');
            await preview.waitFor({ state: 'detached', timeout: 10_000 });
            await workbench.runCommand('Notifications: Clear All Notifications');
        },
    },
    {
        name: '"SmallCoder: Train Personal Adapter" trains on the workspace, shows the report and enables the adapter',
        // Even a few steps of the real model take minutes here; the server side of training is
        // tested on a tiny model by tests/test_lsp_train.py.
        fakeServerOnly: true,
        async run(workbench, sandbox) {
            await workbench.runCommand('SmallCoder: Train Personal Adapter');
            await workbench.page.locator('.quick-input-list .monaco-list-row', { hasText: 'workspace' }).first().waitFor();
            await workbench.page.locator('.quick-input-list .monaco-list-row', { hasText: 'Add Other Folders' }).first().waitFor();
            await workbench.screenshot('train-repositories');
            await workbench.page.keyboard.press('Enter'); // the workspace folder comes checked
            const minutes = workbench.page.locator('.quick-input-widget input');
            await waitFor('the minutes budget to be offered', async () => (await minutes.inputValue()) === '60', 10_000, 200);
            await workbench.page.keyboard.press('Enter');
            await chooseToContinueFromTheCheckpoint(workbench);
            const toasts = workbench.page.locator('.notifications-toasts .notification-list-item');
            await workbench.waitForUnlessError(toasts.filter({ hasText: 'tokens/s' }).first(), 20_000);
            await workbench.screenshot('train-progress');
            const preview = workbench.page.locator('.tab', { hasText: 'workspace-fake.report.md' }).first();
            await workbench.waitForUnlessError(preview, 30_000);
            const offer = toasts.filter({ hasText: 'Enable it for completions' }).first();
            await offer.waitFor({ timeout: 10_000 });
            await workbench.screenshot('train-report');
            await offer.locator('.monaco-button', { hasText: 'Enable Adapter' }).first().click();
            // smallcoder.adapter is machine-overridable (#31: a workspace may not name a file we
            // load): code-server keeps the user's value of such a setting in Machine/settings.json.
            const settingsFiles = ['User', 'Machine'].map((kind) => join(sandbox.userDataDir, kind, 'settings.json'));
            const expected = join(sandbox.root, 'adapters', 'workspace-fake.gguf');
            await waitFor(
                'the user settings to name the trained adapter',
                () => settingsFiles.some((file) => userSetting(file, 'smallcoder.adapter') === expected),
                10_000,
            );
        },
    },
    {
        name: 'the walkthrough checks the toolchain and ends with a suggestion accepted in its sample file',
        // The fake server suggests in any file; the real model's suggestions are tested above.
        fakeServerOnly: true,
        async run(workbench) {
            await workbench.runCommand('SmallCoder: Get Started');
            const page = workbench.page;
            await page.getByText('Get started with SmallCoder').first().waitFor({ timeout: 20_000 });
            await page.getByRole('button', { name: 'Check the Toolchain' }).first().click();
            const toasts = page.locator('.notifications-toasts .notification-list-item');
            // This machine builds llama.cpp itself (scripts/setup.sh): it has what the check asks for.
            await workbench.waitForUnlessError(toasts.filter({ hasText: 'SmallCoder can build its environment here' }).first(), 30_000);
            await workbench.screenshot('walkthrough-toolchain');
            await workbench.runCommand('Notifications: Clear All Notifications');
            await page.getByText('Try a suggestion').first().click();
            await page.getByRole('button', { name: 'Open the Sample' }).first().click();
            await page.locator('.tab', { hasText: 'first_suggestion.py' }).first().waitFor({ timeout: 20_000 });
            await workbench.waitForUnlessError(workbench.ghostText(), 30_000);
            await workbench.screenshot('walkthrough-sample-suggestion');
            await page.keyboard.press('Tab');
            await workbench.waitForUnlessError(toasts.filter({ hasText: 'first accepted suggestion' }).first(), 10_000);
            await workbench.screenshot('walkthrough-done');
            await workbench.runCommand('Notifications: Clear All Notifications');
            await workbench.save(); // closing the changed sample would ask whether to save it
            await workbench.runCommand('View: Close All Editors');
        },
    },
    {
        name: '"SmallCoder: Download Model" reports where the model is',
        async run(workbench) {
            await workbench.runCommand('SmallCoder: Download Model');
            const done = workbench.page.locator('.notifications-toasts .notification-list-item', {
                hasText: 'the model is ready at',
            });
            await workbench.waitForUnlessError(done.first(), 120_000);
            await workbench.screenshot('model-downloaded');
        },
    },
    {
        name: 'the status bar menu turns inline completions off',
        async run(workbench, sandbox) {
            const toggle = workbench.page.locator('.quick-input-list .monaco-list-row', {
                hasText: 'Turn Inline Completions Off',
            });
            // A click that lands while a notification toast slides away can go unanswered: click again.
            for (let attempt = 1; ; attempt++) {
                await workbench.statusBarItem('SmallCoder').click();
                try {
                    await toggle.first().waitFor({ timeout: 5_000 });
                    break;
                } catch (error) {
                    if (attempt === 3) {
                        throw error;
                    }
                    console.log('     the status bar menu did not open: clicking again');
                }
            }
            await workbench.screenshot('status-bar-menu');
            await toggle.first().click();
            const settingsFile = join(sandbox.userDataDir, 'User', 'settings.json');
            await waitFor(
                'the user settings to turn inline completions off',
                () => userSetting(settingsFile, 'smallcoder.inlineCompletions.enabled') === false,
                10_000,
            );
            await workbench.statusBarItem('SmallCoder').locator('.codicon-circle-slash').or(
                workbench.page.locator('.statusbar-item .codicon-circle-slash'),
            ).first().waitFor({ timeout: 10_000 });
            await workbench.screenshot('inline-completions-off');
        },
    },
    ...editorConventionScenarios,
    ...actionCheckScenarios,
    ...agentRunnerScenarios,
];

/** A "python" for smallcoder.pythonPath that runs the fake server whatever arguments it gets. */
/** The "python" for smallcoder.pythonPath: under `--fake-engine` the real server with the
 * rule-following fake engine, else fake_server.py (codeServer.mjs). */
function serverLauncher(sandbox) {
    if (!usesFakeEngine) {
        return fakeServerLauncher(sandbox);
    }
    const server = join(repoRoot, 'tests', 'lsp_fake_server.py');
    const launcher = join(sandbox.root, 'fake-engine-python');
    writeFileSync(launcher, `#!/bin/sh\nexec ${join(repoRoot, '.venv', 'bin', 'python')} ${server}\n`);
    chmodSync(launcher, 0o755);
    return launcher;
}

async function main() {
    checkToolsInstalled();
    rmSync(artifactsDir, { recursive: true, force: true });
    mkdirSync(artifactsDir, { recursive: true });
    const sandbox = prepareSandbox();
    const smallcoderSettings = {};
    if (usesFakeServer || usesFakeEngine) {
        smallcoderSettings['smallcoder.pythonPath'] = serverLauncher(sandbox);
    } else if (!usesManagedPython) {
        smallcoderSettings['smallcoder.pythonPath'] = join(repoRoot, '.venv', 'bin', 'python');
    }
    if (usesFakeEngine) {
        const fakeModel = join(sandbox.root, 'fake.gguf');
        writeFileSync(fakeModel, 'GGUF');
        smallcoderSettings['smallcoder.model'] = fakeModel;
        Object.assign(smallcoderSettings, EDITOR_CONVENTION_SETTINGS, ACTION_CHECK_SETTINGS);
    } else if (process.env.SMALLCODER_MODEL) {
        smallcoderSettings['smallcoder.model'] = process.env.SMALLCODER_MODEL;
    }
    if (process.env.SMALLCODER_E2E_SERVER_URL) {
        // The same scenarios on a team server (issue #33): its key comes in SMALLCODER_API_KEY.
        smallcoderSettings['smallcoder.engine'] = 'llama-server';
        smallcoderSettings['smallcoder.serverUrl'] = process.env.SMALLCODER_E2E_SERVER_URL;
    }
    writeUserSettings(sandbox, smallcoderSettings);
    console.log(`e2e sandbox: ${sandbox.root}`);
    console.log(`e2e screenshots and logs: ${artifactsDir}`);

    const started = Date.now();
    installExtension(sandbox, vsixPath);
    const codeServer = await startCodeServer(sandbox, join(artifactsDir, 'code-server.log'));
    const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: CHROMIUM_FLAGS,
        // Chromium keeps crash reports under XDG_CONFIG_HOME: in the sandbox, not the user's home.
        env: { ...process.env, XDG_CONFIG_HOME: join(sandbox.xdgDir, 'chromium'), XDG_CACHE_HOME: join(sandbox.xdgDir, 'cache') },
    });
    const results = [];
    const stopAll = async () => {
        await browser.close().catch(() => undefined);
        stopCodeServer(codeServer.child);
        for (const log of findOutputLogs(sandbox, 'SmallCoder')) {
            copyFileSync(log, join(artifactsDir, 'smallcoder.log'));
        }
    };
    const overtime = setTimeout(async () => {
        console.error(`e2e: the whole run took longer than ${WHOLE_RUN_LIMIT_MS / 1000} s; stopping`);
        await stopAll();
        process.exit(1);
    }, WHOLE_RUN_LIMIT_MS);

    try {
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        await page.goto(`${codeServer.url}/?folder=${encodeURIComponent(sandbox.workspace)}`);
        const workbench = new Workbench(page, artifactsDir);
        await workbench.waitUntilLoaded();
        console.log(`e2e: editor loaded after ${((Date.now() - started) / 1000).toFixed(1)} s`);

        let blocked = '';
        for (const scenario of scenarios) {
            const scenarioStart = Date.now();
            if (scenario.fakeServerOnly && !usesFakeServer && !(scenario.alsoWithManagedPython && usesManagedPython)) {
                console.log(`skip ${scenario.name} (with --fake-server only)`);
                continue;
            }
            if (!scenario.startUp && Boolean(scenario.fakeEngineOnly) !== usesFakeEngine) {
                console.log(`skip ${scenario.name} (${usesFakeEngine ? 'without' : 'with'} --fake-engine only)`);
                continue;
            }
            if (!scenario.startUp && onlyPattern && !onlyPattern.test(scenario.name)) {
                continue;
            }
            try {
                if (blocked) {
                    throw new Error(`skipped: ${blocked}`);
                }
                await scenario.run(workbench, sandbox);
                results.push({ name: scenario.name, ok: true });
                console.log(`ok   ${scenario.name} (${((Date.now() - scenarioStart) / 1000).toFixed(1)} s)`);
            } catch (error) {
                results.push({ name: scenario.name, ok: false });
                console.log(`FAIL ${scenario.name} (${((Date.now() - scenarioStart) / 1000).toFixed(1)} s)\n     ${error.message}`);
                if (!blocked) {
                    await workbench.screenshot('failure').catch(() => undefined);
                }
                // Without a ready server the remaining scenarios cannot pass: say so instead of waiting.
                if (!blocked && results.length <= 2) {
                    blocked = `"${scenario.name}" failed`;
                }
                await page.keyboard.press('Escape').catch(() => undefined);
            }
        }
    } finally {
        clearTimeout(overtime);
        await stopAll();
    }
    const passed = results.filter((result) => result.ok).length;
    console.log(`e2e run took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    console.log(`e2e: ${passed} passed, ${results.length - passed} failed`);
    rmSync(sandbox.root, { recursive: true, force: true });
    process.exitCode = passed === results.length ? 0 : 1;
}

main().catch((error) => {
    console.error(`e2e: ${error.stack ?? error}`);
    process.exitCode = 1;
});

/** Train asks whether to continue an earlier run's checkpoint or start fresh (#35): continue. */
async function chooseToContinueFromTheCheckpoint(workbench) {
    await workbench.page
        .locator('.quick-input-widget .monaco-list-row', { hasText: 'Continue from the Checkpoint' })
        .first()
        .waitFor({ timeout: 10_000 });
    await workbench.page.keyboard.press('Enter');
}
