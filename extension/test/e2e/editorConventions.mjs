// The editor conventions of issue #32, in a real editor against the real server with the
// rule-following fake engine (`--fake-engine`): completions per language, excluded files,
// accepting a suggestion a line at a time, snoozing, and files changed on disk. The fake
// engine answers a fill-in-the-middle prompt with the text of a `fake-engine reply:` line in it
// (tests/lsp_fake_server.py), so a test can tell which files reached the prompt.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert, lineNumberOf, userSetting, waitFor } from './helpers.mjs';

/** Settings the scenarios start with, besides the model and the server. */
export const EDITOR_CONVENTION_SETTINGS = { 'smallcoder.exclude': ['generated/'], 'smallcoder.logLevel': 'debug', 'smallcoder.inlineCompletions.maxTokens': 120 };

/** How long a suggestion that should not come is waited for. */
const QUIET_MS = 4_000;

/** Asks for a suggestion as a user does (the command or its key) until one shows. */
async function suggestionAppears(workbench, timeoutMs = 20_000, ask = () => workbench.runCommand('SmallCoder: Trigger Inline Suggestion')) {
    const ghost = workbench.ghostText();
    await waitFor(
        'a suggestion',
        async () => {
            await ask();
            return ghost.waitFor({ timeout: 3_000 }).then(() => true, () => false);
        },
        timeoutMs,
        100,
    );
}

/** Asks for a suggestion and checks that none shows for a while. */
async function noSuggestion(workbench, why, ask = () => workbench.runCommand('SmallCoder: Trigger Inline Suggestion')) {
    await ask();
    const shown = await workbench.ghostText().waitFor({ timeout: QUIET_MS }).then(() => true, () => false);
    assert(!shown, `a suggestion showed ${why}`);
}

/** All the ghost text shown: the editor may draw one suggestion in several pieces. */
async function ghostTextShown(workbench) {
    const pieces = await workbench.editor().locator('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text').allInnerTexts();
    return pieces.join('');
}

async function statusLabel(workbench) {
    return (await workbench.statusBarItem('SmallCoder').getAttribute('aria-label')) ?? '';
}

/** Picks "Snooze Inline Completions…" in the status bar menu, then `duration`. */
async function snoozeFromStatusBar(workbench, duration) {
    const entry = workbench.page.locator('.quick-input-list .monaco-list-row', { hasText: 'Snooze Inline Completions' }).first();
    // A click that lands while a notification toast slides away can go unanswered: click again.
    await waitFor(
        'the status bar menu to offer Snooze',
        async () => {
            await workbench.statusBarItem('SmallCoder').click();
            return entry.waitFor({ timeout: 5_000 }).then(() => true, () => false);
        },
        20_000,
        100,
    );
    await workbench.screenshot('status-bar-menu-snooze');
    await entry.click();
    const input = workbench.page.locator('.quick-input-widget input[placeholder="For how long?"]');
    await input.waitFor({ timeout: 10_000 });
    await input.fill(duration);
    await workbench.focusedPick(duration).waitFor();
    await workbench.page.keyboard.press('Enter');
}

export const editorConventionScenarios = [
    {
        name: 'no suggestion in a Markdown file by default, one once markdown is turned on',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            await workbench.openFile('notes.md');
            await workbench.goTo(lineNumberOf(join(sandbox.workspace, 'notes.md'), 'Write what') + 2, 1);
            await workbench.page.keyboard.type('The ', { delay: 50 });
            await noSuggestion(workbench, 'in Markdown, which is off by default');
            await workbench.screenshot('markdown-off');
            await workbench.runCommand('SmallCoder: Toggle Inline Completions for This Language');
            const settingsFile = join(sandbox.userDataDir, 'User', 'settings.json');
            await waitFor('smallcoder.enable to turn markdown on', () => userSetting(settingsFile, 'smallcoder.enable')?.markdown === true, 10_000, 200);
            await suggestionAppears(workbench, 30_000);
            await workbench.screenshot('markdown-on');
            await workbench.page.keyboard.press('Escape');
        },
    },
    {
        name: 'no suggestion in a file smallcoder.exclude names, one in the same place elsewhere',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            const line = lineNumberOf(join(sandbox.workspace, 'generated', 'report_copy.py'), '    total =') + 1;
            await workbench.openFile('report_copy.py');
            await workbench.goTo(line, 1);
            await workbench.page.keyboard.type('    ', { delay: 50 });
            await noSuggestion(workbench, 'in generated/report_copy.py, which smallcoder.exclude names');
            await workbench.screenshot('excluded-file');
            await workbench.openFile('checks.py');
            await workbench.goTo(lineNumberOf(join(sandbox.workspace, 'checks.py'), '    # fake-engine reply') + 1, 1);
            await workbench.page.keyboard.type('    ', { delay: 50 });
            await suggestionAppears(workbench);
            await workbench.page.keyboard.press('Escape');
        },
    },
    {
        name: 'a file changed on disk is seen by the next completion',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            // greet.py calls whisper(), which helper.py defines only once it is written on disk
            // (as by a git checkout); the fake engine answers with the line whisper's body holds.
            const file = join(sandbox.workspace, 'greet.py');
            await workbench.openFile('greet.py');
            await workbench.goTo(lineNumberOf(file, '    quiet =') + 1, 1);
            await workbench.page.keyboard.type('    ', { delay: 50 });
            await suggestionAppears(workbench);
            const before = await ghostTextShown(workbench);
            assert(!before.includes('whisper'), `the suggestion knew whisper before helper.py existed: "${before}"`);
            await workbench.page.keyboard.press('Escape');
            writeFileSync(
                join(sandbox.workspace, 'helper.py'),
                'def whisper(text: str) -> str:\n    # fake-engine reply for greet.py: return quiet + whisper("!")\n    return text.lower()\n',
            );
            await waitFor(
                'a suggestion from the helper written on disk',
                async () => {
                    await workbench.page.keyboard.press('Escape');
                    await suggestionAppears(workbench, 10_000);
                    return (await ghostTextShown(workbench)).includes('whisper');
                },
                30_000,
                500,
            );
            await workbench.screenshot('changed-on-disk');
            await workbench.page.keyboard.press('Escape');
        },
    },
    {
        name: 'accept next line (Shift+Tab) inserts exactly one line of the suggestion',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            const file = join(sandbox.workspace, 'checks.py');
            await workbench.openFile('checks.py');
            const line = lineNumberOf(file, '    # fake-engine reply') + 1;
            const before = readFileSync(file, 'utf8').split('\n');
            await workbench.goTo(line, 1);
            await workbench.page.keyboard.type('    ', { delay: 50 });
            // Alt+\ is SmallCoder's Trigger Inline Suggestion.
            await suggestionAppears(workbench, 20_000, () => workbench.page.keyboard.press('Alt+Backslash'));
            await workbench.screenshot('before-accept-next-line');
            await workbench.page.keyboard.press('Shift+Tab');
            await workbench.screenshot('after-accept-next-line');
            await workbench.save();
            const after = readFileSync(file, 'utf8').split('\n');
            const added = after.filter((text, index) => text !== before[index]);
            assert(after[line - 1].trimEnd() === '    if quantity < 0:', `line ${line} reads "${after[line - 1]}"`);
            assert(!after.some((text) => text.trim().startsWith('raise ValueError')), 'more than one line of the suggestion was inserted');
            assert(after.length - before.length <= 1, `${after.length - before.length} lines were added: ${JSON.stringify(added)}`);
            await workbench.page.keyboard.press('Escape');
        },
    },
    {
        name: 'snoozing from the status bar hides suggestions, across a server restart, until it ends',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            await workbench.openFile('stats.py');
            await workbench.goTo(lineNumberOf(join(sandbox.workspace, 'stats.py'), 'def median') + 3, 1);
            await workbench.page.keyboard.type('    ', { delay: 50 });
            await suggestionAppears(workbench);
            await workbench.page.keyboard.press('Escape');
            await snoozeFromStatusBar(workbench, '1 minute');
            const snoozedAt = Date.now();
            await waitFor('the status bar to say snoozed', async () => (await statusLabel(workbench)).includes('snoozed'), 10_000, 200);
            await workbench.screenshot('snoozed');
            await workbench.editor().click({ position: { x: 200, y: 10 } });
            await workbench.goTo(lineNumberOf(join(sandbox.workspace, 'stats.py'), 'def median') + 3, 5);
            await noSuggestion(workbench, 'while snoozed');
            await workbench.runCommand('SmallCoder: Restart Server');
            await waitFor('the restarted server to be ready', async () => (await statusLabel(workbench)).includes('ready'), 60_000, 500);
            assert((await statusLabel(workbench)).includes('snoozed'), 'the snooze ended with the server restart');
            await noSuggestion(workbench, 'while snoozed, after the server restarted');
            await waitFor('the snooze to end', async () => !(await statusLabel(workbench)).includes('snoozed'), 90_000, 1_000);
            assert(Date.now() - snoozedAt >= 59_000, `the snooze ended after ${(Date.now() - snoozedAt) / 1000} s, not a minute`);
            await suggestionAppears(workbench);
            await workbench.screenshot('snooze-ended');
            await workbench.page.keyboard.press('Escape');
        },
    },
];
