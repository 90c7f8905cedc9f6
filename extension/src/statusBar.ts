/**
 * The status bar item: which model and adapter serve this window and what the server is doing.
 * Clicking it opens SmallCoder's menu. Warming a region ahead of the user shows only as a
 * turning icon and a tooltip line: it is the server's business, not a reason to look.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { ServerState, ServerStatus } from './protocol';

/** What the extension knows about the server before and besides the server's own status. */
type ClientPhase = 'installing' | 'starting' | 'running' | 'stopped' | 'failed';

const WARMING_ICON = '$(sync~spin)';

const STATE_ICONS: Record<ServerState, string> = {
    loading: '$(loading~spin)',
    ready: '$(sparkle)',
    busy: '$(loading~spin)',
    error: '$(error)',
    'missing-model': '$(cloud-download)',
};

export class StatusBar implements vscode.Disposable {
    private readonly item: vscode.StatusBarItem;
    private phase: ClientPhase = 'starting';
    private phaseMessage = '';
    private serverStatus: ServerStatus | undefined;
    private configuredModel = '';
    private configuredAdapter = '';
    private inlineCompletionsEnabled = true;
    /** When a snooze ends (ms since the epoch), or undefined when not snoozed. */
    private snoozedUntil: number | undefined;

    constructor(menuCommand: string) {
        this.item = vscode.window.createStatusBarItem('smallcoder.status', vscode.StatusBarAlignment.Right, 100);
        this.item.name = 'SmallCoder';
        this.item.command = menuCommand;
        this.render();
        this.item.show();
    }

    /** The settings shown until the server reports its own model and adapter. */
    showSettings(model: string, adapter: string, inlineCompletionsEnabled: boolean): void {
        this.configuredModel = model;
        this.configuredAdapter = adapter;
        this.inlineCompletionsEnabled = inlineCompletionsEnabled;
        this.render();
    }

    showSnooze(until: number | undefined): void {
        this.snoozedUntil = until;
        this.render();
    }

    showPhase(phase: ClientPhase, message = ''): void {
        this.phase = phase;
        this.phaseMessage = message;
        if (phase !== 'running') {
            this.serverStatus = undefined;
        }
        this.render();
    }

    showServerStatus(status: ServerStatus): void {
        this.phase = 'running';
        this.serverStatus = status;
        this.render();
    }

    dispose(): void {
        this.item.dispose();
    }

    private render(): void {
        const status = this.serverStatus;
        const model = shortModelName(status?.model || this.configuredModel);
        const adapter = status ? (status.adapter ?? '') : this.configuredAdapter;
        const state = status?.state ?? this.phase;
        const warming = status?.warming ?? null;
        const snoozed = this.snoozedUntil !== undefined ? `snoozed until ${clockTime(this.snoozedUntil)}` : '';
        const parts = [model, adapter ? shortAdapterName(adapter) : '', state, snoozed].filter(Boolean);
        this.item.text = `${this.icon(status)} ${parts.join(' · ')}`;
        const spoken = warming ? [...parts, `warming ${warming}`] : parts;
        this.item.accessibilityInformation = { label: `SmallCoder: ${spoken.join(', ')}` };
        this.item.tooltip = this.tooltip(status);
        this.item.backgroundColor =
            state === 'error' || state === 'failed' || state === 'missing-model'
                ? new vscode.ThemeColor('statusBarItem.warningBackground')
                : undefined;
    }

    /** Only a ready server shows that it warms: loading and busy have their own turning icon. */
    private icon(status: ServerStatus | undefined): string {
        if (status === undefined) {
            return phaseIcon(this.phase);
        }
        if (status.state === 'ready' && !this.inlineCompletionsEnabled) {
            return '$(circle-slash)';
        }
        if (status.state === 'ready' && this.snoozedUntil !== undefined) {
            return '$(bell-slash)';
        }
        if (status.state === 'ready' && status.warming) {
            return WARMING_ICON;
        }
        return STATE_ICONS[status.state];
    }

    private tooltip(status: ServerStatus | undefined): vscode.MarkdownString {
        const lines = ['**SmallCoder**', ''];
        lines.push(`Model: \`${status?.model || this.configuredModel}\``);
        const adapter = status ? status.adapter : this.configuredAdapter;
        lines.push(`Adapter: ${adapter ? `\`${adapter}\`` : 'none'}`);
        lines.push(`State: ${status?.state ?? this.phase}`);
        const message = status?.message || this.phaseMessage;
        if (message) {
            lines.push(`Message: ${message}`);
        }
        if (status?.warming) {
            lines.push(`${WARMING_ICON} warming ${status.warming}`);
        }
        if (status?.tokensPerSecond != null) {
            lines.push(`Speed: ${status.tokensPerSecond.toFixed(1)} tokens/s`);
        }
        const snoozed = this.snoozedUntil !== undefined ? ` (snoozed until ${clockTime(this.snoozedUntil)})` : '';
        lines.push(`Inline completions: ${this.inlineCompletionsEnabled ? 'on' : 'off'}${snoozed}`);
        lines.push('', 'Click for SmallCoder commands.');
        const tooltip = new vscode.MarkdownString(lines.join('  \n'));
        tooltip.supportThemeIcons = true;
        return tooltip;
    }
}

/** "14:05": when a snooze ends, in the user's own clock. */
function clockTime(epochMs: number): string {
    return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function phaseIcon(phase: ClientPhase): string {
    switch (phase) {
        case 'installing':
        case 'starting':
            return '$(loading~spin)';
        case 'running':
            return '$(sparkle)';
        case 'stopped':
            return '$(debug-stop)';
        case 'failed':
            return '$(error)';
    }
}

/** "qwen2.5-coder-1.5b-instruct-q4_k_m" → "1.5B"; a path to an unknown GGUF → its file name. */
export function shortModelName(model: string): string {
    const name = path.basename(model).replace(/\.gguf$/i, '');
    const size = /(?:^|[-_.])(\d+(?:\.\d+)?)[bB](?![a-zA-Z])/.exec(name);
    if (size) {
        return `${size[1]}B`;
    }
    return name.length > 24 ? `${name.slice(0, 23)}…` : name || 'SmallCoder';
}

function shortAdapterName(adapter: string): string {
    return path.basename(adapter).replace(/\.gguf$/i, '');
}
