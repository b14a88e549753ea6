import { describe, expect, it } from 'vitest';
import { calls, type CallName } from '../../../preload/contract.ts';
import { createEventBus } from '../../../main/api/events.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, wireCopy, wireProblem } from '../../../main/api/memory-transport.ts';
import { createRouter, type Handlers } from '../../../main/api/router.ts';
import { ConnectionError, WhittleCallError } from '../../../preload/wire.ts';

function handlers(overrides: Partial<Handlers>): Handlers {
  const all = {} as Record<CallName, unknown>;
  for (const name of Object.keys(calls) as CallName[]) all[name] = async () => { throw new Error(`${name} is not part of this test`); };
  return { ...(all as Handlers), ...overrides };
}

describe('wire copies', () => {
  it('passes plain JSON data unchanged', () => {
    const value = { a: [1, 'x', null, { b: true }], c: { d: -0.5 } };
    expect(wireCopy(value)).toEqual(value);
    expect(wireCopy(value)).not.toBe(value);
  });

  it('carries NaN and ±Infinity (a diverged perplexity is still a result) and typed arrays as arrays', () => {
    const value = { metrics: [{ value: Number.NaN }, { value: Infinity }, { value: -Infinity }], nll: new Float32Array([0.5, 2]) };
    expect(wireProblem(value)).toBeNull();
    expect(wireCopy(value)).toEqual({ metrics: [{ value: Number.NaN }, { value: Infinity }, { value: -Infinity }], nll: [0.5, 2] });
  });

  it('does not mistake ordinary data for a tagged number', () => {
    const value = { $nonFinite: 'NaN', other: 1 };
    expect(wireCopy(value)).toEqual(value);
    expect(wireCopy({ text: 'NaN' })).toEqual({ text: 'NaN' });
  });

  it.each([
    ['a function', { f: () => 1 }, 'message.f is a function'],
    ['a Map', { m: new Map() }, 'message.m is a Map'],
    ['a Date', { d: new Date(0) }, 'message.d is a Date'],
    ['a BigInt', { n: 1n }, 'message.n is a BigInt'],
    ['a BigInt64Array', { t: new BigInt64Array(2) }, 'message.t is a BigInt64Array'],
    ['a hole in an array', { a: [1, undefined] }, 'message.a[1] is undefined'],
  ])('refuses %s', (_what, value, expected) => {
    expect(wireProblem(value, 'message')).toContain(expected);
    expect(() => wireCopy(value)).toThrow(/Not transferable/);
  });
});

describe('in-memory transport', () => {
  it('turns a reply that a real transport could not carry into an INTERNAL error, and records it', async () => {
    const logger = memoryLogger();
    const bus = createEventBus();
    const router = createRouter(handlers({
      'jobs.list': async () => [{ jobId: 'a', experimentId: 1, name: 'x', status: 'running', progress: { jobId: 'a', experimentId: 1, seq: 1, phase: 'p', done: 0, total: 0, etaSeconds: null, message: new Date(0) as unknown as string } }],
    }));
    const client = createMemoryClient(router, bus, { logger });
    const error = await client.call('jobs.list', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WhittleCallError);
    expect(error).toMatchObject({ code: 'INTERNAL', method: 'jobs.list' });
    expect(client.transportErrors).toEqual([expect.stringContaining('progress.message is a Date')]);
    client.close();
  });

  it('hands the handler a copy, not the caller\'s object', async () => {
    const bus = createEventBus();
    let received: unknown;
    const router = createRouter(handlers({
      'recipes.validate': async (params) => { received = params.recipe; return { ok: false, issues: [] }; },
    }));
    const client = createMemoryClient(router, bus);
    const recipe = { model: { path: '/m.onnx' } };
    await client.call('recipes.validate', { recipe });
    expect(received).toEqual(recipe);
    expect(received).not.toBe(recipe);
    client.close();
  });

  it('rejects calls in flight with a ConnectionError when closed, and stops delivering events', async () => {
    const bus = createEventBus();
    let release!: () => void;
    const router = createRouter(handlers({
      'jobs.list': () => new Promise((resolve) => { release = () => resolve([]); }),
    }));
    const client = createMemoryClient(router, bus);
    const events: unknown[] = [];
    client.on('history.changed', (p) => events.push(p));
    const pending = client.call('jobs.list', {});
    await new Promise((r) => setTimeout(r, 0));
    client.close();
    await expect(pending).rejects.toBeInstanceOf(ConnectionError);
    release();
    bus.emit('history.changed', { experimentId: 1 });
    await new Promise((r) => setTimeout(r, 0));
    expect(events).toEqual([]);
    await expect(client.call('jobs.list', {})).rejects.toBeInstanceOf(ConnectionError);
    expect(bus.subscriberCount).toBe(0);
  });
});
