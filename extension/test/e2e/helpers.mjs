// Small helpers the scenarios share: assertions, waiting, finding lines in fixtures.
import { readFileSync } from 'node:fs';

export function assert(condition, message) {
    if (!condition) {
        throw new Error(message);
    }
}

/** The 1-based number of the first line of `file` that starts with `start`. */
export function lineNumberOf(file, start) {
    const index = readFileSync(file, 'utf8').split('\n').findIndex((line) => line.startsWith(start));
    assert(index >= 0, `no line of ${file} starts with "${start}"`);
    return index + 1;
}

export async function waitFor(what, check, timeoutMs, intervalMs = 500) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value) {
            return value;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
}

/**
 * One user setting, or undefined while settings.json is missing or half written: VS Code
 * truncates the file before it writes it, so a read can land on an empty file.
 */
export function userSetting(settingsFile, key) {
    try {
        return JSON.parse(readFileSync(settingsFile, 'utf8'))[key];
    } catch {
        return undefined;
    }
}

/** The placeholder of the instruction box Refactor Function opens (extension/src/commands.ts). */
export const REFACTOR_PLACEHOLDER = 'for example: use a generator expression';
