// Drives the VS Code workbench in the browser the way a person does: keyboard shortcuts, the
// command palette, Quick Open, menus. Every step waits for what a person would wait to see.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const isMac = process.platform === 'darwin';
const mod = isMac ? 'Meta' : 'Control';

export class Workbench {
    constructor(page, artifactsDir) {
        this.page = page;
        this.artifactsDir = artifactsDir;
        this.shotNumber = 0;
        mkdirSync(artifactsDir, { recursive: true });
    }

    async screenshot(name) {
        this.shotNumber += 1;
        const file = join(this.artifactsDir, `${String(this.shotNumber).padStart(2, '0')}-${name}.png`);
        await this.page.screenshot({ path: file });
        return file;
    }

    async waitUntilLoaded(timeoutMs = 60_000) {
        await this.page.locator('.monaco-workbench').waitFor({ timeout: timeoutMs });
        await this.page.locator('.statusbar').waitFor({ timeout: timeoutMs });
        // The explorer lists the workspace once the remote file system is connected.
        await this.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: timeoutMs });
    }

    /** The status bar entry whose accessible name starts with `labelPrefix`. */
    statusBarItem(labelPrefix) {
        return this.page.locator(`.statusbar-item[aria-label^="${labelPrefix}"], .statusbar-item [aria-label^="${labelPrefix}"]`).first();
    }

    async quickOpen(text) {
        await this.page.keyboard.press(`${mod}+P`);
        const input = this.page.locator('.quick-input-widget input');
        await input.waitFor();
        await input.fill(text);
    }

    async openFile(fileName) {
        // Quick Open searches a cache of the workspace's files: a file written a moment ago
        // may be missing from it ("No matching results") until the cache is refreshed.
        for (let attempt = 1; ; attempt++) {
            await this.quickOpen(fileName);
            try {
                await this.focusedPick(fileName).waitFor({ timeout: 5_000 });
                break;
            } catch (error) {
                if (attempt === 6) {
                    throw error;
                }
                await this.page.keyboard.press('Escape');
                await this.page.waitForTimeout(1_000);
            }
        }
        await this.page.keyboard.press('Enter');
        await this.page.locator(`.tab.active[aria-label^="${fileName}"]`).first().waitFor();
        await this.editor().waitFor();
        await this.editor().click({ position: { x: 200, y: 10 } });
    }

    /** The focused file's editor (not the ones inside widgets or diff views). */
    editor() {
        return this.page.locator('.editor-group-container.active .monaco-editor').first();
    }

    /** Moves the cursor; line and column are 1-based, as in Quick Open's ":line:column". */
    async goTo(line, column) {
        await this.quickOpen(`:${line}:${column}`);
        await this.page.keyboard.press('Enter');
        await this.page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
    }

    async runCommand(title) {
        await this.page.keyboard.press('F1');
        const input = this.page.locator('.quick-input-widget input');
        await input.waitFor();
        await input.fill(`>${title}`);
        await this.focusedPick(title).waitFor();
        await this.page.keyboard.press('Enter');
    }

    /**
     * The input box a command opened, told by its placeholder: the command palette's own input
     * is the same element, so waiting for any quick input can find the palette still closing,
     * and a key pressed then goes to the editor.
     */
    async inputBox(placeholder) {
        const input = this.page.locator(`.quick-input-widget input[placeholder="${placeholder}"]`);
        await input.waitFor();
        return input;
    }

    /**
     * The highlighted entry of the open Quick Open / command palette list, once it shows `text`:
     * Enter picks the highlighted entry, and until the list has been filtered that is whatever
     * was opened last.
     */
    focusedPick(text) {
        return this.page.locator('.quick-input-list .monaco-list-row.focused', { hasText: text }).first();
    }

    async save() {
        await this.page.keyboard.press(`${mod}+S`);
        await this.page.locator('.tab.active.dirty').waitFor({ state: 'detached', timeout: 10_000 }).catch(() => undefined);
    }

    /**
     * The review of a refactoring: waits for its diff tab and its "Apply the change?" question,
     * then presses `button` ('Apply' or 'Discard') and waits for the diff to close; returns the
     * question's text.
     */
    async reviewRefactoring(timeoutMs, { screenshot, button }) {
        const question = this.page.locator('.notifications-toasts .notification-list-item', { hasText: 'Apply the change?' }).first();
        await this.waitForUnlessError(question, timeoutMs);
        const diff = this.page.locator('.tab', { hasText: "SmallCoder's refactoring" }).first();
        await diff.waitFor({ timeout: 10_000 });
        if (screenshot) {
            await this.screenshot(screenshot);
        }
        const text = (await question.innerText()).replace(/\s+/g, ' ');
        await question.locator('.monaco-button', { hasText: button }).first().click();
        await diff.waitFor({ state: 'detached', timeout: 10_000 });
        return text;
    }

    /** The inline completion shown as ghost text in the active editor. */
    ghostText() {
        return this.editor().locator('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text').first();
    }

    /** Opens the Quick Fix / code action menu at the cursor and returns its rows. */
    async openCodeActionMenu() {
        const menu = this.page.locator('.action-widget:not(.action-list-submenu-panel)');
        // On a loaded machine the shortcut can land while focus is still in a webview or leaving
        // Quick Open, and nothing opens. A person would then click the light bulb beside the
        // line, or run Quick Fix from the command palette; the test does the same, in that order.
        const ways = [
            ['the shortcut', () => this.page.keyboard.press(`${mod}+.`)],
            ['the light bulb', () => this.editor().locator('.lightBulbWidget, .codicon-lightbulb').first().click({ timeout: 10_000 })],
            ['the command palette', () => this.runCommand('Quick Fix...')],
        ];
        for (const [index, [how, open]] of ways.entries()) {
            try {
                await open();
                await menu.waitFor({ timeout: 15_000 });
                return menu;
            } catch (error) {
                if (index === ways.length - 1) {
                    throw error;
                }
                console.log(`     the Quick Fix menu did not open with ${how}: trying ${ways[index + 1][0]}`);
            }
        }
    }

    /**
     * Waits for `locator` like a person watching the screen: an error notification that appears
     * meanwhile ends the wait with its message instead of a timeout.
     */
    async waitForUnlessError(locator, timeoutMs) {
        const errorToast = this.page.locator('.notifications-toasts .notification-list-item:has(.codicon-error)').first();
        const winner = await Promise.race([
            locator.waitFor({ timeout: timeoutMs }).then(() => 'expected'),
            errorToast.waitFor({ timeout: timeoutMs + 1000 }).then(() => 'error'),
        ]);
        if (winner === 'error') {
            const message = (await errorToast.innerText().catch(() => '')).replace(/\s+/g, ' ').trim();
            throw new Error(`the editor showed an error: ${message}`);
        }
    }

    /** The text inside the active webview (two nested iframes in the browser). */
    webviewBody(selector = 'body') {
        return this.page.frameLocator('iframe.webview.ready').frameLocator('#active-frame').locator(selector);
    }
}
