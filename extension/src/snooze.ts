/**
 * Snoozing inline completions for a while: no suggestion is asked for until the time is up.
 * The end time is kept in the extension's global state, so a restarted server or a reloaded
 * window stays snoozed; the status bar shows it and the menu offers to resume.
 */
import * as vscode from 'vscode';

const SNOOZED_UNTIL_KEY = 'smallcoder.snoozedUntil';
export const SNOOZE_MINUTES = [1, 5, 15, 30, 60];

export class Snooze implements vscode.Disposable {
    private timer: NodeJS.Timeout | undefined;
    private readonly changed = new vscode.EventEmitter<void>();
    /** Fires when a snooze starts or ends. */
    readonly onDidChange = this.changed.event;

    constructor(private readonly state: vscode.Memento) {
        this.scheduleEnd();
    }

    /** When suggestions come back (ms since the epoch), or undefined when not snoozed. */
    get until(): number | undefined {
        const until = this.state.get<number>(SNOOZED_UNTIL_KEY);
        return until !== undefined && until > Date.now() ? until : undefined;
    }

    get active(): boolean {
        return this.until !== undefined;
    }

    async snoozeFor(minutes: number): Promise<void> {
        await this.state.update(SNOOZED_UNTIL_KEY, Date.now() + minutes * 60_000);
        this.scheduleEnd();
        this.changed.fire();
    }

    async resume(): Promise<void> {
        await this.state.update(SNOOZED_UNTIL_KEY, undefined);
        this.scheduleEnd();
        this.changed.fire();
    }

    dispose(): void {
        clearTimeout(this.timer);
        this.changed.dispose();
    }

    private scheduleEnd(): void {
        clearTimeout(this.timer);
        const until = this.until;
        if (until !== undefined) {
            this.timer = setTimeout(() => {
                this.timer = undefined;
                this.changed.fire();
            }, until - Date.now() + 50);
        }
    }
}
