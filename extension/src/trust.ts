/**
 * Workspace trust for the settings that name a program or a file (package.json's
 * `restrictedConfigurations`, generated from server/settings.py). A cloned repository's
 * .vscode/settings.json must not choose what SmallCoder runs or loads: in an untrusted workspace
 * its values are ignored; in a trusted one a program it names is shown to the user once, and run
 * only when they agree.
 */
import * as vscode from 'vscode';

const SECTION = 'smallcoder';
/** Settings whose value is a program SmallCoder runs: confirmed before their first run. */
export const PROGRAM_SETTINGS = ['pythonPath', 'testCommand'] as const;
/** Settings whose value is a file SmallCoder loads: never taken from an untrusted workspace. */
export const FILE_SETTINGS = ['model', 'adapter'] as const;
/** Settings that send the user's code to a server: confirmed like a program before first use. */
export const SERVER_SETTINGS = ['engine', 'serverUrl', 'serverModel'] as const;
type GuardedSetting = (typeof PROGRAM_SETTINGS)[number] | (typeof FILE_SETTINGS)[number] | (typeof SERVER_SETTINGS)[number];
const CONFIRMED_SETTINGS = [...PROGRAM_SETTINGS, ...SERVER_SETTINGS] as const;
const AGREED_KEY = 'smallcoder.trust.agreed';

let agreements: vscode.Memento | undefined;

/** Remembers the user's answers in the workspace's own storage (one answer per value). */
export function initTrust(context: vscode.ExtensionContext): void {
    agreements = context.workspaceState;
}

/** The value the workspace's settings give `key`, when they give one. */
function workspaceValue(key: GuardedSetting, scope?: vscode.Uri): string | undefined {
    const inspected = vscode.workspace.getConfiguration(SECTION, scope).inspect<string>(key);
    return inspected?.workspaceFolderValue ?? inspected?.workspaceValue;
}

function agreed(key: GuardedSetting): string[] {
    return agreements?.get<Record<string, string[]>>(AGREED_KEY)?.[key] ?? [];
}

/**
 * The value to use for a guarded setting: the workspace's value when the workspace is trusted
 * (and, for a program, the user agreed to it), else the user's own (global or machine) value.
 */
export function guardedValue(key: GuardedSetting, scope?: vscode.Uri): string | undefined {
    const inspected = vscode.workspace.getConfiguration(SECTION, scope).inspect<string>(key);
    const fromWorkspace = workspaceValue(key, scope);
    const isProgram = (CONFIRMED_SETTINGS as readonly string[]).includes(key);
    if (fromWorkspace !== undefined && vscode.workspace.isTrusted && (!isProgram || agreed(key).includes(fromWorkspace))) {
        return fromWorkspace;
    }
    return inspected?.globalValue;
}

/**
 * Shows the programs the (trusted) workspace's settings name and the user has not seen yet, in
 * one question before their first run; the answer is remembered for this workspace and value.
 */
export async function confirmWorkspacePrograms(): Promise<void> {
    if (!vscode.workspace.isTrusted || agreements === undefined) {
        return;
    }
    const unseen = CONFIRMED_SETTINGS.map((key) => ({ key, value: workspaceValue(key) })).filter(
        ({ key, value }) => value && !agreed(key).includes(value) && !declined.has(`${key}\0${value}`),
    ) as { key: GuardedSetting; value: string }[];
    if (unseen.length === 0) {
        return;
    }
    const listed = unseen.map(({ key, value }) => `"${SECTION}.${key}": ${value}`).join('\n\n');
    const run = 'Run it';
    const answer = await vscode.window.showWarningMessage(
        `This workspace's settings name programs for SmallCoder to run, or a server to send your code to:\n\n${listed}\n\nSmallCoder uses them only if you agree; otherwise it uses your own settings.`,
        { modal: true },
        run,
        'Use my own setting',
    );
    for (const { key, value } of unseen) {
        if (answer === run) {
            const all = agreements.get<Record<string, string[]>>(AGREED_KEY) ?? {};
            await agreements.update(AGREED_KEY, { ...all, [key]: [...agreed(key), value] });
        } else {
            declined.add(`${key}\0${value}`); // asked again in the next session
        }
    }
}

const declined = new Set<string>();
