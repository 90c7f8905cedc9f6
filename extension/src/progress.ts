/**
 * Long server requests under a cancellable notification: solve and train show the messages and
 * percentages the server reports on a work-done token this side creates; explain and refactor
 * get their partial results on a partial-result token.
 */
import { randomUUID } from 'crypto';
import * as vscode from 'vscode';
import {
    LanguageClient,
    ProtocolRequestType,
    RequestType,
    WorkDoneProgress,
    WorkDoneProgressBegin,
    WorkDoneProgressReport,
} from 'vscode-languageclient/node';
import { PartialResultParams } from './protocol';

/** Resolves to the result, or to undefined when the user cancelled. */
export async function requestWithProgress<P extends { workDoneToken?: string }, R>(
    client: LanguageClient,
    title: string,
    request: RequestType<P, R, void>,
    params: Omit<P, 'workDoneToken'>,
): Promise<R | undefined> {
    const progressToken = freshToken(request.method);
    return withCancellableProgress(title, async (token, progress) => {
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
        } finally {
            listener.dispose();
        }
    });
}

/** Runs `run` under a cancellable notification titled `title`; undefined when the user cancelled. */
export async function withCancellableProgress<T>(
    title: string,
    run: (token: vscode.CancellationToken, progress: vscode.Progress<{ message?: string; increment?: number }>) => Promise<T>,
): Promise<T | undefined> {
    return vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
            try {
                return await run(token, progress);
            } catch (error) {
                if (token.isCancellationRequested) {
                    return undefined;
                }
                throw error;
            }
        },
    );
}

/**
 * Sends `request` with a fresh partialResultToken; `onPartialResult` gets each partial result
 * the server reports on it until the answer comes.
 */
export async function sendWithPartialResults<P extends PartialResultParams, R, PR>(
    client: LanguageClient,
    request: ProtocolRequestType<P, R, PR, void, void>,
    params: Omit<P, 'partialResultToken'>,
    token: vscode.CancellationToken,
    onPartialResult: (partial: PR) => void,
): Promise<R> {
    const partialResultToken = freshToken(request.method);
    const listener = client.onProgress(request, partialResultToken, onPartialResult);
    try {
        // By method name: the typed overload cannot see that `params` plus the token is a `P`.
        return await client.sendRequest<R>(request.method, { ...params, partialResultToken }, token);
    } finally {
        listener.dispose();
    }
}

/** A progress token no other request of this window uses. */
function freshToken(method: string): string {
    return `${method.replace(/\W/g, '-')}-${randomUUID()}`;
}
