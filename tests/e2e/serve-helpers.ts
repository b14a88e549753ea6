/** Starts the real `whittle serve` (the built CLI) on a free loopback port with its own history folder;
 *  calls may name files in the project (and the history folder). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openHistory, type History } from '../../main/history/index.ts';

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

/**
 * Starts `whittle serve` and, before any page opens, writes into its history with `fill` (as the CLI beside
 * the app would); `home` is the served history folder. The server is stopped again when `fill` throws.
 */
export async function startServeWithHistory(fill: (h: History, home: string) => void): Promise<ServeHandle> {
  const serve = await startServe();
  try {
    const h = openHistory({ home: serve.home });
    try {
      fill(h, serve.home);
    } finally {
      h.close();
    }
  } catch (e) {
    await serve.stop();
    throw e;
  }
  return serve;
}
