// Solve with Agent beyond pytest (issue #37), in a real editor against the real server with the
// rule-following fake engine (`--fake-engine`): the case, a two-file JavaScript project
// tested with `node --test`, one wrong line in a helper. The fake engine rewrites the line under
// a `fake-engine fix:` comment of the code it is shown (tests/lsp_fake_server.py): the fix
// comes only if the server ran node --test, read its failure and showed the helper the test
// calls; the review, the untouched file and Accept are the editor's.
import { readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert, waitFor } from './helpers.mjs';

/**
 * `node --test`, with node by its real path: the Node 24 that code-server puts first on PATH
 * lives in the checkout, which a confined run does not see when the checkout is under /tmp.
 */
const NODE_TEST = `${realpathSync(process.execPath)} --test`;
const WRONG_LINE = "  return title.trim().toLowerCase().split(/\\s+/).join('_');";
const FIXED_LINE = "  return title.trim().toLowerCase().split(/\\s+/).join('-');";

const SLUG = `// Addresses of the blog's posts.

function slugify(title) {
  // fake-engine fix: ${FIXED_LINE.trim()}
${WRONG_LINE}
}

module.exports = { slugify };
`;

const SLUG_TEST = `const test = require('node:test');
const assert = require('node:assert');
const { slugify } = require('./slug');

test('slugify joins the words with hyphens', () => {
  assert.strictEqual(slugify('  Hello Big World '), 'hello-big-world');
});
`;

export const agentRunnerScenarios = [
    {
        name: '"SmallCoder: Solve with Agent" fixes a node --test JavaScript project: the diff is reviewed and Accept writes the fix',
        fakeEngineOnly: true,
        async run(workbench, sandbox) {
            const file = join(sandbox.workspace, 'slug.js');
            const testFile = join(sandbox.workspace, 'slug.test.js');
            writeFileSync(file, SLUG);
            writeFileSync(testFile, SLUG_TEST);
            try {
                await workbench.runCommand('SmallCoder: Solve with Agent');
                const command = workbench.page.locator('.quick-input-widget input');
                await command.waitFor();
                // The setting of this run offers the refactor checks' pytest: the user types theirs.
                await command.fill(NODE_TEST);
                await workbench.screenshot('solve-js-test-command');
                await workbench.page.keyboard.press('Enter');
                const toasts = workbench.page.locator('.notifications-toasts .notification-list-item');
                const review = toasts.filter({ hasText: 'Accept the change' }).first();
                const noFix = toasts.filter({ hasText: 'still failing' }).or(toasts.filter({ hasText: 'no function of the workspace' })).first();
                await workbench.waitForUnlessError(review.or(noFix), 120_000);
                if (!(await review.isVisible())) {
                    throw new Error(`the agent found no fix: ${(await noFix.innerText()).replace(/\s+/g, ' ')}`);
                }
                assert((await review.innerText()).includes('the tests pass with this change'), `the review says: ${(await review.innerText()).replace(/\s+/g, ' ')}`);
                assert(readFileSync(file, 'utf8') === SLUG, 'slug.js changed before Accept');
                const diffTab = workbench.page.locator('.tab', { hasText: "slug.js ↔ SmallCoder's fix" }).first();
                await diffTab.waitFor({ timeout: 10_000 });
                // The diff editor shows the wrong line taken out and the fixed one put in.
                const diff = workbench.page.locator('.monaco-diff-editor').first();
                await waitFor(
                    'the diff to show the fixed line',
                    async () => (await diff.locator('.line-insert, .char-insert').count()) > 0 && (await diff.innerText()).includes(".join('-')"),
                    10_000,
                    200,
                );
                await workbench.screenshot('solve-js-diff');
                assert(readFileSync(file, 'utf8') === SLUG, 'slug.js changed while the diff was shown');
                await review.locator('.monaco-button', { hasText: 'Accept' }).first().click();
                await waitFor('slug.js to be saved with the fix', () => readFileSync(file, 'utf8') !== SLUG, 20_000);
                await workbench.screenshot('solve-js-accepted');
                const after = readFileSync(file, 'utf8');
                assert(after === SLUG.replace(WRONG_LINE, FIXED_LINE), `slug.js after Accept:\n${after}`);
            } finally {
                await workbench.runCommand('View: Close All Editors');
                rmSync(file, { force: true });
                rmSync(testFile, { force: true });
            }
        },
    },
];
