/**
 * Installs the optional training packages (torch, transformers, peft, matplotlib: the `train`
 * extra) into the Python that runs the server, with pip's progress in a cancellable notification.
 * Offered by Train Personal Adapter when the server's preflight finds them missing, and by the
 * walkthrough's button.
 */
import * as vscode from 'vscode';
import { LanguageClient } from 'vscode-languageclient/node';
import { lacksTorchCpuBuild, pipProgressLine, runCommand, trainingInstallArgs } from './pipCommands';
import { NO_PARAMS, trainingPackagesRequest } from './protocol';

const INSTALL = 'Install Training Packages';
/** Set once the server's Python has every training package: the walkthrough's step is done. */
const READY_CONTEXT = 'smallcoder.trainingReady';
const OUTPUT_TAIL_CHARS = 600;

export type Asking = 'ask first' | 'install';

/**
 * True when the server's Python has the training packages, installing them first if it lacks
 * them and the user agrees (`ask first`) or asked already (`install`, the walkthrough's button).
 * False when the user declined or cancelled.
 */
export async function ensureTrainingPackages(
    client: LanguageClient,
    python: string,
    log: vscode.LogOutputChannel,
    asking: Asking,
): Promise<boolean> {
    const missing = (await client.sendRequest(trainingPackagesRequest, NO_PARAMS)).missing;
    if (missing.length === 0) {
        await vscode.commands.executeCommand('setContext', READY_CONTEXT, true);
        return true;
    }
    log.info(`Training needs ${missing.join(' ')}, which ${python} lacks`);
    if (asking === 'ask first') {
        const choice = await vscode.window.showInformationMessage(
            `SmallCoder: training needs ${missing.map(nameOf).join(', ')} (about 1 GB, a few minutes), which the server's Python lacks. ` +
                `Install them into ${python}?`,
            INSTALL,
        );
        if (choice !== INSTALL) {
            return false;
        }
    }
    if (!(await installWithProgress(python, missing, log))) {
        void vscode.window.showInformationMessage('SmallCoder: the installation of the training packages was cancelled; run it again to finish it.');
        return false;
    }
    const stillMissing = (await client.sendRequest(trainingPackagesRequest, NO_PARAMS)).missing;
    if (stillMissing.length > 0) {
        throw new Error(`pip finished, but the server's Python still lacks ${stillMissing.join(', ')}: see SmallCoder's logs.`);
    }
    await vscode.commands.executeCommand('setContext', READY_CONTEXT, true);
    vscode.window.setStatusBarMessage('SmallCoder: the training packages are installed', 5000);
    return true;
}

/** pip in a cancellable notification; false when cancelled, an error with pip's last words when it failed. */
async function installWithProgress(python: string, pins: string[], log: vscode.LogOutputChannel): Promise<boolean> {
    return vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'SmallCoder: installing the training packages', cancellable: true },
        async (progress, token) => {
            let collected = 0;
            const pip = (withCpuIndex: boolean) => {
                const args = trainingInstallArgs(pins, withCpuIndex);
                log.info(`$ ${python} ${args.join(' ')}`);
                return runCommand(python, args, {
                    onLine: (line) => {
                        log.info(line);
                        collected += line.startsWith('Collecting') ? 1 : 0;
                        const shown = pipProgressLine(line);
                        if (shown !== undefined) {
                            progress.report({ message: `${shown} (${collected} package${collected === 1 ? '' : 's'} so far)` });
                        }
                    },
                    cancelled: (stop) => token.onCancellationRequested(stop),
                });
            };
            progress.report({ message: `pip install ${pins.join(' ')}…` });
            let run = await pip(false);
            if (run.exitCode !== 0 && !token.isCancellationRequested && lacksTorchCpuBuild(run.output)) {
                log.info("pip's sources have no CPU build of torch: asking PyTorch's CPU index too");
                run = await pip(true);
            }
            if (token.isCancellationRequested) {
                return false;
            }
            if (run.exitCode !== 0) {
                throw new Error(`installing the training packages failed (pip exit code ${run.exitCode}): …${run.output.trim().slice(-OUTPUT_TAIL_CHARS)}`);
            }
            return true;
        },
    );
}

function nameOf(pin: string): string {
    return pin.split(/[=<>!~[ ]/)[0];
}
