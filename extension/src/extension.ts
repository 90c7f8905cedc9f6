/**
 * SmallCoder's VS Code extension: starts the local language server that hosts the model and
 * wires its features (inline completions, code actions, custom requests) into the editor.
 */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { PrefillScheduler } from './prefill';
import { ServerController } from './server';
import { readSettings, SECTION } from './settings';
import { Snooze } from './snooze';
import { StatusBar } from './statusBar';
import { initTrust } from './trust';

let server: ServerController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    initTrust(context);
    const log = vscode.window.createOutputChannel('SmallCoder', { log: true });
    const statusBar = new StatusBar('smallcoder.showMenu');
    const snooze = new Snooze(context.globalState);
    statusBar.showSnooze(snooze.until);
    snooze.onDidChange(() => statusBar.showSnooze(snooze.until));
    server = new ServerController(context, log, statusBar, snooze);
    context.subscriptions.push(log, statusBar, snooze, server);
    registerCommands(context, server, log, snooze);
    context.subscriptions.push(new PrefillScheduler(server, log));

    context.subscriptions.push(
        vscode.workspace.onDidChangeConfiguration((event) => {
            if (!event.affectsConfiguration(SECTION)) {
                return;
            }
            const settings = readSettings();
            statusBar.showSettings(settings.model, settings.adapter, settings.inlineCompletions.enabled);
            // Other settings reach the running server through workspace/didChangeConfiguration.
            if (event.affectsConfiguration(`${SECTION}.pythonPath`)) {
                log.info('smallcoder.pythonPath changed: restarting the language server');
                void server?.restart();
            }
        }),
    );

    // Once trusted, the workspace's own settings (its Python, model, test command) may apply.
    context.subscriptions.push(
        vscode.workspace.onDidGrantWorkspaceTrust(() => {
            log.info('the workspace is trusted now: restarting the language server with its settings');
            void server?.restart();
        }),
    );

    log.info(`SmallCoder ${context.extension.packageJSON.version} activating`);
    // Not awaited: the first start may install the server for minutes; commands check readiness.
    void server.start();
}

export async function deactivate(): Promise<void> {
    await server?.stop();
    server = undefined;
}
