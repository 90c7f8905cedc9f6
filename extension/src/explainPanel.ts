/**
 * The webview that shows a function's explanation: the server's markdown rendered by VS Code's
 * own markdown engine (`markdown.api.render`), styled with the editor's theme.
 */
import * as vscode from 'vscode';

export class ExplainPanel implements vscode.Disposable {
    private panel: vscode.WebviewPanel | undefined;

    async show(functionName: string, markdown: string): Promise<void> {
        const body = await renderMarkdown(markdown);
        const title = `SmallCoder: Explain ${functionName}`;
        if (this.panel === undefined) {
            this.panel = vscode.window.createWebviewPanel(
                'smallcoder.explain',
                title,
                { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
                { enableScripts: false, enableFindWidget: true },
            );
            this.panel.onDidDispose(() => (this.panel = undefined));
        }
        this.panel.title = title;
        this.panel.webview.html = explanationPage(this.panel.webview.cspSource, title, body);
        this.panel.reveal(vscode.ViewColumn.Beside, true);
    }

    dispose(): void {
        this.panel?.dispose();
    }
}

async function renderMarkdown(markdown: string): Promise<string> {
    try {
        return await vscode.commands.executeCommand<string>('markdown.api.render', markdown);
    } catch {
        // The built-in markdown extension can be disabled; plain text still explains.
        return `<pre>${escapeHtml(markdown)}</pre>`;
    }
}

function explanationPage(cspSource: string, title: string, body: string): string {
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${cspSource} https: data:; style-src ${cspSource} 'unsafe-inline';">
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
</body>
</html>`;
}

function escapeHtml(text: string): string {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
