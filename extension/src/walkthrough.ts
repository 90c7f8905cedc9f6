/**
 * The first-run walkthrough's commands (package.json `contributes.walkthroughs`): check the
 * toolchain, then (through commands that exist anyway) download the model and install the
 * training packages, and end with a suggestion tried in a sample file. Every step is a
 * notification or an editor, never a modal dialog: the editor stays usable throughout.
 */
import * as fs from 'fs/promises';
import * as path from 'path';
import * as vscode from 'vscode';
import { blockingProblems, checkToolchain, thisMachine, ToolchainReport } from './toolchain';

export const WALKTHROUGH_ID = 'smallcoder.smallcoder#firstRun';
const SHOWN_KEY = 'smallcoder.walkthrough.shown';
const COPY = 'Copy Install Command';
const CHECK_AGAIN = 'Check Again';
/** Context keys the walkthrough's steps complete on. */
export const TOOLCHAIN_READY_CONTEXT = 'smallcoder.toolchainReady';
export const MODEL_READY_CONTEXT = 'smallcoder.modelReady';
const SUGGESTION_TRIED_CONTEXT = 'smallcoder.suggestionTried';

const SAMPLE_NAME = 'first_suggestion.py';
const SAMPLE = `"""SmallCoder's sample: the cursor waits in a function's empty body.

Pause there and SmallCoder suggests the body in grey; Tab accepts it, Esc dismisses it,
Alt+Backslash asks again.
"""


def fahrenheit_to_celsius(fahrenheit: float) -> float:
    """Convert a temperature from degrees Fahrenheit to degrees Celsius."""
    
`;

/** Opens the walkthrough beside the editor the first time the extension sets itself up. */
export async function openWalkthroughOnce(context: vscode.ExtensionContext): Promise<void> {
    if (context.globalState.get<boolean>(SHOWN_KEY)) {
        return;
    }
    await context.globalState.update(SHOWN_KEY, true);
    await vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, true);
}

export function registerWalkthroughCommands(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, register: (command: string, run: () => Promise<unknown>) => void): void {
    register('smallcoder.checkToolchain', async () => {
        const report = await checkToolchain(await thisMachine());
        report.findings.forEach((finding) => log.info(`toolchain: ${finding.tool}: ${finding.ok ? 'ok' : 'MISSING'}: ${finding.detail}`));
        await showToolchainReport(report);
    });
    register('smallcoder.openWalkthrough', async () => vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false));
    register('smallcoder.openSample', () => openSample(context));
}

/** The check's outcome, with this OS's install command a button away when something is missing. */
export async function showToolchainReport(report: ToolchainReport): Promise<void> {
    const problems = blockingProblems(report);
    const found = report.findings.map((finding) => finding.detail).join('; ');
    if (!problems) {
        await vscode.commands.executeCommand('setContext', TOOLCHAIN_READY_CONTEXT, true);
        const advice = report.installHint ? ` Optional: ${report.installHint}` : '';
        const choice = await vscode.window.showInformationMessage(`SmallCoder can build its environment here: ${found}.${advice}`, ...(advice ? [COPY] : []));
        if (choice === COPY) {
            await vscode.env.clipboard.writeText(report.installHint);
        }
        return;
    }
    await vscode.commands.executeCommand('setContext', TOOLCHAIN_READY_CONTEXT, false);
    const choice = await vscode.window.showWarningMessage(
        `SmallCoder cannot build its environment yet: ${problems}. Install: ${report.installHint.split('\n').join(' ; ')}`,
        COPY,
        CHECK_AGAIN,
    );
    if (choice === COPY) {
        await vscode.env.clipboard.writeText(report.installHint);
        vscode.window.setStatusBarMessage('SmallCoder: the install command is on the clipboard', 5000);
    } else if (choice === CHECK_AGAIN) {
        await vscode.commands.executeCommand('smallcoder.checkToolchain');
    }
}

/**
 * The sample file, fresh unless it is open with unsaved changes, with the cursor in the empty
 * body and a suggestion asked for; the step is done when a suggestion is accepted there.
 */
async function openSample(context: vscode.ExtensionContext): Promise<void> {
    const file = path.join(context.globalStorageUri.fsPath, 'sample', SAMPLE_NAME);
    const open = vscode.workspace.textDocuments.find((document) => document.uri.fsPath === file);
    if (!open?.isDirty) {
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, SAMPLE);
    }
    const document = await vscode.workspace.openTextDocument(file);
    const editor = await vscode.window.showTextDocument(document);
    // The indented blank line before the file's final newline.
    const body = new vscode.Position(document.lineCount - 2, 4);
    editor.selection = new vscode.Selection(body, body);
    watchForAcceptedSuggestion(context, document.uri);
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
}

/**
 * An accepted suggestion arrives as one edit of several characters at once (typing inserts one,
 * or an auto-closed pair); that marks the walkthrough's last step done.
 */
function watchForAcceptedSuggestion(context: vscode.ExtensionContext, sample: vscode.Uri): void {
    const listener = vscode.workspace.onDidChangeTextDocument(async (event) => {
        if (event.document.uri.toString() !== sample.toString()) {
            return;
        }
        if (event.contentChanges.some((change) => change.text.trim().length > 2)) {
            listener.dispose();
            await vscode.commands.executeCommand('setContext', SUGGESTION_TRIED_CONTEXT, true);
            void vscode.window.showInformationMessage('SmallCoder: that was your first accepted suggestion. Alt+\\ asks for one anywhere; the status bar menu has the rest.');
        }
    });
    context.subscriptions.push(listener);
}
