/**
 * Serve mode end to end: the real server on 127.0.0.1, the renderer's own WebSocket client (Node's
 * WHATWG WebSocket standing in for the browser's), the real services and engine worker.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventMessage, RecipeInput } from '../../preload/contract.ts';
import { createWhittleApp, type WhittleApp } from '../../main/app.ts';
import { memoryLogger } from '../../main/api/logger.ts';
import { appRoot } from '../../main/paths.ts';
import { startServer, type RunningServer } from '../../main/server/serve.ts';
import { connectWebSocket, ConnectionError, type WebSocketClient } from '../../renderer/bridge/websocket.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

const quick: RecipeInput = {
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, window: 64, maxSamples: 20 } },
};

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let server: RunningServer;
const logger = memoryLogger();

beforeAll(async () => {
  scratch = tempDir('whittle-serve-ws-');
  app = createWhittleApp({ home: scratch.dir, transport: 'serve', workerPath: WORKER, logger });
  // The fixtures live outside the home folder: the workspace names their folders.
  const roots = [...new Set([STORIES.model, STORIES.tokenizer, STORIES.text].map((p) => path.dirname(p)))];
  server = await startServer({ app, port: 0, rendererRoot: path.join(scratch.dir, 'no-renderer'), logger, roots });
});

afterAll(async () => {
  await server?.close();
  await app?.close();
  scratch?.cleanup();
});

function socketUrl(): string {
  return `ws://127.0.0.1:${server.port}/ws`;
}

describe('serve mode over a WebSocket', () => {
  it('runs an evaluation and streams its events to every connected page, in order', async () => {
    const pageA = connectWebSocket(socketUrl(), server.token);
    const pageB = connectWebSocket(socketUrl(), server.token);
    const seenA: EventMessage[] = [];
    const seenB: EventMessage[] = [];
    for (const [client, seen] of [[pageA, seenA], [pageB, seenB]] as [WebSocketClient, EventMessage[]][]) {
      for (const channel of ['job.progress', 'job.log', 'job.result', 'job.finished'] as const) {
        client.on(channel, (payload) => seen.push({ type: 'event', channel, payload } as EventMessage));
      }
    }
    // Both pages are connected before the job starts.
    await pageB.call('app.info', {});
    const started = await pageA.call('jobs.start', { recipe: quick });
    await expect.poll(() => seenB.some((e) => e.channel === 'job.finished'), { timeout: 60_000 }).toBe(true);
    await expect.poll(() => seenA.some((e) => e.channel === 'job.finished'), { timeout: 10_000 }).toBe(true);

    const forJob = (seen: EventMessage[]) => seen.filter((e) => (e.payload as { jobId?: string }).jobId === started.jobId);
    const a = forJob(seenA);
    expect(a.map((e) => (e.payload as { seq: number }).seq)).toEqual(a.map((_, i) => i + 1));
    expect(forJob(seenB)).toEqual(a);
    expect(a.at(-1)).toMatchObject({ channel: 'job.finished', payload: { status: 'done' } });

    const detail = await pageB.call('history.get', { id: started.experimentId });
    expect(detail.status).toBe('done');
    expect(detail.metrics.find((m) => m.name === 'perplexity')?.value).toBeGreaterThan(1);
    pageA.close();
    pageB.close();
    await expect.poll(() => server.connections).toBe(0);
  });

  it('rejects calls in flight when the server goes away; a restarted server (new token) keeps the old token out', async () => {
    const client = connectWebSocket(socketUrl(), server.token, { initialDelayMs: 20, maxDelayMs: 100 });
    await client.call('app.info', {});
    const states: string[] = [];
    client.onState((s) => states.push(s));

    // Cut every connection from the server side while a call is in flight.
    const inFlight = client.call('history.list', {});
    const cut = server.close();
    const error = await inFlight.then(() => null, (e: unknown) => e);
    // The call either made it before the cut or is rejected as a lost connection — never left hanging.
    if (error) expect(error).toBeInstanceOf(ConnectionError);
    await cut;
    await expect.poll(() => states.includes('connecting')).toBe(true);

    server = await startServer({ app, port: server.port, rendererRoot: path.join(scratch.dir, 'no-renderer'), logger });
    // The new server has a new token: the old one must not get in.
    await new Promise((r) => setTimeout(r, 300));
    expect(client.state).not.toBe('open');
    client.close();

    const again = connectWebSocket(socketUrl(), server.token);
    expect((await again.call('history.list', {})).total).toBe(1);
    again.close();
  });

  it('logged no internal errors', () => {
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});
