/**
 * `whittle serve --port 0 --root DIR` as a child process: prints one URL carrying a token, refuses
 * requests without the token, answers with it, keeps calls to its --root folder, and stops cleanly on SIGTERM.
 */
import { once } from 'node:events';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.ts';
import { startCli } from './cli-process.ts';

let scratch: { dir: string; cleanup: () => void };

beforeAll(() => { scratch = tempDir('whittle-cli-serve-'); });
afterAll(() => scratch.cleanup());

function call(origin: string, token: string | null, method: string, params: unknown): Promise<Response> {
  return fetch(`${origin}/api/call`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ type: 'call', id: 1, method, params }),
  });
}

describe('whittle serve', () => {
  it('prints a tokenised URL, answers 401 without the token, and stops on SIGTERM', async () => {
    const root = path.join(scratch.dir, 'models');
    mkdirSync(root);
    writeFileSync(path.join(root, 'notes.txt'), 'not a model');
    const child = startCli(['serve', '--port', '0', '--home', path.join(scratch.dir, 'home'), '--root', root]);
    let stdout = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (t: string) => { stderr += t; });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed:\n${stdout}\n${stderr}`)), 30_000);
        child.stdout!.setEncoding('utf8').on('data', (t: string) => {
          stdout += t;
          const m = /http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]+/.exec(stdout);
          if (m) { clearTimeout(timer); resolve(m[0]); }
        });
        child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited early (${code}):\n${stderr}`)); });
      });
      // Exactly one line on stdout: the URL.
      expect(stdout.trim().split('\n')).toHaveLength(1);
      const parsed = new URL(url);
      const token = parsed.hash.replace('#token=', '');
      expect(token.length).toBeGreaterThanOrEqual(16);

      const refused = await call(parsed.origin, null, 'history.list', {});
      expect(refused.status).toBe(401);
      const wrong = await call(parsed.origin, `${token}x`, 'history.list', {});
      expect(wrong.status).toBe(401);

      const answered = await call(parsed.origin, token, 'history.list', {});
      expect(answered.status).toBe(200);
      expect(await answered.json()).toEqual({ type: 'reply', id: 1, ok: true, value: { items: [], total: 0 } });

      // --root: files inside are used, others refused naming the path and the roots.
      const inside = await (await call(parsed.origin, token, 'models.inspect', { path: path.join(root, 'notes.txt') })).json();
      expect(inside).toMatchObject({ ok: false, error: { code: 'MODEL_PARSE' } });
      const outside = await (await call(parsed.origin, token, 'models.inspect', { path: path.join(scratch.dir, 'elsewhere.onnx') })).json() as { error: { code: string; message: string } };
      expect(outside.error.code).toBe('INVALID_INPUT');
      expect(outside.error.message).toContain(path.join(scratch.dir, 'elsewhere.onnx'));
      expect(outside.error.message).toContain(realpathSync(root));
    } finally {
      child.kill('SIGTERM');
    }
    const [code, signal] = await exited;
    expect(signal).toBeNull();
    expect(code).toBe(0);
  });
});
