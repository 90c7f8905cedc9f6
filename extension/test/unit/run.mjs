// Unit tests of the extension's modules that do not need VS Code (the toolchain check, the pip
// command lines): type-checked, bundled by esbuild into out/unit-tests/, run by `node --test`.
// `npm run test:unit`; the Makefile's test target runs it.
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');
const outDir = join(repoRoot, 'out', 'unit-tests');

const typecheck = spawnSync(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', here], { stdio: 'inherit' });
if (typecheck.status !== 0) {
    process.exit(typecheck.status ?? 1);
}
const tests = readdirSync(here).filter((name) => name.endsWith('.test.ts'));
rmSync(outDir, { recursive: true, force: true });
await esbuild.build({
    entryPoints: tests.map((name) => join(here, name)),
    bundle: true,
    outdir: outDir,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // The modules under test must not need VS Code: bundling one that does fails here.
    logLevel: 'warning',
});
const run = spawnSync(process.execPath, ['--test', ...tests.map((name) => join(outDir, name.replace(/\.ts$/, '.js')))], {
    stdio: 'inherit',
    cwd: repoRoot,
});
process.exit(run.status ?? 1);
