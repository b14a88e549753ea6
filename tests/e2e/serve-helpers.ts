/** Starts the real `whittle serve` (the built CLI) on a free loopback port with its own history folder;
 *  calls may name files in the project (and the history folder). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ServeHandle { url: string; origin: string; token: string; home: string; stop(): Promise<void> }

export async function startServe(): Promise<ServeHandle> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'whittle-e2e-'));
  const child: ChildProcess = spawn(process.execPath, [path.join(projectRoot, 'out', 'cli.cjs'), 'serve', '--port', '0', '--home', home, '--root', projectRoot], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not print its URL:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = output.match(/http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited (${code}):\n${output}`)); });
  });
  const parsed = new URL(url);
  return {
    url,
    origin: parsed.origin,
    token: parsed.hash.replace('#token=', ''),
    home,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}
