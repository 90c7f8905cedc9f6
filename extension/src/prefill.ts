/**
 * Tells the server where the user is about to type (`smallcoder/prefill`), so that it evaluates
 * that region's prompt while the user reads and the first completion there does not wait for
 * it: when an editor becomes active, when the cursor jumps far, and when scrolling leaves the
 * cursor out of sight (then the middle of what is in sight).
 */
import * as vscode from 'vscode';
import { prefillNotification } from './protocol';
import { errorMessage, ServerController } from './server';
import { readSettings } from './settings';

/** The user settles this long before the server is told: a burst of jumps or scrolling sends once. */
const PREFILL_DEBOUNCE_MS = 250;
/** A cursor this many lines from the last position sent for its document is in another region. */
const JUMP_LINES = 20;

export class PrefillScheduler implements vscode.Disposable {
    private readonly subscriptions: vscode.Disposable[];
    /** Per document URI, the line last sent to the server. */
    private readonly lastSentLine = new Map<string, number>();
    private pending: NodeJS.Timeout | undefined;

    constructor(
        private readonly server: ServerController,
        private readonly log: vscode.LogOutputChannel,
    ) {
        this.subscriptions = [
            vscode.window.onDidChangeActiveTextEditor((editor) => editor && this.schedule(editor, editor.selection.active)),
            vscode.window.onDidChangeTextEditorSelection(({ textEditor }) => this.cursorMoved(textEditor)),
            vscode.window.onDidChangeTextEditorVisibleRanges(({ textEditor, visibleRanges }) => this.scrolled(textEditor, visibleRanges)),
            vscode.workspace.onDidCloseTextDocument((document) => this.lastSentLine.delete(document.uri.toString())),
            server.onDidLoadModel(() => this.modelLoaded()),
        ];
    }

    dispose(): void {
        clearTimeout(this.pending);
        this.subscriptions.forEach((subscription) => subscription.dispose());
    }

    /** A model just loaded has nothing evaluated: the region in front of the user comes first. */
    private modelLoaded(): void {
        this.lastSentLine.clear();
        const editor = vscode.window.activeTextEditor;
        if (editor !== undefined) {
            this.schedule(editor, editor.selection.active);
        }
    }

    /** Typing moves the cursor too, but only within the region already sent. */
    private cursorMoved(editor: vscode.TextEditor): void {
        const cursor = editor.selection.active;
        if (editor === vscode.window.activeTextEditor && this.isFarFromLastSent(editor.document, cursor.line)) {
            this.schedule(editor, cursor);
        }
    }

    private scrolled(editor: vscode.TextEditor, visibleRanges: readonly vscode.Range[]): void {
        if (editor !== vscode.window.activeTextEditor || visibleRanges.length === 0) {
            return;
        }
        const cursorLine = editor.selection.active.line;
        if (visibleRanges.some((range) => range.start.line <= cursorLine && cursorLine <= range.end.line)) {
            return;
        }
        const middleLine = Math.floor((visibleRanges[0].start.line + visibleRanges[visibleRanges.length - 1].end.line) / 2);
        if (this.isFarFromLastSent(editor.document, middleLine)) {
            this.schedule(editor, new vscode.Position(middleLine, 0));
        }
    }

    private isFarFromLastSent(document: vscode.TextDocument, line: number): boolean {
        const lastLine = this.lastSentLine.get(document.uri.toString());
        return lastLine === undefined || Math.abs(line - lastLine) >= JUMP_LINES;
    }

    /** Sends `position` once the user has settled, unless something newer comes first. */
    private schedule(editor: vscode.TextEditor, position: vscode.Position): void {
        const document = editor.document;
        if (document.uri.scheme !== 'file') {
            return; // the server reads the workspace's files around it; other schemes have none
        }
        clearTimeout(this.pending);
        this.pending = setTimeout(() => {
            this.pending = undefined;
            this.send(document, position);
        }, PREFILL_DEBOUNCE_MS);
    }

    private send(document: vscode.TextDocument, position: vscode.Position): void {
        const client = this.server.clientIfRunning();
        // Prefilled prompts serve inline completions only: with them off, the work is wasted.
        if (client === undefined || document.isClosed || !readSettings().inlineCompletions.enabled) {
            return;
        }
        const uri = document.uri.toString();
        this.lastSentLine.set(uri, position.line);
        client
            .sendNotification(prefillNotification, {
                textDocument: { uri },
                position: { line: position.line, character: position.character },
            })
            .catch((error) => this.log.warn(`smallcoder/prefill failed: ${errorMessage(error)}`));
    }
}
