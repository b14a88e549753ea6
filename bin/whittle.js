#!/usr/bin/env node
// The `whittle` command: runs the bundled CLI (out/cli.cjs) with a Node that can load Whittle's native
// modules (>= 22.14, see scripts/node-runtime.mjs). This Node when it is new enough, otherwise the
// private Node that `npm install` put in .tools/.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectNode } from '../scripts/node-runtime.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'out', 'cli.cjs');

if (!existsSync(cli)) {
  console.error(`whittle: ${cli} is missing. Run \`npm run build\` in ${root} first.`);
  process.exit(1);
}
const node = selectNode();
if (!node) {
  console.error(`whittle: Node 22.14 or newer is needed (this is ${process.versions.node}). Run \`npm install\` in ${root} (it installs one) or upgrade Node.`);
  process.exit(1);
}

if (node === process.execPath) {
  // Same Node: load the CLI here; it reads process.argv.slice(2) like any script.
  createRequire(import.meta.url)(cli);
} else {
  const child = spawn(node, [cli, ...process.argv.slice(2)], { stdio: 'inherit' });
  // A terminal's Ctrl-C already reaches the child (same process group): do not send it a second one,
  // which the CLI would read as "quit at once". Signals sent to this process alone are passed on.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  process.on('SIGHUP', () => child.kill('SIGHUP'));
  child.on('error', (error) => {
    console.error(`whittle: could not start ${node}: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
