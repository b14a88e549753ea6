// Builds Whittle's JavaScript: esbuild bundles for the Node side (CLI, engine process, Electron main,
// preload) and the Vite build of the renderer. `--if-stale` skips the work when out/ is newer than
// every source file.
import { build as esbuild } from 'esbuild';
import { existsSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './node-runtime.mjs';

const out = path.join(projectRoot, 'out');
const stamp = path.join(out, '.build-stamp');
const sourceDirs = ['main', 'preload', 'renderer'].map((d) => path.join(projectRoot, d));
const extraSources = ['vite.config.ts', 'package.json'].map((f) => path.join(projectRoot, f));

const entries = [
  { in: 'main/cli/index.ts', out: 'cli.cjs' },
  { in: 'main/jobs/engine-worker.ts', out: 'engine-worker.cjs' },
  { in: 'main/api/inspect-worker.ts', out: 'inspect-worker.cjs' },
  { in: 'main/electron/main.ts', out: 'electron-main.cjs' },
  { in: 'preload/index.ts', out: 'preload.cjs' },
];

// Loaded from node_modules at run time: native modules, Electron itself, optional ws accelerators.
const external = ['electron', 'better-sqlite3', 'onnxruntime-node', 'node-llama-cpp', 'bufferutil', 'utf-8-validate'];

function newestMtime(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(p)) {
    if (name === 'resources' || name === 'node_modules') continue;
    newest = Math.max(newest, newestMtime(path.join(p, name)));
  }
  return newest;
}

function isStale() {
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  return [...sourceDirs, ...extraSources].some((p) => existsSync(p) && newestMtime(p) > built);
}

async function buildNode() {
  for (const entry of entries) {
    const source = path.join(projectRoot, entry.in);
    if (!existsSync(source)) throw new Error(`missing entry point ${entry.in}`);
    await esbuild({
      entryPoints: [source],
      outfile: path.join(out, entry.out),
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      sourcemap: 'linked',
      external,
      logLevel: 'warning',
      // Sources use import.meta.url only behind a `typeof __dirname` guard (main/paths.ts).
      logOverride: { 'empty-import-meta': 'silent' },
    });
  }
}

async function buildRenderer() {
  const { build } = await import('vite');
  await build({ configFile: path.join(projectRoot, 'vite.config.ts'), logLevel: 'warn' });
}

const ifStale = process.argv.includes('--if-stale');
if (ifStale && !isStale()) process.exit(0);

const started = Date.now();
mkdirSync(out, { recursive: true });
await buildNode();
await buildRenderer();
writeFileSync(stamp, new Date().toISOString());
console.log(`whittle: built out/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
