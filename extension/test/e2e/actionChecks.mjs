// Explain and Refactor checked against the workspace (issue #36), in a real editor against the
// real server with the rule-following fake engine (`--fake-engine`): an explanation naming a
// caller the index does not know shows a note under it and the sentence rewritten, and a
// refactor whose tests fail is refused with the check that failed. The fake engine explains
// with the text of a `fake-engine explanation:` comment, rewrites a sentence with that of a
// `fake-engine rewrite:` one, and refactors by adding a `# rewritten` comment
// (tests/lsp_fake_server.py), which the workspace's test here forbids.
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './codeServer.mjs';
import { REFACTOR_PLACEHOLDER, assert, lineNumberOf } from './helpers.mjs';

/**
 * The test command the refactor runs (in a scratch copy): only the test written below, with the
 * repository's Python by its real path (a checkout under /tmp is hidden from a confined run).
 */
const PYTHON = join(realpathSync(join(repoRoot, '.venv')), 'bin', 'python');
export const ACTION_CHECK_SETTINGS = { 'smallcoder.testCommand': `${PYTHON} -m pytest -q tests/test_discounts.py` };

const PRICING = `"""Prices for the shop."""


def net_price(gross_cents: int) -> int:
    # fake-engine explanation: Returns the net price; it is used by \`apply_refund\` at checkout.
    # fake-engine rewrite: Returns the net price of a gross price in cents.
    return gross_cents * 100 // 120
`;

// The marker sits at the file's end, far from the cursor: only the whole file's text carries it.
const SHIPPING = `"""Shipping costs."""

FREE_FROM_CENTS = 5000


def cost(total_cents: int) -> int:
    return 0 if total_cents >= FREE_FROM_CENTS else 499
# fake-engine explanation: Rates and the free-shipping threshold of the shop.
`;

const DISCOUNTS = `def half_price(cents: int) -> int:
    return cents // 2
`;

const DISCOUNT_TEST = `from pathlib import Path


def test_discounts_is_as_written():
    assert "rewritten" not in (Path(__file__).parent.parent / "discounts.py").read_text()
`;

/**
 * Runs an Explain command and waits for its panel, titled after `subject`, to show `text`;
 * returns the panel's body.
 */
async function explain(workbench, command, subject, text) {
    await workbench.runCommand(command);
    const panelTab = workbench.page.locator(`.tab[aria-label*="SmallCoder: Explain ${subject}"]`).first();
    await workbench.waitForUnlessError(panelTab, 120_000);
    const explanation = workbench.webviewBody('#smallcoder-explanation');
    await workbench.waitForUnlessError(explanation.getByText(text), 60_000);
    return explanation;
}

export const actionCheckScenarios = [
    {
        name: 'Explain shows a note under the explanation for a caller the workspace index does not know',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            const file = join(sandbox.workspace, 'pricing.py');
            writeFileSync(file, PRICING);
            await workbench.openFile('pricing.py');
            await workbench.goTo(lineNumberOf(file, 'def net_price') + 2, 9);
            const explanation = await explain(workbench, 'SmallCoder: Explain Function', 'net_price',
                'Checked against the workspace index');
            const text = await explanation.innerText();
            await workbench.screenshot('explanation-with-a-flagged-caller');
            assert(/called by apply_refund.*the index finds no call of net_price/s.test(text.replace(/`/g, '')),
                `the panel does not flag apply_refund: "${text}"`);
            // The sentence the index contradicts is rewritten, and the note says what it said.
            assert(text.includes('Returns the net price of a gross price in cents.'), `the panel does not show the rewritten sentence: "${text}"`);
            assert(/Rewritten; it read: .Returns the net price; it is used by apply_refund at checkout\./.test(text.replace(/`/g, '')),
                `the note does not say what the sentence read: "${text}"`);
        },
    },
    {
        name: '"SmallCoder: Explain File" explains the whole file, with the cursor outside any function',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            const file = join(sandbox.workspace, 'shipping.py');
            writeFileSync(file, SHIPPING);
            await workbench.openFile('shipping.py');
            await workbench.goTo(1, 1);
            await explain(workbench, 'SmallCoder: Explain File', 'shipping.py', 'Rates and the free-shipping threshold');
            await workbench.screenshot('explanation-of-a-file');
        },
    },
    {
        name: 'a refactor whose tests fail in the scratch copy is refused, and the file stays as it was',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            const file = join(sandbox.workspace, 'discounts.py');
            writeFileSync(file, DISCOUNTS);
            mkdirSync(join(sandbox.workspace, 'tests'), { recursive: true });
            writeFileSync(join(sandbox.workspace, 'tests', 'test_discounts.py'), DISCOUNT_TEST);
            await workbench.openFile('discounts.py');
            await workbench.goTo(lineNumberOf(file, 'def half_price') + 1, 9);
            await workbench.runCommand('SmallCoder: Refactor Function');
            const instruction = await workbench.inputBox(REFACTOR_PLACEHOLDER);
            await instruction.press('Enter');
            const refused = workbench.page.locator('.notifications-toasts .notification-list-item', {
                hasText: /no rewrite passed the checks.*tests/,
            }).first();
            await refused.waitFor({ timeout: 180_000 });
            await workbench.screenshot('refactor-refused-by-the-tests');
            const message = (await refused.innerText()).replace(/\s+/g, ' ');
            assert(message.includes('test_discounts_is_as_written'), `the refusal does not name the failing test: "${message}"`);
            assert(readFileSync(file, 'utf8') === DISCOUNTS, 'discounts.py changed on disk');
            assert(!(await workbench.page.locator('.tab.active.dirty').isVisible()), 'the refused refactor edited the buffer');
            // The refusal is an error toast: the next scenario must not take it for its own.
            await workbench.runCommand('Notifications: Clear All Notifications');
        },
    },
];
