/**
 * The custom requests and notifications of SmallCoder's language server, typed once so that
 * every caller sends the same method names and shapes (see ARCHITECTURE.md, "Contracts").
 */
import { NotificationType, ProtocolRequestType, RequestType } from 'vscode-languageclient/node';
import type { Position, ProgressToken, TextDocumentIdentifier, WorkspaceEdit } from 'vscode-languageclient/node';

export type ServerState = 'loading' | 'ready' | 'busy' | 'error' | 'missing-model';

export interface ServerStatus {
    model: string;
    adapter: string | null;
    state: ServerState;
    message: string;
    tokensPerSecond: number | null;
    /**
     * The region whose prompt the server is evaluating ahead of the user ("core.py:120"), null
     * when none. Servers older than the field leave it out: read that as null.
     */
    warming?: string | null;
}

export interface FunctionParams {
    textDocument: TextDocumentIdentifier;
    position: Position;
}

/**
 * Where the user is about to type: the server evaluates that region's prompt in the background,
 * so the first completion there does not wait for it.
 */
export type PrefillParams = FunctionParams;

export const prefillNotification = new NotificationType<PrefillParams>('smallcoder/prefill');

/** A request whose answer comes in pieces: the server reports them as `$/progress` on this token. */
export interface PartialResultParams {
    partialResultToken?: ProgressToken;
}

/** `range`: explain the selected lines; `scope`: the function (default), class or file there. */
export interface ExplainParams extends FunctionParams, PartialResultParams {
    range?: { start: { line: number; character: number }; end: { line: number; character: number } };
    scope?: 'function' | 'class' | 'file' | 'selection';
}

/** `notes`: what the workspace index contradicts in the explanation (also under its markdown). */
export interface ExplainResult {
    markdown: string;
    functionName: string;
    notes?: string[];
    outline?: boolean;
}

/** The explanation so far: `markdown` is always the start of the final result's. */
export interface ExplainPartialResult {
    markdown: string;
    functionName: string;
}

export interface RefactorParams extends FunctionParams, PartialResultParams {
    instruction?: string;
}

/** One check the rewrite went through before it was offered (parses, signature, callers, a linter, tests). */
export interface RefactorCheck {
    name: string;
    passed: boolean;
    detail: string;
}

export interface RefactorResult {
    edit: WorkspaceEdit;
    functionName: string;
    /** Set while smallcoder.training.learnFromAccepted is on: tell the server when the user applies it. */
    offerId?: string | null;
    checks?: RefactorCheck[];
    candidates?: number;
}

/** How far the model has got: tokens generated so far, over every attempt. */
export interface RefactorPartialResult {
    generatedTokens: number;
    functionName: string;
}

export interface DownloadModelResult {
    path: string;
}

export const explainRequest = new ProtocolRequestType<ExplainParams, ExplainResult, ExplainPartialResult, void, void>(
    'smallcoder/explain',
);
export const refactorRequest = new ProtocolRequestType<RefactorParams, RefactorResult, RefactorPartialResult, void, void>(
    'smallcoder/refactor',
);
/**
 * Requests without parameters still send `params: {}`: pygls 2.1 cannot parse a request whose
 * `params` is left out (as vscode-jsonrpc does for RequestType0) and never answers it.
 */
export type NoParams = Record<string, never>;
export const NO_PARAMS: NoParams = {};

export const statusRequest = new RequestType<NoParams, ServerStatus, void>('smallcoder/status');
export const statusChangedNotification = new NotificationType<ServerStatus>('smallcoder/statusChanged');
export const downloadModelRequest = new RequestType<NoParams, DownloadModelResult, void>('smallcoder/downloadModel');

export interface SolveParams {
    /** The workspace folder's URI (or path). */
    workspaceFolder: string;
    testCommand: string;
    maxRounds?: number;
    /** A progress token the client created; the server reports "round 2: 3 → 1 failing" on it. */
    workDoneToken?: string;
}

export type SolveStatus = 'solved' | 'already-passing' | 'unsolved' | 'out-of-time' | 'cancelled' | 'flaky';

export interface SolveResult {
    status: SolveStatus;
    rounds: number;
    diff: string;
    edit: WorkspaceEdit;
    transcript: string;
    message: string;
    failingBefore: number;
    failingAfter: number;
    /** How the test command was confined: "bubblewrap" (no network, only the copy writable) or "none". */
    isolation: string;
    /** Links the copy left out, or copied by content, because they led outside the workspace. */
    notes: string[];
    /** Set for a solved run while smallcoder.training.learnFromAccepted is on: tell the server on Accept. */
    offerId?: string | null;
}

export const solveRequest = new RequestType<SolveParams, SolveResult, void>('smallcoder/solve');

export interface TrainParams {
    /** Folder URIs (or paths) of the repositories to learn from. */
    repositories: string[];
    /** Wall-time budget for training; the evaluation comes after it. */
    maxMinutes?: number;
    /** 'auto' (the default) continues from the last run's checkpoint when there is one. */
    start?: 'auto' | 'continue' | 'fresh';
    /** A progress token the client created; the server reports steps, loss, tokens/s and ETA on it. */
    workDoneToken?: string;
}

export interface TrainResult {
    adapter: string;
    /** The evaluation report (markdown, a PNG chart beside it); null when there was nothing to evaluate on. */
    report: string | null;
    /** false: the adapter lost on the guard set and the server will not enable it; null: not evaluated. */
    guardPassed: boolean | null;
    steps: number;
    tokensPerSecond: number;
    /** 'validation': the loss on files not trained on stopped falling; the adapter is the one of its lowest. */
    stoppedBy: 'steps' | 'time' | 'validation';
    message: string;
}

export const trainRequest = new RequestType<TrainParams, TrainResult, void>('smallcoder/train');

export interface TrainingPackagesResult {
    /** Pins (`torch==2.13.0`, …) of the training packages the server's Python lacks; empty when it has them. */
    missing: string[];
}

export const trainingPackagesRequest = new RequestType<NoParams, TrainingPackagesResult, void>('smallcoder/trainingPackages');

/** The user applied a Solve fix or a refactoring offered under this id: the server keeps it for training. */
export const acceptedNotification = new NotificationType<{ offerId: string }>('smallcoder/accepted');
