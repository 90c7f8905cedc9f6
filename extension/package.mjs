// Builds dist/smallcoder-<version>.vsix: the bundled extension plus a wheel of the Python
// project (the server the extension installs into its managed venv when pythonPath is unset).
// vsce 4 needs Node >= 22, so it runs on the Node 24 that scripts/setup_editor.sh installs.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const wheelFolder = join(repoRoot, 'extension', 'python-dist');
const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
const vsixPath = join(repoRoot, 'dist', `smallcoder-${version}.vsix`);
// Folders that are not part of the Python distribution and are large or belong to other tools.
const NOT_PYTHON_SOURCES = new Set([
    '.git', '.venv', '.tools', 'node_modules', 'dist', 'out', 'build', 'artifacts', 'extension',
    '.pytest_cache', '.ruff_cache', '__pycache__',
]);

function run(command, args) {
    console.log(`$ ${command} ${args.join(' ')}`);
    execFileSync(command, args, { cwd: repoRoot, stdio: 'inherit' });
}

function pythonForWheel() {
    const venvPython = join(repoRoot, '.venv', 'bin', 'python');
    return existsSync(venvPython) ? venvPython : 'python3';
}

function nodeForVsce() {
    if (Number(process.versions.node.split('.')[0]) >= 22) {
        return process.execPath;
    }
    const node24 = join(repoRoot, '.tools', 'node24', 'node_modules', '.bin', 'node');
    if (!existsSync(node24)) {
        throw new Error(`vsce needs Node >= 22 and ${node24} is missing: run scripts/setup_editor.sh first.`);
    }
    return node24;
}

run('npm', ['run', 'build']);

/** Builds the wheel from a copy, so setuptools' build/ and egg-info never land in the work tree. */
function buildServerWheel() {
    const staging = mkdtempSync(join(tmpdir(), 'smallcoder-wheel-'));
    try {
        cpSync(repoRoot, staging, {
            recursive: true,
            filter: (source) => source === repoRoot || !NOT_PYTHON_SOURCES.has(basename(source)),
        });
        run(pythonForWheel(), ['-m', 'pip', 'wheel', '--quiet', '--no-deps', '--wheel-dir', wheelFolder, staging]);
    } finally {
        rmSync(staging, { recursive: true, force: true });
    }
}

rmSync(wheelFolder, { recursive: true, force: true });
mkdirSync(wheelFolder, { recursive: true });
buildServerWheel();
const wheels = readdirSync(wheelFolder).filter((name) => name.endsWith('.whl'));
if (wheels.length !== 1) {
    throw new Error(`expected one server wheel in ${wheelFolder}, found ${wheels.join(', ') || 'none'}`);
}

mkdirSync(dirname(vsixPath), { recursive: true });
run(nodeForVsce(), [
    join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce'),
    'package',
    '--no-dependencies',
    '--skip-license',
    '--allow-missing-repository',
    '--out',
    vsixPath,
]);
console.log(`packaged ${vsixPath}`);
