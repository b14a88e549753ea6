/**
 * Serve mode's folder download: a real server, real HTTP requests; the zip is checked with `unzip -t`
 * (CRCs) and its files against the folder's. Paths outside the workspace and requests without the
 * token are refused; a ticket works once. Also: the report and bundle calls over HTTP.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../main/app.ts';
import { memoryLogger } from '../../main/api/logger.ts';
import { appRoot } from '../../main/paths.ts';
import { startServer, type RunningServer } from '../../main/server/serve.ts';
import { crc32 } from '../../main/server/zip.ts';
import { tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let server: RunningServer;
let folder: string;
let outside: string;

beforeAll(async () => {
  scratch = tempDir('whittle-serve-zip-');
  const home = path.join(scratch.dir, 'home');
  app = createWhittleApp({ home, transport: 'serve', workerPath: WORKER, logger: memoryLogger() });
  folder = path.join(scratch.dir, 'work', '12-RTN 4-bit · stories');
  mkdirSync(path.join(folder, 'nested', 'deeper'), { recursive: true });
  writeFileSync(path.join(folder, 'model.onnx'), Buffer.from('onnx bytes'));
  // Larger than one read chunk, not a multiple of it.
  const big = Buffer.alloc(3 * (1 << 20) + 12_345);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  writeFileSync(path.join(folder, 'model.onnx.data'), big);
  writeFileSync(path.join(folder, 'nested', 'deeper', 'whittle.json'), '{"ok":true}');
  writeFileSync(path.join(folder, 'empty.txt'), '');
  outside = path.join(scratch.dir, 'elsewhere');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.txt'), 'no');
  server = await startServer({ app, port: 0, rendererRoot: path.join(scratch.dir, 'no-renderer'), logger: memoryLogger(), roots: [path.join(scratch.dir, 'work')] });
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  scratch?.cleanup();
});

const base = () => `http://127.0.0.1:${server.port}`;
const auth = () => ({ Authorization: `Bearer ${server.token}` });

function unzipCheck(zip: string): string {
  return execFileSync('unzip', ['-t', zip], { encoding: 'utf8' });
}

describe('serve mode folder download', () => {
  it('crc32 matches the reference value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('6789'), crc32(Buffer.from('12345')))).toBe(0xcbf43926);
  });

  it('streams a folder as a zip that unzip accepts, with every file intact', async () => {
    const res = await fetch(`${base()}/api/download?path=${encodeURIComponent(folder)}`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toMatch(/attachment; filename="12-RTN 4-bit _ stories\.zip"/);
    expect(res.headers.get('content-length')).toBeNull();
    const zip = path.join(scratch.dir, 'download.zip');
    writeFileSync(zip, Buffer.from(await res.arrayBuffer()));
    const test = unzipCheck(zip);
    expect(test).toMatch(/No errors detected/);
    const out = path.join(scratch.dir, 'unzipped');
    execFileSync('unzip', ['-q', zip, '-d', out]);
    const name = path.basename(folder);
    for (const rel of ['model.onnx', 'model.onnx.data', path.join('nested', 'deeper', 'whittle.json'), 'empty.txt']) {
      expect(readFileSync(path.join(out, name, rel)).equals(readFileSync(path.join(folder, rel))), rel).toBe(true);
    }
  });

  it('a ticket from POST downloads once, without the token', async () => {
    const ask = await fetch(`${base()}/api/download`, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify({ path: path.join(folder, 'model.onnx') }) });
    expect(ask.status).toBe(200);
    const { url, fileName } = (await ask.json()) as { url: string; fileName: string };
    expect(fileName).toBe('model.onnx.zip');
    expect(url).toMatch(/^\/api\/download\/[\w-]+$/);
    const first = await fetch(`${base()}${url}`);
    expect(first.status).toBe(200);
    const zip = path.join(scratch.dir, 'one.zip');
    writeFileSync(zip, Buffer.from(await first.arrayBuffer()));
    expect(unzipCheck(zip)).toMatch(/testing: model\.onnx\s+OK/);
    const again = await fetch(`${base()}${url}`);
    expect(again.status).toBe(404);
    expect(((await again.json()) as { message: string }).message).toMatch(/used already or has expired/);
  });

  it('refuses without the token, outside the workspace, and for a missing path', async () => {
    expect((await fetch(`${base()}/api/download?path=${encodeURIComponent(folder)}`)).status).toBe(401);
    expect((await fetch(`${base()}/api/download`, { method: 'POST', body: '{}' })).status).toBe(401);
    const out = await fetch(`${base()}/api/download?path=${encodeURIComponent(outside)}`, { headers: auth() });
    expect(out.status).toBe(400);
    expect(((await out.json()) as { message: string }).message).toContain(outside);
    const traversal = await fetch(`${base()}/api/download?path=${encodeURIComponent(path.join(folder, '..', '..', 'elsewhere'))}`, { headers: auth() });
    expect(traversal.status).toBe(400);
    const missing = await fetch(`${base()}/api/download?path=${encodeURIComponent(path.join(folder, 'nope'))}`, { headers: auth() });
    expect(missing.status).toBe(404);
    expect((await fetch(`${base()}/api/download/${'x'.repeat(32)}`)).status).toBe(404);
  });

  it('report and bundle calls over HTTP name only workspace paths', async () => {
    const h = app.history;
    const id = h.createExperiment({ name: 'RTN 4-bit', kind: 'quantize', recipe: {}, modelPath: '/m.onnx', status: 'running' });
    h.addMetrics(id, [{ name: 'perplexity', value: 5, unit: '', subject: 'result' }]);
    h.finish(id, 'done');
    const call = async (method: string, params: unknown) => {
      const res = await fetch(`${base()}/api/call`, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'call', id: 1, method, params }) });
      return (await res.json()) as { ok: boolean; value?: { path?: string | null; content?: string | null }; error?: { code: string; message: string } };
    };
    const inside = path.join(scratch.dir, 'work', 'report.html');
    const written = await call('reports.export', { ids: [id], path: inside });
    expect(written.ok, JSON.stringify(written.error)).toBe(true);
    expect(readFileSync(inside, 'utf8')).toContain('<svg class="chart"');
    const inline = await call('reports.export', { ids: [id], format: 'md' });
    expect(inline.value?.content).toMatch(/^# RTN 4-bit/);
    for (const [method, params] of [
      ['reports.export', { ids: [id], path: path.join(outside, 'r.html') }],
      ['history.export', { ids: [id], path: path.join(outside, 'b.whittle') }],
      ['history.import', { path: path.join(outside, 'secret.txt') }],
    ] as const) {
      const r = await call(method, params);
      expect(r.ok, method).toBe(false);
      expect(r.error?.code).toBe('INVALID_INPUT');
      expect(r.error?.message).toContain(outside);
    }
  });
});
