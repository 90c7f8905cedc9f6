/**
 * SmallCoder's settings as one typed value: what the extension reads and what the server
 * receives as initializationOptions (and again with every workspace/configuration pull).
 * Names and defaults live in one table, server/settings.py; package.json's configuration is
 * generated from it, and VS Code fills in its defaults, so none is repeated here.
 */
import * as vscode from 'vscode';
import { Middleware } from 'vscode-languageclient/node';
import { FILE_SETTINGS, guardedValue, PROGRAM_SETTINGS, SERVER_SETTINGS } from './trust';

export const SECTION = 'smallcoder';

export type ServerLogLevel = 'error' | 'warning' | 'info' | 'debug';

/** Where the model runs: in the language server, or on a team's server (issue #33). */
export type EngineKind = 'local' | 'llama-server' | 'openai';

/** Inline completions per VS Code language id; `*` for the languages not listed. */
export type LanguageSwitches = Record<string, boolean>;

export interface SmallCoderSettings {
    pythonPath: string;
    model: string;
    engine: EngineKind;
    serverUrl: string;
    serverModel: string;
    engineFallback: boolean;
    inlineCompletions: {
        enabled: boolean;
        maxTokens: number;
        timeBudgetMs: number;
        contextTokens: number;
    };
    vramBudgetMb: number;
    stateCacheMb: number;
    logLevel: ServerLogLevel;
    adapter: string;
    adapterScale: number;
    testCommand: string;
    enable: LanguageSwitches;
    /** gitignore-style patterns of files SmallCoder leaves alone. */
    exclude: string[];
    agent: {
        maxCopyMb: number;
    };
    training: {
        learnFromAccepted: boolean;
        threads: number;
    };
}

/** The current `smallcoder.*` settings, defaults filled in by VS Code from package.json. */
export function readSettings(scope?: vscode.Uri): SmallCoderSettings {
    const config = vscode.workspace.getConfiguration(SECTION, scope);
    const settings: SmallCoderSettings = {
        pythonPath: declared<string>(config, 'pythonPath'),
        model: declared<string>(config, 'model'),
        engine: declared<EngineKind>(config, 'engine'),
        serverUrl: declared<string>(config, 'serverUrl'),
        serverModel: declared<string>(config, 'serverModel'),
        engineFallback: declared<boolean>(config, 'engineFallback'),
        inlineCompletions: {
            enabled: declared<boolean>(config, 'inlineCompletions.enabled'),
            maxTokens: declared<number>(config, 'inlineCompletions.maxTokens'),
            timeBudgetMs: declared<number>(config, 'inlineCompletions.timeBudgetMs'),
            contextTokens: declared<number>(config, 'inlineCompletions.contextTokens'),
        },
        vramBudgetMb: declared<number>(config, 'vramBudgetMb'),
        stateCacheMb: declared<number>(config, 'stateCacheMb'),
        logLevel: declared<ServerLogLevel>(config, 'logLevel'),
        adapter: declared<string>(config, 'adapter'),
        adapterScale: declared<number>(config, 'adapterScale'),
        testCommand: declared<string>(config, 'testCommand'),
        enable: declared<LanguageSwitches>(config, 'enable'),
        exclude: declared<string[]>(config, 'exclude'),
        agent: {
            maxCopyMb: declared<number>(config, 'agent.maxCopyMb'),
        },
        training: {
            learnFromAccepted: declared<boolean>(config, 'training.learnFromAccepted'),
            threads: declared<number>(config, 'training.threads'),
        },
    };
    // A program or a file comes from the workspace's settings only when it may (see trust.ts).
    for (const key of [...PROGRAM_SETTINGS, ...FILE_SETTINGS, ...SERVER_SETTINGS]) {
        (settings as unknown as Record<string, string>)[key] =
            guardedValue(key, scope) ?? (config.inspect<string>(key)?.defaultValue as string);
    }
    return settings;
}

/**
 * The settings as the server gets them: `model` is '' unless the user set it (in the user
 * settings, or those of a trusted workspace). A model the user chose wins over $SMALLCODER_MODEL;
 * the default from package.json does not, so '' lets the server serve $SMALLCODER_MODEL, else
 * its own default — also after the user removes the setting again. In an untrusted workspace
 * there is no test command: refactorings would run the workspace's code to check themselves.
 */
export function settingsForServer(scope?: vscode.Uri): SmallCoderSettings {
    const settings = readSettings(scope);
    const testCommand = vscode.workspace.isTrusted ? settings.testCommand : '';
    return { ...settings, model: guardedValue('model', scope) ?? '', testCommand };
}

/**
 * Answers the server's workspace/configuration pull of `smallcoder` with `settingsForServer`:
 * the client's own answer would carry package.json's default model as if the user chose it.
 */
export const serverSettingsMiddleware: Middleware = {
    workspace: {
        configuration: async (params, token, next) => {
            const answers = await next(params, token);
            if (!Array.isArray(answers)) {
                return answers; // an error: the server reports it
            }
            return params.items.map((item, index) =>
                item.section === SECTION
                    ? settingsForServer(item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
                    : answers[index],
            );
        },
    },
};

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

/** A setting package.json declares, so VS Code always has a value for it (its default at least). */
function declared<T>(config: vscode.WorkspaceConfiguration, name: string): T {
    const value = config.get<T>(name);
    if (value === undefined) {
        throw new Error(`${SECTION}.${name} has no value: package.json must declare it (python -m server.settings --package-json --write)`);
    }
    return value;
}
