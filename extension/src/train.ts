/**
 * "SmallCoder: Train Personal Adapter": the server trains a LoRA adapter on the chosen
 * repositories (the served model is its base); the user reads the evaluation report and decides
 * whether to enable it. Cancel keeps the checkpoint: training the same folders again resumes.
 * A Python without the training packages is offered their installation first.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import { requestWithProgress } from './progress';
import { TrainResult, trainRequest } from './protocol';
import { SECTION } from './settings';
import { ensureTrainingPackages } from './trainingInstall';

const TITLE = 'SmallCoder: Train Personal Adapter';
const REMEMBERED_MINUTES_KEY = 'smallcoder.train.maxMinutes';
const DEFAULT_MINUTES = 60;
const ENABLE = 'Enable Adapter';

interface FolderItem extends vscode.QuickPickItem {
    uri?: vscode.Uri;
}

export async function trainPersonalAdapter(
    context: vscode.ExtensionContext,
    client: LanguageClient,
    python: string,
    log: vscode.LogOutputChannel,
): Promise<void> {
    // The server's preflight, asked before any question: without the packages nothing can train.
    if (!(await ensureTrainingPackages(client, python, log, 'ask first'))) {
        return;
    }
    const repositories = await pickRepositories();
    if (repositories === undefined) {
        return;
    }
    const minutes = await askMinutes(context);
    if (minutes === undefined) {
        return;
    }
    const start = await askStart();
    if (start === undefined) {
        return;
    }
    const result = await runTraining(client, repositories, minutes, start);
    if (result === undefined) {
        void vscode.window.showInformationMessage(
            'SmallCoder: training stopped. Its checkpoint is kept: train the same folders again to resume.',
        );
        return;
    }
    log.info(
        `Adapter trained: ${result.adapter} (${result.steps} steps, ${result.tokensPerSecond} tokens/s, ` +
            `stopped by ${result.stoppedBy}); ${result.message}; report ${result.report ?? 'none'}`,
    );
    if (result.report !== null) {
        await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(result.report));
    }
    await offerToEnable(result);
}

/**
 * The workspace folders, all checked, plus an entry that opens a folder dialog for others;
 * with no folder open, the dialog straight away.
 */
async function pickRepositories(): Promise<vscode.Uri[] | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const addOthers: FolderItem = {
        label: '$(folder-opened) Add Other Folders…',
        description: 'choose them in a folder dialog',
        alwaysShow: true,
    };
    const chosen: vscode.Uri[] = [];
    let browse = folders.length === 0;
    if (folders.length > 0) {
        const items: FolderItem[] = [
            ...folders.map((folder) => ({ label: folder.name, description: folder.uri.fsPath, uri: folder.uri, picked: true })),
            addOthers,
        ];
        const picked = await vscode.window.showQuickPick(items, {
            title: TITLE,
            placeHolder: 'Which repositories should the adapter learn your style from?',
            canPickMany: true,
            ignoreFocusOut: true,
        });
        if (picked === undefined) {
            return undefined;
        }
        chosen.push(...picked.flatMap((item) => (item.uri ? [item.uri] : [])));
        browse = picked.includes(addOthers);
    }
    if (browse) {
        const more = await vscode.window.showOpenDialog({
            title: TITLE,
            openLabel: 'Learn from These Folders',
            canSelectFolders: true,
            canSelectFiles: false,
            canSelectMany: true,
        });
        chosen.push(...(more ?? []));
    }
    const unique = [...new Map(chosen.map((uri) => [uri.toString(), uri])).values()];
    if (unique.length === 0) {
        void vscode.window.showWarningMessage('SmallCoder: choose at least one repository to learn from.');
        return undefined;
    }
    return unique;
}

/** The wall-time budget, offering the last answer (an hour the first time). */
async function askMinutes(context: vscode.ExtensionContext): Promise<number | undefined> {
    const offered = context.globalState.get<number>(REMEMBERED_MINUTES_KEY, DEFAULT_MINUTES);
    const answer = await vscode.window.showInputBox({
        title: TITLE,
        prompt: 'Minutes of training at most; the evaluation report takes a few minutes more. Cancel keeps a checkpoint.',
        value: String(offered),
        ignoreFocusOut: true,
        validateInput: (text) => (Number(text) > 0 ? undefined : 'A number of minutes greater than 0'),
    });
    if (answer === undefined) {
        return undefined;
    }
    const minutes = Number(answer);
    await context.globalState.update(REMEMBERED_MINUTES_KEY, minutes);
    return minutes;
}

/** Continue the checkpoint an earlier run of the same folders left (when there is one), or start over. */
async function askStart(): Promise<'auto' | 'fresh' | undefined> {
    const items: (vscode.QuickPickItem & { start: 'auto' | 'fresh' })[] = [
        { label: 'Continue from the Checkpoint', description: 'if an earlier run of these folders left one', start: 'auto' },
        { label: 'Start Fresh', description: 'discard that checkpoint and train from the model', start: 'fresh' },
    ];
    const chosen = await vscode.window.showQuickPick(items, { title: TITLE, ignoreFocusOut: true });
    return chosen?.start;
}

/** The request under a cancellable notification that shows the server's step, loss and ETA. */
function runTraining(
    client: LanguageClient,
    repositories: vscode.Uri[],
    maxMinutes: number,
    start: 'auto' | 'fresh',
): Promise<TrainResult | undefined> {
    return requestWithProgress(client, 'SmallCoder: training a personal adapter', trainRequest, {
        repositories: repositories.map((uri) => uri.toString()),
        maxMinutes,
        start,
    });
}

/**
 * Offers to enable only an adapter that kept its guard-set score: the server refuses the others,
 * so offering would only promise what does not happen.
 */
async function offerToEnable(result: TrainResult): Promise<void> {
    const name = path.basename(result.adapter);
    if (result.guardPassed === false) {
        void vscode.window.showWarningMessage(`SmallCoder: ${name} is trained, but ${result.message}. The report has the figures.`);
        return;
    }
    const choice = await vscode.window.showInformationMessage(
        `SmallCoder: ${name} is trained (${result.steps} steps, ${Math.round(result.tokensPerSecond)} tokens/s); ` +
            `${result.message}. Enable it for completions?`,
        ENABLE,
    );
    if (choice === ENABLE) {
        await enableAdapter(result.adapter);
    }
}

/** In the user settings, as the adapter belongs to the user; the server switches without reloading. */
async function enableAdapter(adapter: string): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    await config.update('adapter', adapter, vscode.ConfigurationTarget.Global);
    const inspected = config.inspect<string>('adapter');
    if (inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined) {
        void vscode.window.showWarningMessage(
            'SmallCoder: the adapter is set in your user settings, but this workspace sets smallcoder.adapter itself, and that wins.',
        );
        return;
    }
    vscode.window.setStatusBarMessage(`SmallCoder: adapter ${path.basename(adapter)} enabled`, 5000);
}
