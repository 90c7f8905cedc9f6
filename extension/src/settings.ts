/**
 * SmallCoder's settings as one typed value: what the extension reads and what the server
 * receives as initializationOptions (and again with every workspace/didChangeConfiguration).
 */
import * as vscode from 'vscode';

export const SECTION = 'smallcoder';

export type ServerLogLevel = 'error' | 'warning' | 'info' | 'debug';

export interface SmallCoderSettings {
    pythonPath: string;
    model: string;
    inlineCompletions: {
        enabled: boolean;
        maxTokens: number;
        timeBudgetMs: number;
        contextTokens: number;
    };
    vramBudgetMb: number;
    logLevel: ServerLogLevel;
    adapter: string;
    adapterScale: number;
    testCommand: string;
}

/** The current `smallcoder.*` settings, defaults filled in from package.json. */
export function readSettings(): SmallCoderSettings {
    const config = vscode.workspace.getConfiguration(SECTION);
    return {
        pythonPath: config.get<string>('pythonPath', ''),
        model: config.get<string>('model', 'qwen2.5-coder-1.5b-instruct-q4_k_m'),
        inlineCompletions: {
            enabled: config.get<boolean>('inlineCompletions.enabled', true),
            maxTokens: config.get<number>('inlineCompletions.maxTokens', 48),
            timeBudgetMs: config.get<number>('inlineCompletions.timeBudgetMs', 1500),
            contextTokens: config.get<number>('inlineCompletions.contextTokens', 1024),
        },
        vramBudgetMb: config.get<number>('vramBudgetMb', 2048),
        logLevel: config.get<ServerLogLevel>('logLevel', 'info'),
        adapter: config.get<string>('adapter', ''),
        adapterScale: config.get<number>('adapterScale', 1.0),
        testCommand: config.get<string>('testCommand', ''),
    };
}

/**
 * Writes a setting where the user keeps it: in the workspace when the workspace overrides it,
 * otherwise in the user settings.
 */
export async function updateSetting(key: string, value: unknown): Promise<void> {
    const config = vscode.workspace.getConfiguration(SECTION);
    const inspected = config.inspect(key);
    const target =
        inspected?.workspaceFolderValue !== undefined
            ? vscode.ConfigurationTarget.WorkspaceFolder
            : inspected?.workspaceValue !== undefined
              ? vscode.ConfigurationTarget.Workspace
              : vscode.ConfigurationTarget.Global;
    await config.update(key, value, target);
}
