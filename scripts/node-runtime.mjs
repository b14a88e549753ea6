// Which Node runs Whittle. better-sqlite3 13 needs Node-API 10 (Node >= 22.14); where the system Node
// is older, a private Node 24 is installed from the npm registry into .tools/ and used instead.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PRIVATE_NODE_VERSION = '24.21.0';
export const MIN_NODE = [22, 14, 0];

export function satisfiesMinimum(version = process.versions.node) {
  const parts = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if (parts[i] !== MIN_NODE[i]) return parts[i] > MIN_NODE[i];
  }
  return true;
}

export function privateNodePackage() {
  const platform = process.platform === 'win32' ? 'win' : process.platform;
  return `node-${platform}-${process.arch}`;
}

export function privateNodePath() {
  const dir = path.join(projectRoot, '.tools', 'node_modules', privateNodePackage());
  return process.platform === 'win32' ? path.join(dir, 'bin', 'node.exe') : path.join(dir, 'bin', 'node');
}

/** The Node executable to run Whittle with, or null when none is installed yet. */
export function selectNode() {
  if (satisfiesMinimum()) return process.execPath;
  const candidate = privateNodePath();
  return existsSync(candidate) ? candidate : null;
}
