// Runs a script with a Node that can load Whittle's native modules: this one when it is new enough,
// otherwise the private Node in .tools/.  Usage: node scripts/with-node.mjs <script> [args...]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { selectNode } from './node-runtime.mjs';

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node scripts/with-node.mjs <script> [args...]');
  process.exit(2);
}
const node = selectNode();
if (!node) {
  console.error('whittle: Node 22.14 or newer is needed. Run `npm install` (it installs one) or upgrade Node.');
  process.exit(1);
}
if (node === process.execPath) {
  process.argv = [process.argv[0], path.resolve(script), ...args];
  await import(pathToFileURL(path.resolve(script)).href);
} else {
  const child = spawn(node, [script, ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
