import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { silentLogger } from '../../../main/api/logger.ts';
import { SERVE_CSP, startServer, type RunningServer } from '../../../main/server/serve.ts';
import { connectWebSocket, ConnectionError } from '../../../renderer/bridge/websocket.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const UNAUTHORIZED_BODY = {
  code: 'UNAUTHORIZED',
  message: 'Missing or wrong access token: open the URL printed by `whittle serve`, which carries the token.',
};

interface RawResponse { status: number; headers: http.IncomingHttpHeaders; body: string }

/** A request with the path sent exactly as given (fetch would normalise `..` away). */
function raw(port: number, rawPath: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function callBody(id: number, method: string, params: unknown = {}): string {
  return JSON.stringify({ type: 'call', id, method, params });
}

/** Opens a ws connection; resolves with the socket, or with the HTTP status the upgrade was refused with. */
function openSocket(url: string, headers: Record<string, string> = {}): Promise<{ socket?: WebSocket; status?: number; body?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => resolve({ socket }));
    socket.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    socket.once('error', (e) => { if (!('statusCode' in e)) reject(e); });
  });
}

function nextMessage(socket: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => socket.once('message', (data) => resolve(JSON.parse(String(data)))));
}

describe('serve mode', () => {
  let home: ReturnType<typeof tempDir>;
  let app: WhittleApp;
  let server: RunningServer;
  let base: string;
  const SECRET = 'top secret beside the bundle';

  beforeAll(async () => {
    home = tempDir('whittle-serve-');
    // A small built renderer, and files beside it that must never be served.
    const root = path.join(home.dir, 'out', 'renderer');
    mkdirSync(path.join(root, 'assets'), { recursive: true });
    writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>Whittle</title><script type="module" src="/assets/app.js"></script>');
    writeFileSync(path.join(root, 'assets', 'app.js'), 'console.log("whittle");');
    writeFileSync(path.join(root, 'assets', 'style.css'), 'body{}');
    writeFileSync(path.join(root, '.env'), SECRET);
    writeFileSync(path.join(home.dir, 'out', 'secret.txt'), SECRET);
    writeFileSync(path.join(home.dir, 'package.json'), SECRET);
    symlinkSync(path.join(home.dir, 'out', 'secret.txt'), path.join(root, 'assets', 'link.txt'));

    app = createWhittleApp({ home: path.join(home.dir, 'home'), transport: 'serve', logger: silentLogger });
    server = await startServer({ app, port: 0, host: '127.0.0.1', rendererRoot: root });
    base = `http://127.0.0.1:${server.port}`;
  });

  afterAll(async () => {
    await server?.close();
    await app?.close();
    home?.cleanup();
  });

  it('prints a URL that carries the token in the fragment', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/#token=${server.token}`);
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(server.port).toBeGreaterThan(0);
  });

  describe('the API', () => {
    it('answers 401 with UNAUTHORIZED to a request without the token', async () => {
      const res = await raw(server.port, '/api/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: callBody(1, 'app.info') });
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.body)).toEqual(UNAUTHORIZED_BODY);
    });

    it('answers 401 to a wrong token, in the query or as a bearer token', async () => {
      const wrong = `${server.token.slice(0, -1)}${server.token.endsWith('A') ? 'B' : 'A'}`;
      const a = await raw(server.port, `/api/call?token=${wrong}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: callBody(1, 'app.info') });
      const b = await raw(server.port, '/api/call', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${wrong}` }, body: callBody(1, 'app.info') });
      const c = await raw(server.port, '/api/call?token=', { method: 'POST', headers: { 'content-type': 'application/json' }, body: callBody(1, 'app.info') });
      for (const res of [a, b, c]) {
        expect(res.status).toBe(401);
        expect(JSON.parse(res.body)).toEqual(UNAUTHORIZED_BODY);
      }
    });

    it('refuses the right token in the URL: the API takes it only in the Authorization header', async () => {
      const viaQuery = await raw(server.port, `/api/call?token=${server.token}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: callBody(7, 'app.info') });
      expect(viaQuery.status).toBe(401);
      expect(JSON.parse(viaQuery.body)).toEqual(UNAUTHORIZED_BODY);
    });

    it('answers a call with the right bearer token', async () => {
      const viaHeader = await fetch(`${base}/api/call`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` }, body: callBody(7, 'app.info') });
      expect(viaHeader.status).toBe(200);
      const reply = await viaHeader.json() as { id: number; ok: boolean; value: { transport: string; home: string } };
      expect(reply).toMatchObject({ type: 'reply', id: 7, ok: true });
      expect(reply.value.transport).toBe('serve');
      expect(reply.value.home).toBe(app.home);

      const viaBearer = await fetch(`${base}/api/call`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` }, body: callBody(8, 'history.get', { id: 99 }) });
      expect(await viaBearer.json()).toMatchObject({ id: 8, ok: false, error: { code: 'NOT_FOUND' } });
    });

    it('validates what comes in: JSON body, content type, method', async () => {
      const notJson = await raw(server.port, '/api/call', { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: '{nope' });
      expect(notJson.status).toBe(400);
      const form = await raw(server.port, '/api/call', { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
      expect(form.status).toBe(415);
      const get = await raw(server.port, '/api/call', { headers: { authorization: `Bearer ${server.token}` } });
      expect(get.status).toBe(405);
      const other = await raw(server.port, '/api/files', { headers: { authorization: `Bearer ${server.token}` } });
      expect(other.status).toBe(404);
    });

    it('answers 413 to a body over 1 MiB, and the client receives it (the connection is not reset)', async () => {
      const big = callBody(1, 'history.list', { search: 'x'.repeat((1 << 20) + 10) });
      const res = await raw(server.port, '/api/call', { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: big });
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining(`${1 << 20} bytes`) });
      // The server still answers afterwards.
      const after = await raw(server.port, '/api/call', { method: 'POST', headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: callBody(2, 'jobs.list') });
      expect(after.status).toBe(200);
    });
  });

  describe('the workspace', () => {
    const call = async (method: string, params: unknown) => {
      const res = await fetch(`${base}/api/call`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` }, body: callBody(1, method, params) });
      return await res.json() as { ok: boolean; error?: { code: string; message: string } };
    };

    it('is the home folder and the history folder by default', () => {
      expect(server.roots).toEqual(expect.arrayContaining([realpathSync(os.homedir()), realpathSync(app.home)]));
    });

    it('refuses paths outside it in models.inspect, files.reveal and jobs.start, naming the path and the roots', async () => {
      const outside = path.join(home.dir, 'out', 'secret.txt');
      for (const [method, params] of [
        ['models.inspect', { path: outside }],
        ['quantize.plan', { path: outside, step: { type: 'quantize', method: 'fp16' } }],
        ['files.reveal', { path: outside }],
        ['files.reveal', { path: path.join(home.dir, 'no-such-file') }],
        ['jobs.start', { recipe: { model: { path: outside } } }],
      ] as const) {
        const reply = await call(method, params);
        expect(reply.error?.code, method).toBe('INVALID_INPUT');
        expect(reply.error?.message, method).toContain('is outside the folders this server may use');
        expect(reply.error?.message, method).toContain(realpathSync(app.home));
      }
    });

    it('lets calls name files inside it', async () => {
      const inside = path.join(app.home, 'notes.txt');
      writeFileSync(inside, 'not a model');
      expect((await call('models.inspect', { path: inside })).error?.code).toBe('MODEL_PARSE');
    });
  });

  describe('the WebSocket', () => {
    it('refuses an upgrade without the token, or with a wrong one', async () => {
      const none = await openSocket(`ws://127.0.0.1:${server.port}/ws`);
      expect(none.status).toBe(401);
      expect(JSON.parse(none.body!)).toEqual(UNAUTHORIZED_BODY);
      const wrong = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=nope`);
      expect(wrong.status).toBe(401);
      expect(server.connections).toBe(0);
    });

    it('answers calls and forwards events once connected with the token', async () => {
      const { socket } = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`, { origin: base });
      expect(socket).toBeDefined();
      socket!.send(callBody(1, 'history.list', {}));
      expect(await nextMessage(socket!)).toEqual({ type: 'reply', id: 1, ok: true, value: { items: [], total: 0 } });

      socket!.send(callBody(2, 'history.get', { id: 1, extra: true }));
      expect(await nextMessage(socket!)).toMatchObject({ type: 'reply', id: 2, ok: false, error: { code: 'INVALID_INPUT' } });

      socket!.send('not json');
      expect(await nextMessage(socket!)).toMatchObject({ type: 'reply', id: -1, ok: false, error: { code: 'INVALID_INPUT' } });

      const event = nextMessage(socket!);
      app.events.emit('history.changed', { experimentId: 5 });
      expect(await event).toEqual({ type: 'event', channel: 'history.changed', payload: { experimentId: 5 } });
      socket!.close();
    });

    it('carries non-finite numbers through the wire format', async () => {
      const { socket } = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`);
      const event = nextMessage(socket!);
      app.events.emit('job.result', { jobId: 'j', experimentId: 1, seq: 3, metrics: [{ name: 'perplexity', value: Infinity, unit: '', subject: 'model' }], artefacts: [], details: {} });
      expect(JSON.stringify(await event)).toContain('{"$nonFinite":"Infinity"}');
      socket!.close();
    });

    it('works with the renderer\'s own client (NaN included), which refuses calls once closed', async () => {
      const client = connectWebSocket(`ws://127.0.0.1:${server.port}/ws`, server.token, { initialDelayMs: 20 });
      const info = await client.call('app.info', {});
      expect(info.transport).toBe('serve');
      expect(client.state).toBe('open');

      const got: number[] = [];
      client.on('job.result', (r) => got.push(r.metrics[0].value));
      app.events.emit('job.result', { jobId: 'j', experimentId: 1, seq: 1, metrics: [{ name: 'perplexity', value: Number.NaN, unit: '', subject: 'model' }], artefacts: [], details: {} });
      await expect.poll(() => got.length).toBe(1);
      expect(Number.isNaN(got[0])).toBe(true);

      const failed = await client.call('history.get', { id: 12345 }).catch((e: unknown) => e);
      expect(failed).toMatchObject({ code: 'NOT_FOUND', method: 'history.get' });

      client.close();
      expect(client.state).toBe('closed');
      await expect(client.call('app.info', {})).rejects.toBeInstanceOf(ConnectionError);
    });
  });

  describe('static files', () => {
    it('serves index.html with a strict CSP and the right content types', async () => {
      const res = await raw(server.port, '/');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('<title>Whittle</title>');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toBe(SERVE_CSP);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self' ws://127.0.0.1:*");
      expect(csp).toContain("img-src 'self' data:");
      expect(csp).toContain("style-src 'self' 'unsafe-inline'");
      expect(csp).not.toMatch(/script-src[^;]*unsafe/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['referrer-policy']).toBe('no-referrer');

      const js = await raw(server.port, '/assets/app.js');
      expect(js.status).toBe(200);
      expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(js.headers['content-security-policy']).toBe(SERVE_CSP);
      const css = await raw(server.port, '/assets/style.css');
      expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    });

    it.each([
      '/../package.json',
      '/../secret.txt',
      '/../../package.json',
      '/assets/../../secret.txt',
      '/%2e%2e/package.json',
      '/%2E%2E/%2E%2E/package.json',
      '/%2e%2e%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/assets%5c..%5c..%5csecret.txt',
      '/%252e%252e/secret.txt',
      '/.env',
      '/assets/link.txt',
      '/assets/app.js%00.html',
      '//secret.txt',
      '/assets/',
      '/%E0%A4%A',
    ])('refuses %s', async (p) => {
      const res = await raw(server.port, p);
      expect(res.status).toBe(404);
      expect(res.body).not.toContain(SECRET);
    });

    it('allows only GET and HEAD', async () => {
      const head = await raw(server.port, '/assets/app.js', { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
      const post = await raw(server.port, '/assets/app.js', { method: 'POST' });
      expect(post.status).toBe(405);
    });
  });

  describe('other sites', () => {
    it('refuses a foreign Origin on pages, the API and the WebSocket', async () => {
      const page = await raw(server.port, '/', { headers: { origin: 'http://evil.example' } });
      expect(page.status).toBe(403);
      expect(JSON.parse(page.body).code).toBe('UNAUTHORIZED');
      const api = await raw(server.port, '/api/call', { method: 'POST', headers: { authorization: `Bearer ${server.token}`, origin: 'http://evil.example', 'content-type': 'application/json' }, body: callBody(1, 'app.info') });
      expect(api.status).toBe(403);
      const ws = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`, { origin: 'http://evil.example' });
      expect(ws.status).toBe(403);
      const otherPort = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`, { origin: `http://127.0.0.1:${server.port + 1}` });
      expect(otherPort.status).toBe(403);
    });

    it('refuses a foreign Host header (DNS rebinding), even with the token', async () => {
      const res = await raw(server.port, '/api/call', { method: 'POST', headers: { authorization: `Bearer ${server.token}`, host: `evil.example:${server.port}`, 'content-type': 'application/json' }, body: callBody(1, 'app.info') });
      expect(res.status).toBe(403);
      const page = await raw(server.port, '/', { headers: { host: 'evil.example' } });
      expect(page.status).toBe(403);
      const ws = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`, { host: `rebind.example:${server.port}` });
      expect(ws.status).toBe(403);
    });

    it('accepts localhost as the host name', async () => {
      const res = await raw(server.port, '/', { headers: { host: `localhost:${server.port}`, origin: `http://localhost:${server.port}` } });
      expect(res.status).toBe(200);
    });

    it('accepts loopback Hosts on another port (an SSH tunnel), with their own Origin', async () => {
      for (const host of ['localhost:9000', '127.0.0.1:8443', '[::1]:9000', 'localhost']) {
        const page = await raw(server.port, '/', { headers: { host, origin: `http://${host}` } });
        expect(page.status, host).toBe(200);
        const api = await raw(server.port, '/api/call', { method: 'POST', headers: { host, authorization: `Bearer ${server.token}`, 'content-type': 'application/json' }, body: callBody(1, 'jobs.list') });
        expect(api.status, host).toBe(200);
      }
      const ws = await openSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`, { host: 'localhost:9000', origin: 'http://localhost:9000' });
      expect(ws.socket).toBeDefined();
      ws.socket!.close();
    });

    it('still refuses other Hosts, and an Origin that is not the Host\'s own', async () => {
      for (const host of ['127.0.0.2:9000', 'localhost.evil.example', 'evil.example', '[::2]:9000', 'localhost:99999', 'localhost:9000:1']) {
        const res = await raw(server.port, '/', { headers: { host } });
        expect(res.status, host).toBe(403);
      }
      const crossPort = await raw(server.port, '/', { headers: { host: 'localhost:9000', origin: 'http://localhost:3000' } });
      expect(crossPort.status).toBe(403);
      const https = await raw(server.port, '/', { headers: { host: 'localhost:9000', origin: 'https://localhost:9000' } });
      expect(https.status).toBe(403);
    });
  });
});

describe('serve mode without a built renderer', () => {
  it('says to run npm run build', async () => {
    const home = tempDir('whittle-serve-');
    const app = createWhittleApp({ home: home.dir, transport: 'serve', logger: silentLogger });
    const server = await startServer({ app, port: 0, rendererRoot: path.join(home.dir, 'missing') });
    try {
      const res = await raw(server.port, '/');
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body).toContain('npm run build');
    } finally {
      await server.close();
      await app.close();
      home.cleanup();
    }
  });

  it('listens on 127.0.0.1 only', async () => {
    const app = { router: { dispatch: async () => ({ type: 'reply' as const, id: 0, ok: true as const, value: null }) }, events: { emit() {}, subscribe: () => () => {}, subscriberCount: 0 } };
    await expect(startServer({ app, host: '0.0.0.0' as '127.0.0.1' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});
