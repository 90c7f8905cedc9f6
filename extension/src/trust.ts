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
type GuardedSetting = (typeof PROGRAM_SETTINGS)[number] | (typeof FILE_SETTINGS)[number];
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
    const isProgram = (PROGRAM_SETTINGS as readonly string[]).includes(key);
    if (fromWorkspace !== undefined && vscode.workspace.isTrusted && (!isProgram || agreed(key).includes(fromWorkspace))) {
        return fromWorkspace;
    }
    return inspected?.globalValue;
}

/**
 * Shows each program the (trusted) workspace's settings name and that the user has not seen yet,
 * before its first run; the answer is remembered for this workspace and this value.
 */
export async function confirmWorkspacePrograms(): Promise<void> {
    if (!vscode.workspace.isTrusted || agreements === undefined) {
        return;
    }
    for (const key of PROGRAM_SETTINGS) {
        const value = workspaceValue(key);
        if (!value || agreed(key).includes(value) || declined.has(`${key}\0${value}`)) {
            continue;
        }
        const run = 'Run it';
        const answer = await vscode.window.showWarningMessage(
            `This workspace's settings set "${SECTION}.${key}" to run:\n\n${value}\n\nSmallCoder runs it only if you agree; otherwise it uses your own setting.`,
            { modal: true },
            run,
            'Use my own setting',
        );
        if (answer === run) {
            const all = agreements.get<Record<string, string[]>>(AGREED_KEY) ?? {};
            await agreements.update(AGREED_KEY, { ...all, [key]: [...agreed(key), value] });
        } else {
            declined.add(`${key}\0${value}`); // asked again in the next session
        }
    }
}

const declined = new Set<string>();
