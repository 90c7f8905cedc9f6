/**
 * A long server request (solve, train) under a cancellable notification that shows the
 * messages and percentages the server reports on a progress token this side creates.
 */
import * as vscode from 'vscode';
import { LanguageClient, RequestType, WorkDoneProgress, WorkDoneProgressBegin, WorkDoneProgressReport } from 'vscode-languageclient/node';

/** Resolves to the result, or to undefined when the user cancelled. */
export async function requestWithProgress<P extends { workDoneToken?: string }, R>(
    client: LanguageClient,
    title: string,
    request: RequestType<P, R, void>,
    params: Omit<P, 'workDoneToken'>,
): Promise<R | undefined> {
    const progressToken = `${request.method.replace(/\W/g, '-')}-${Date.now()}`;
    return vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
            let shownPercentage = 0;
            const listener = client.onProgress(WorkDoneProgress.type, progressToken, (value) => {
                if (value.kind === 'end') {
                    return;
                }
                const { message, percentage } = value as WorkDoneProgressBegin | WorkDoneProgressReport;
                // VS Code's notification takes increments; the server reports where it stands.
                const increment = percentage !== undefined && percentage > shownPercentage ? percentage - shownPercentage : undefined;
                shownPercentage = Math.max(shownPercentage, percentage ?? 0);
                if (message || increment) {
                    progress.report({ ...(message ? { message } : {}), ...(increment ? { increment } : {}) });
                }
            });
            try {
                // By method name: the typed overload cannot see that `params` plus the token is a `P`.
                return await client.sendRequest<R>(request.method, { ...params, workDoneToken: progressToken }, token);
            } catch (error) {
                if (token.isCancellationRequested) {
                    return undefined;
                }
                throw error;
            } finally {
                listener.dispose();
            }
        },
    );
}
