/**
 * The webview that shows a function's explanation as the model writes it: the server's markdown
 * rendered by VS Code's own markdown engine (`markdown.api.render`), styled with the editor's
 * theme.
 */
import { randomBytes } from 'crypto';
import * as vscode from 'vscode';

/** While the model writes, the panel is redrawn at most this often. */
const PARTIAL_REDRAW_INTERVAL_MS = 150;

interface Explanation {
    functionName: string;
    markdown: string;
}

/** One explanation being shown: its text so far, then its final text. */
export interface ExplanationView {
    showPartial(explanation: Explanation): void;
    showFinal(explanation: Explanation): Promise<void>;
}

export class ExplainPanel implements vscode.Disposable {
    private panel: vscode.WebviewPanel | undefined;
    /** Counts explanations started: text of an older one that arrives late is dropped. */
    private explanationsStarted = 0;
    /** The newest text not drawn yet: of a burst of partial results only the last is drawn. */
    private waiting: { explanation: Explanation; number: number } | undefined;
    /** The drawing that will show `waiting`, while it has not started. */
    private queued: Promise<void> | undefined;
    /** The last drawing queued: the next one starts after it. */
    private drawing: Promise<void> = Promise.resolve();
    private lastDrawnAtMs = 0;
    /** The first drawing of each explanation brings the panel to the front, later ones do not. */
    private revealed = false;

    /** A new explanation: what it shows replaces the panel's text. */
    startExplanation(): ExplanationView {
        const number = ++this.explanationsStarted;
        this.revealed = false;
        return {
            showPartial: (explanation) => {
                // A partial drawing that fails is followed by others and the final one, whose
                // failure the command reports.
                this.draw({ explanation, number }, PARTIAL_REDRAW_INTERVAL_MS).catch(() => undefined);
            },
            showFinal: (explanation) => this.draw({ explanation, number }, 0),
        };
    }

    dispose(): void {
        this.panel?.dispose();
    }

    /**
     * Draws `explanation` once `intervalMs` has passed since the last drawing and any drawing
     * in progress is done; resolves when it is on screen.
     */
    private draw(text: { explanation: Explanation; number: number }, intervalMs: number): Promise<void> {
        if (text.number !== this.explanationsStarted) {
            return Promise.resolve();
        }
        this.waiting = text;
        if (this.queued === undefined) {
            const queued = this.drawing.then(async () => {
                await sleep(this.lastDrawnAtMs + intervalMs - Date.now());
                // From here on, newer text waits for another drawing.
                this.queued = undefined;
                const next = this.waiting;
                this.waiting = undefined;
                if (next?.number === this.explanationsStarted) {
                    await this.render(next.explanation);
                }
                this.lastDrawnAtMs = Date.now();
            });
            this.queued = queued;
            // A failed drawing must not stop the ones after it; its callers see the error.
            this.drawing = queued.catch(() => undefined);
        }
        return this.queued;
    }

    private async render({ functionName, markdown }: Explanation): Promise<void> {
        const body = await renderMarkdown(markdown);
        const title = `SmallCoder: Explain ${functionName}`;
        if (this.panel === undefined) {
            const panel = vscode.window.createWebviewPanel(
                'smallcoder.explain',
                title,
                { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
                // Kept while hidden, so that text arriving meanwhile is not lost.
                { enableScripts: true, enableFindWidget: true, retainContextWhenHidden: true, localResourceRoots: [] },
            );
            panel.onDidDispose(() => {
                if (this.panel === panel) {
                    this.panel = undefined;
                }
            });
            panel.webview.html = explanationPage(panel.webview.cspSource, title, body);
            this.panel = panel;
            this.revealed = true;
            return;
        }
        this.panel.title = title;
        // Replacing the page would reload it: it would flash and lose its scroll position.
        await this.panel.webview.postMessage({ body });
        if (!this.revealed) {
            this.panel.reveal(undefined, true);
            this.revealed = true;
        }
    }
}

function sleep(ms: number): Promise<void> {
    return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

async function renderMarkdown(markdown: string): Promise<string> {
    try {
        return await vscode.commands.executeCommand<string>('markdown.api.render', markdown);
    } catch {
        // The built-in markdown extension can be disabled; plain text still explains.
        return `<pre>${escapeHtml(markdown)}</pre>`;
    }
}

/**
 * The page: its one script (allowed by nonce; none from the markdown can run) puts each new
 * body in place and keeps it in the webview's state, which survives a reload of the page.
 */
function explanationPage(cspSource: string, title: string, body: string): string {
    const nonce = randomBytes(16).toString('base64');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${cspSource} https: data:; style-src ${cspSource} 'unsafe-inline'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); line-height: 1.5; padding: 0 1.2em 1.2em; }
  code, pre { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); }
  pre { background: var(--vscode-textCodeBlock-background); padding: 0.6em 0.8em; overflow-x: auto; border-radius: 4px; }
  :not(pre) > code { background: var(--vscode-textCodeBlock-background); padding: 0.1em 0.3em; border-radius: 3px; }
  a { color: var(--vscode-textLink-foreground); }
</style>
</head>
<body>
<main id="smallcoder-explanation">
${body}
</main>
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  const main = document.getElementById('smallcoder-explanation');
  const saved = vscode.getState();
  if (saved && typeof saved.body === 'string') {
    main.innerHTML = saved.body;
  }
  window.addEventListener('message', (event) => {
    main.innerHTML = event.data.body;
    vscode.setState({ body: event.data.body });
  });
</script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
