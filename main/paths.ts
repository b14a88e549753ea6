/**
 * Where Whittle's own files are: the app root (the folder holding Whittle's package.json), its built
 * outputs and its bundled resources. Works from the TypeScript sources, from the esbuild bundles in
 * out/, and from a packaged app (files that native code must open are read from app.asar.unpacked).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function startDir(): string {
  // CommonJS bundles have __dirname; ES modules (sources run by Node or vitest) have import.meta.url.
  if (typeof __dirname === 'string') return __dirname;
  return path.dirname(fileURLToPath(import.meta.url));
}

function findAppRoot(from: string): string {
  let dir = from;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'whittle') return dir;
      } catch { /* keep walking */ }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`Whittle's package.json was not found above ${from}`);
    dir = parent;
  }
}

let cachedRoot: string | undefined;

export function appRoot(): string {
  cachedRoot ??= findAppRoot(startDir());
  return cachedRoot;
}

/** A path inside the app that native code (onnxruntime, addons) must open: outside the asar archive. */
export function unpackedPath(...parts: string[]): string {
  return path.join(appRoot(), ...parts).replace(/app\.asar([\\/])/, 'app.asar.unpacked$1');
}

export const appPaths = {
  out: () => path.join(appRoot(), 'out'),
  renderer: () => path.join(appRoot(), 'out', 'renderer'),
  engineWorker: () => path.join(appRoot(), 'out', 'engine-worker.cjs'),
  resources: () => unpackedPath('main', 'resources'),
  nativeAddon: () => unpackedPath('native-kernels', 'build', 'Release', 'whittle_kernels.node'),
};

export function appVersion(): string {
  return JSON.parse(readFileSync(path.join(appRoot(), 'package.json'), 'utf8')).version;
}
