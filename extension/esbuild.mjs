// Bundles the extension and vscode-languageclient into one file, out/extension.js,
// so the .vsix ships no node_modules. `--watch` rebuilds on change while developing.
import * as esbuild from 'esbuild';

const options = {
    entryPoints: ['extension/src/extension.ts'],
    bundle: true,
    outfile: 'out/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
    minify: !process.argv.includes('--watch'),
    keepNames: true,
    sourcemap: true,
    sourcesContent: false,
    logLevel: 'info',
};

if (process.argv.includes('--watch')) {
    const context = await esbuild.context(options);
    await context.watch();
} else {
    await esbuild.build(options);
}
