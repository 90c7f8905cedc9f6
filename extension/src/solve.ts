/**
 * "SmallCoder: Solve with Agent": the server edits a scratch copy until the tests pass; the user
 * reviews a diff of every changed file and accepts or discards. Nothing is written before Accept.
 */
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import { requestWithProgress } from './progress';
import { acceptedNotification, SolveResult, solveRequest } from './protocol';
import { readSettings } from './settings';

export const PROPOSED_SCHEME = 'smallcoder-proposed';
const REMEMBERED_COMMAND_KEY = 'smallcoder.solve.testCommand';
const PYTEST_COMMAND = 'python -m pytest -q';
/** Files whose presence says the project's tests run with pytest. */
const PYTEST_MARKERS = ['pytest.ini', 'conftest.py', 'tox.ini', 'setup.cfg', 'pyproject.toml', 'tests', 'test'];
/**
 * Other projects' own files and the test command the agent reads best for them (the server
 * adds the runner's report option in its copy, issue #37). Checked before pytest's markers:
 * a JavaScript project has a test/ folder too.
 */
const PROJECT_TEST_COMMANDS: ReadonlyArray<[string, string]> = [
    ['Cargo.toml', 'cargo test'],
    ['go.mod', 'go test ./...'],
    ['pom.xml', 'mvn -q test'],
];

/** The proposed texts, shown read-only on the right side of the diffs. */
export class ProposedFiles implements vscode.TextDocumentContentProvider {
    private readonly texts = new Map<string, string>();

    set(uri: vscode.Uri, text: string): void {
        this.texts.set(uri.toString(), text);
    }

    clear(): void {
        this.texts.clear();
    }

    provideTextDocumentContent(uri: vscode.Uri): string {
        return this.texts.get(uri.toString()) ?? '';
    }
}

export async function solveWithAgent(
    context: vscode.ExtensionContext,
    client: LanguageClient,
    proposed: ProposedFiles,
    log: vscode.LogOutputChannel,
): Promise<void> {
    if (!vscode.workspace.isTrusted) {
        // The agent runs the workspace's tests, that is the workspace's code.
        const manage = 'Manage Workspace Trust';
        const answer = await vscode.window.showWarningMessage(
            'SmallCoder: the agent runs this workspace\'s tests, so it works only in a trusted workspace.',
            manage,
        );
        if (answer === manage) {
            await vscode.commands.executeCommand('workbench.trust.manage');
        }
        return;
    }
    const folder = await pickFolder();
    if (folder === undefined) {
        return;
    }
    const testCommand = await askTestCommand(context, folder);
    if (testCommand === undefined) {
        return;
    }
    const result = await runAgent(client, folder, testCommand);
    if (result === undefined) {
        return;
    }
    log.info(`Agent: ${result.status} after ${result.rounds} round(s); tests isolated by ${result.isolation}; transcript ${result.transcript}`);
    for (const note of result.notes ?? []) {  // a server before #31 sends none
        log.warn(`Agent's copy: ${note}`);
    }
    const edit = await client.protocol2CodeConverter.asWorkspaceEdit(result.edit);
    const files = edit.entries();
    if (files.length === 0) {
        const say = result.status === 'already-passing' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
        void say(`SmallCoder: ${result.message}`);
        return;
    }
    proposed.clear();
    for (const [uri, edits] of files) {
        const right = uri.with({ scheme: PROPOSED_SCHEME, query: String(Date.now()) });
        proposed.set(right, edits[0].newText);
        const name = vscode.workspace.asRelativePath(uri);
        await vscode.commands.executeCommand('vscode.diff', uri, right, `${name} ↔ SmallCoder's fix`, { preview: false });
    }
    const outcome =
        (result.status === 'solved'
            ? `the tests pass with this change (${result.rounds} round(s))`
            : `${result.failingBefore} → ${result.failingAfter} failing tests (${result.message})`) +
        `; test isolation: ${result.isolation}`;
    const choice = await vscode.window.showInformationMessage(
        `SmallCoder: ${outcome}. Accept the change to ${files.length} file(s)?`,
        'Accept',
        'Discard',
    );
    if (choice !== 'Accept') {
        return;
    }
    if (!(await vscode.workspace.applyEdit(edit))) {
        throw new Error('VS Code did not apply the agent\'s change: did the files change meanwhile?');
    }
    for (const [uri] of files) {
        const document = vscode.workspace.textDocuments.find((open) => open.uri.toString() === uri.toString());
        await document?.save();
    }
    if (result.offerId) {
        void client.sendNotification(acceptedNotification, { offerId: result.offerId });
    }
    vscode.window.setStatusBarMessage(`SmallCoder: the agent's change is applied to ${files.length} file(s)`, 5000);
}

/** The request under a cancellable notification that shows the server's round messages. */
function runAgent(client: LanguageClient, folder: vscode.WorkspaceFolder, testCommand: string): Promise<SolveResult | undefined> {
    return requestWithProgress(client, 'SmallCoder: solving with the agent', solveRequest, {
        workspaceFolder: folder.uri.toString(),
        testCommand,
    });
}

async function pickFolder(): Promise<vscode.WorkspaceFolder | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length === 0) {
        throw new Error('Open a folder with tests first: the agent runs its test command.');
    }
    return folders.length === 1 ? folders[0] : vscode.window.showWorkspaceFolderPick({ placeHolder: 'Which project should the agent fix?' });
}

/**
 * Asked once per run, offering the last answer for this folder, else the setting, else the
 * command of the project's own test runner, else pytest when the project looks like it.
 */
async function askTestCommand(context: vscode.ExtensionContext, folder: vscode.WorkspaceFolder): Promise<string | undefined> {
    const key = `${REMEMBERED_COMMAND_KEY}:${folder.uri.toString()}`;
    const offered =
        context.workspaceState.get<string>(key) ||
        readSettings().testCommand ||
        (await projectTestCommand(folder)) ||
        ((await looksLikePytest(folder)) ? PYTEST_COMMAND : '');
    const answer = await vscode.window.showInputBox({
        title: 'SmallCoder: Solve with Agent',
        prompt: 'The command that runs the tests (run without a shell, in a copy of the workspace)',
        value: offered,
        placeHolder: 'for example: python -m pytest -q',
        ignoreFocusOut: true,
    });
    const command = answer?.trim();
    if (command) {
        await context.workspaceState.update(key, command);
    }
    return command || undefined;
}

async function projectTestCommand(folder: vscode.WorkspaceFolder): Promise<string> {
    for (const [name, command] of PROJECT_TEST_COMMANDS) {
        try {
            await vscode.workspace.fs.stat(vscode.Uri.joinPath(folder.uri, name));
            return command;
        } catch {
            // not there: try the next project file
        }
    }
    return (await hasNpmTestScript(folder)) ? 'npm test' : '';
}

/** package.json names a test script (a Python project may keep one for its tooling only). */
async function hasNpmTestScript(folder: vscode.WorkspaceFolder): Promise<boolean> {
    try {
        const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.joinPath(folder.uri, 'package.json')));
        return typeof JSON.parse(text)?.scripts?.test === 'string';
    } catch {
        return false; // none, or not JSON: nothing to offer from it
    }
}

async function looksLikePytest(folder: vscode.WorkspaceFolder): Promise<boolean> {
    for (const name of PYTEST_MARKERS) {
        try {
            await vscode.workspace.fs.stat(vscode.Uri.joinPath(folder.uri, name));
            return true;
        } catch {
            // not there: try the next marker
        }
    }
    return (await vscode.workspace.findFiles(new vscode.RelativePattern(folder, '**/test_*.py'), '**/.venv/**', 1)).length > 0;
}
