/**
 * The renderer's WebSocket client against a scripted peer (a `ws` server speaking the wire format), to
 * drive what a real server rarely does on cue: drop a connection mid-call, answer out of order.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConnectionError, WhittleCallError, connectWebSocket, serveSocketUrl, type WebSocketClient } from '../../../renderer/bridge/websocket.ts';
import { encodeWire } from '../../../preload/wire.ts';

interface Peer { wss: WebSocketServer; url: string; connections: { socket: WebSocket; url: string; calls: Record<string, unknown>[] }[] }

async function peer(onCall: (socket: WebSocket, call: Record<string, unknown>, connection: number) => void): Promise<Peer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const p: Peer = { wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`, connections: [] };
  wss.on('connection', (socket, req) => {
    const entry = { socket, url: req.url ?? '', calls: [] as Record<string, unknown>[] };
    const index = p.connections.push(entry) - 1;
    socket.on('message', (data) => {
      const call = JSON.parse(String(data)) as Record<string, unknown>;
      entry.calls.push(call);
      onCall(socket, call, index);
    });
  });
  return p;
}

let open: { peer?: Peer; client?: WebSocketClient }[] = [];
afterEach(async () => {
  for (const o of open) {
    o.client?.close();
    for (const c of o.peer?.connections ?? []) c.socket.terminate();
    await new Promise((r) => o.peer?.wss.close(r));
  }
  open = [];
});

describe('the WebSocket client', () => {
  it('sends the token, queues calls until the socket is open, and matches replies by id', async () => {
    const p = await peer((socket, call) => {
      // Answer out of order: the second call first.
      if (call.method === 'jobs.list') socket.send(encodeWire({ type: 'reply', id: call.id, ok: true, value: [] }));
      else setTimeout(() => socket.send(encodeWire({ type: 'reply', id: call.id, ok: false, error: { code: 'NOT_FOUND', message: 'no such experiment', details: { id: 3 } } })), 20);
    });
    const client = connectWebSocket(p.url, 'tok/en+=', { initialDelayMs: 10 });
    open.push({ peer: p, client });
    expect(client.state).toBe('connecting');
    const first = client.call('history.get', { id: 3 });
    const second = client.call('jobs.list', {});
    expect(await second).toEqual([]);
    const error = await first.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WhittleCallError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', message: 'no such experiment', details: { id: 3 }, method: 'history.get' });
    expect(new URL(p.connections[0].url, 'http://x').searchParams.get('token')).toBe('tok/en+=');
    expect(p.connections[0].calls.map((c) => c.method)).toEqual(['history.get', 'jobs.list']);
  });

  it('rejects the call in flight when the connection drops, reconnects, and works again', async () => {
    const p = await peer((socket, call, connection) => {
      if (connection === 0) socket.terminate();
      else socket.send(encodeWire({ type: 'reply', id: call.id, ok: true, value: { items: [], total: 0 } }));
    });
    const client = connectWebSocket(p.url, 't', { initialDelayMs: 10, maxDelayMs: 50 });
    open.push({ peer: p, client });
    const states: string[] = [];
    client.onState((s) => states.push(s));
    await expect(client.call('history.list', {})).rejects.toBeInstanceOf(ConnectionError);
    await expect.poll(() => client.state).toBe('open');
    expect(await client.call('history.list', {})).toEqual({ items: [], total: 0 });
    expect(p.connections).toHaveLength(2);
    expect(states).toEqual(['open', 'connecting', 'open']);
  });

  it('delivers events to the listeners of their channel until unsubscribed', async () => {
    const p = await peer(() => {});
    const client = connectWebSocket(p.url, 't');
    open.push({ peer: p, client });
    const progress: number[] = [];
    const changed: unknown[] = [];
    const stop = client.on('job.progress', (e) => progress.push(e.seq));
    client.on('history.changed', (e) => changed.push(e.experimentId));
    await expect.poll(() => p.connections.length).toBe(1);
    await expect.poll(() => client.state).toBe('open');
    const socket = p.connections[0].socket;
    const progressEvent = (seq: number) => encodeWire({ type: 'event', channel: 'job.progress', payload: { jobId: 'j', experimentId: 1, seq, phase: 'x', done: seq, total: 3, etaSeconds: null, message: '' } });
    socket.send(progressEvent(1));
    socket.send(progressEvent(2));
    socket.send(encodeWire({ type: 'event', channel: 'history.changed', payload: { experimentId: null } }));
    await expect.poll(() => changed.length).toBe(1);
    stop();
    socket.send(progressEvent(3));
    socket.send(encodeWire({ type: 'event', channel: 'history.changed', payload: { experimentId: 4 } }));
    await expect.poll(() => changed.length).toBe(2);
    expect(progress).toEqual([1, 2]);
    expect(changed).toEqual([null, 4]);

    // Non-finite numbers survive the text wire where the contract allows them (a diverged metric).
    const results: number[] = [];
    client.on('job.result', (e) => results.push(e.metrics[0].value));
    socket.send(encodeWire({ type: 'event', channel: 'job.result', payload: { jobId: 'j', experimentId: 1, seq: 9, metrics: [{ name: 'perplexity', value: Infinity, unit: '', subject: 'model' }], artefacts: [], details: {} } }));
    await expect.poll(() => results.length).toBe(1);
    expect(results).toEqual([Infinity]);
  });

  it('rejects waiting calls when closed, and every call after', async () => {
    const p = await peer(() => { /* never answers */ });
    const client = connectWebSocket(p.url, 't');
    open.push({ peer: p, client });
    const waiting = client.call('app.info', {});
    await expect.poll(() => p.connections[0]?.calls.length ?? 0).toBe(1);
    client.close();
    await expect(waiting).rejects.toBeInstanceOf(ConnectionError);
    await expect(client.call('app.info', {})).rejects.toBeInstanceOf(ConnectionError);
    expect(client.state).toBe('closed');
  });

  it('derives the socket URL from the page location', () => {
    expect(serveSocketUrl({ protocol: 'http:', host: '127.0.0.1:4321' })).toBe('ws://127.0.0.1:4321/ws');
    expect(serveSocketUrl({ protocol: 'https:', host: 'example.test' })).toBe('wss://example.test/ws');
  });
});
