/**
 * Starts, restarts and stops SmallCoder's language server (`python -m cli serve` on
 * stdio) through vscode-languageclient, and feeds its status to the status bar.
 */
import * as fs from 'fs/promises';
import * as vscode from 'vscode';
import {
    CloseAction,
    ErrorAction,
    ErrorHandler,
    LanguageClient,
    LanguageClientOptions,
    Message,
    RevealOutputChannelOn,
    ServerOptions,
    State,
} from 'vscode-languageclient/node';
import { ensureManagedPython, ToolchainMissing } from './managedPython';
import { NO_PARAMS, ServerState, ServerStatus, statusChangedNotification, statusRequest } from './protocol';
import { EngineKind, readSettings, SECTION, serverSettingsMiddleware, settingsForServer } from './settings';
import { Snooze } from './snooze';
import { confirmWorkspacePrograms } from './trust';
import { StatusBar } from './statusBar';
import { showToolchainReport } from './walkthrough';

const SERVER_ARGS = ['-m', 'cli', 'serve'];
/** Where the team server's API key is kept (VS Code's SecretStorage), and how the server gets it. */
export const API_KEY_SECRET = 'smallcoder.teamServerApiKey';
const API_KEY_ENVIRONMENT = 'SMALLCODER_API_KEY';

export class ServerController implements vscode.Disposable {
    private client: LanguageClient | undefined;
    /** The interpreter the running server was started with: packages for it are installed there. */
    private python: string | undefined;
    /** Serialises start/stop so that quick setting changes cannot start two servers. */
    private lifecycle: Promise<void> = Promise.resolve();
    /** The running server's last reported state; undefined until it reports one. */
    private serverState: ServerState | undefined;
    private readonly modelLoaded = new vscode.EventEmitter<void>();
    /**
     * Fires when a server has a model ready after loading it (at start, after a restart or a
     * change of model): whatever it had evaluated ahead of the user is gone.
     */
    readonly onDidLoadModel = this.modelLoaded.event;

    constructor(
        private readonly context: vscode.ExtensionContext,
        private readonly log: vscode.LogOutputChannel,
        private readonly statusBar: StatusBar,
        private readonly snooze: Snooze,
    ) {}

    start(): Promise<void> {
        return this.enqueue(() => this.startClient());
    }

    restart(): Promise<void> {
        return this.enqueue(async () => {
            await this.stopClient();
            await this.startClient();
        });
    }

    stop(): Promise<void> {
        return this.enqueue(() => this.stopClient());
    }

    /** The running client, or an error that tells the user where to look. */
    runningClient(): LanguageClient {
        const client = this.clientIfRunning();
        if (client === undefined) {
            throw new Error("SmallCoder's language server is not running: see its logs (SmallCoder: Show Logs).");
        }
        return client;
    }

    /** The Python the running server runs on, or an error as runningClient's. */
    runningPython(): string {
        this.runningClient();
        if (this.python === undefined) {
            throw new Error("SmallCoder's language server is not running: see its logs (SmallCoder: Show Logs).");
        }
        return this.python;
    }

    /** The running client, or undefined: for work that is skipped while there is no server. */
    clientIfRunning(): LanguageClient | undefined {
        return this.client?.state === State.Running ? this.client : undefined;
    }

    dispose(): void {
        this.modelLoaded.dispose();
        void this.stop();
    }

    private enqueue(step: () => Promise<void>): Promise<void> {
        this.lifecycle = this.lifecycle.then(step, step);
        return this.lifecycle;
    }

    private async startClient(): Promise<void> {
        await confirmWorkspacePrograms(); // a program the workspace names is shown before it runs
        const settings = readSettings();
        this.statusBar.showSettings(settings.model, settings.adapter, settings.inlineCompletions.enabled);
        let python: string;
        try {
            python = await this.pythonForServer(settings.pythonPath);
        } catch (error) {
            this.reportStartFailure(error);
            return;
        }
        // The server runs from the extension's own storage folder, not the workspace: `-m cli`
        // puts the working directory first on sys.path, and a workspace may have a `server` package.
        const cwd = this.context.globalStorageUri.fsPath;
        await fs.mkdir(cwd, { recursive: true });

        this.log.info(`Starting the language server: ${python} ${SERVER_ARGS.join(' ')} (in ${cwd})`);
        this.statusBar.showPhase('starting', `${python} ${SERVER_ARGS.join(' ')}`);
        const client = this.createClient(python, cwd, await this.serverEnvironment(settings.engine));
        this.client = client;
        this.python = python;
        this.serverState = undefined;
        try {
            await client.start();
        } catch (error) {
            this.reportStartFailure(error, false);
            if (settings.pythonPath) {
                this.log.error(`Check "smallcoder.pythonPath" (${settings.pythonPath}): it must name a Python that has the smallcoder package, or be empty.`);
            }
        }
    }

    /** The setting when the user chose an interpreter, else the managed venv (installed on first use). */
    private async pythonForServer(pythonPath: string): Promise<string> {
        if (pythonPath) {
            return pythonPath;
        }
        this.statusBar.showPhase('installing', 'setting up the managed Python environment');
        return ensureManagedPython(this.context, this.log);
    }

    /**
     * The server's environment: the team server's API key from secret storage goes in
     * SMALLCODER_API_KEY when a team server is chosen (never in settings or the logs); without
     * a stored key, one in VS Code's own environment is passed on (CI, a launcher script).
     */
    private async serverEnvironment(engine: EngineKind): Promise<NodeJS.ProcessEnv> {
        const key = engine === 'local' ? undefined : await this.context.secrets.get(API_KEY_SECRET);
        return key ? { ...process.env, [API_KEY_ENVIRONMENT]: key } : process.env;
    }

    private createClient(python: string, cwd: string, env: NodeJS.ProcessEnv): LanguageClient {
        const restartPolicy = new RestartOnlyAfterRunning();
        const serverOptions: ServerOptions = { command: python, args: SERVER_ARGS, options: { cwd, env } };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
            outputChannel: this.log,
            // Failures the user must act on arrive as messages; the logs open on request only.
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: () => settingsForServer(),
            middleware: {
                ...serverSettingsMiddleware,
                // Snoozed: no suggestion is asked for, so the model stays free for other work.
                provideInlineCompletionItems: (document, position, context, token, next) =>
                    this.snooze.active ? null : next(document, position, context, token),
                // The menu's refactoring runs the command that shows its diff before anything
                // changes, instead of VS Code applying the edit the server would resolve.
                provideCodeActions: async (document, range, context, token, next) =>
                    (await next(document, range, context, token))?.map((action) => reviewedRefactoring(document, range, action)),
                resolveCodeAction: (action, token, next) => (REVIEWED.has(action) ? action : next(action, token)),
            },
            synchronize: { configurationSection: SECTION },
            errorHandler: restartPolicy,
            stdioOptions: {
                stdout: (input) => forwardLines(input, (line) => this.log.info(line)),
                stderr: (input) => forwardLines(input, (line) => logServerLine(this.log, line)),
            },
        };
        const client = new LanguageClient('smallcoder', 'SmallCoder', serverOptions, clientOptions);
        restartPolicy.fallBackTo(client.createDefaultErrorHandler());
        client.onNotification(statusChangedNotification, (status) => this.showStatus(client, status));
        client.onDidChangeState(({ newState }) => {
            if (this.client !== client) {
                return; // a client being replaced or stopped on purpose
            }
            if (newState === State.Running) {
                restartPolicy.hasRun = true;
                this.log.info('The language server is running');
                this.statusBar.showPhase('running');
                void this.refreshStatus(client);
            } else if (newState === State.Stopped && restartPolicy.hasRun) {
                this.statusBar.showPhase('stopped', 'the language server stopped: see the logs');
            }
        });
        return client;
    }

    private async refreshStatus(client: LanguageClient): Promise<void> {
        try {
            const status: ServerStatus = await client.sendRequest(statusRequest, NO_PARAMS);
            this.showStatus(client, status);
        } catch (error) {
            this.log.warn(`smallcoder/status failed: ${errorMessage(error)}`);
        }
    }

    private showStatus(client: LanguageClient, status: ServerStatus): void {
        if (this.client !== client) {
            return; // a client being replaced or stopped on purpose
        }
        const before = this.serverState;
        this.serverState = status.state;
        this.statusBar.showServerStatus(status);
        // Busy → ready is a long job ending: the model, and what it had evaluated, stayed.
        if (status.state === 'ready' && before !== 'ready' && before !== 'busy') {
            this.modelLoaded.fire();
        }
    }

    private async stopClient(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        if (client === undefined) {
            return;
        }
        this.log.info('Stopping the language server');
        try {
            if (client.state !== State.Stopped) {
                await client.stop();
            }
        } catch (error) {
            this.log.warn(`Stopping the language server failed: ${errorMessage(error)}`);
        }
        this.statusBar.showPhase('stopped');
    }

    /**
     * Logs why the server did not start and shows it in the status bar. `notify` is false when
     * languageclient has already shown its own error notification for the same failure.
     */
    private reportStartFailure(error: unknown, notify = true): void {
        const message = errorMessage(error);
        this.log.error(`The language server did not start: ${message}`);
        this.statusBar.showPhase('failed', message);
        if (!notify) {
            return;
        }
        if (error instanceof ToolchainMissing) {
            void showToolchainReport(error.report);
            return;
        }
        void vscode.window
            .showErrorMessage(`SmallCoder could not start its language server: ${message}`, 'Show Logs')
            .then((choice) => {
                if (choice === 'Show Logs') {
                    this.log.show();
                }
            });
    }
}

/**
 * languageclient's restart policy, for a server that has run: one that never came up (a wrong
 * interpreter, a missing package) fails the same way on every retry, so it is not restarted.
 */
class RestartOnlyAfterRunning implements ErrorHandler {
    hasRun = false;
    private fallback: ErrorHandler | undefined;

    fallBackTo(handler: ErrorHandler): void {
        this.fallback = handler;
    }

    error(error: Error, message: Message | undefined, count: number | undefined) {
        return this.fallback?.error(error, message, count) ?? { action: ErrorAction.Continue };
    }

    closed() {
        if (this.hasRun && this.fallback !== undefined) {
            return this.fallback.closed();
        }
        return { action: CloseAction.DoNotRestart, handled: true };
    }
}

function forwardLines(input: NodeJS.ReadableStream, write: (line: string) => void): void {
    let pending = '';
    input.on('data', (chunk: Buffer | string) => {
        const lines = (pending + chunk.toString()).split(/\r?\n/);
        pending = lines.pop() ?? '';
        lines.filter((line) => line.trim()).forEach(write);
    });
    input.on('end', () => {
        if (pending.trim()) {
            write(pending);
        }
    });
}

/** Python's logging writes every level to stderr; keep each line at the level it names. */
function logServerLine(log: vscode.LogOutputChannel, line: string): void {
    if (/\b(ERROR|CRITICAL|Traceback)\b/.test(line)) {
        log.error(line);
    } else if (/\bWARNING\b/.test(line)) {
        log.warn(line);
    } else if (/\bDEBUG\b/.test(line)) {
        log.debug(line);
    } else {
        log.info(line);
    }
}

export function errorMessage(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}

/** The server's title of its refactoring code action (server/actions.py). */
const REFACTOR_TITLE = 'Refactor this function';
/** Refactoring actions turned into the reviewed command: not resolved by the server. */
const REVIEWED = new WeakSet<vscode.CodeAction>();

function reviewedRefactoring(
    document: vscode.TextDocument,
    range: vscode.Range,
    action: vscode.Command | vscode.CodeAction,
): vscode.Command | vscode.CodeAction {
    if (!(action instanceof vscode.CodeAction) || action.title !== REFACTOR_TITLE || action.edit !== undefined) {
        return action;
    }
    const position = { line: range.start.line, character: range.start.character };
    // An empty instruction: the menu's refactoring tidies the function up, as the server's did.
    action.command = { title: REFACTOR_TITLE, command: 'smallcoder.refactorFunction', arguments: [document.uri.toString(), position, ''] };
    REVIEWED.add(action);
    return action;
}
