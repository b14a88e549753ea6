import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calls, type CallName, type EventMessage, type ReplyMessage } from '../../../preload/contract.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { createEventBus } from '../../../main/api/events.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createRouter, type Handlers, type SenderInfo } from '../../../main/api/router.ts';
import { createMemoryClient } from '../../../main/api/memory-transport.ts';
import { callPaths } from '../../../main/api/call-paths.ts';
import { createWorkspace, type Workspace } from '../../../main/api/workspace.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const memory: SenderInfo = { transport: 'memory' };

/** Handlers for the router under test: every call answers with its own name and parameters. */
function echoHandlers(overrides: Partial<Handlers> = {}): Handlers {
  const handlers = {} as Record<CallName, unknown>;
  for (const name of Object.keys(calls) as CallName[]) {
    handlers[name] = async (params: unknown) => ({ method: name, params });
  }
  return { ...(handlers as Handlers), ...overrides };
}

function errorOf(reply: ReplyMessage) {
  expect(reply.ok).toBe(false);
  if (reply.ok) throw new Error('expected a failure');
  return reply.error;
}

describe('router: messages it refuses', () => {
  const router = createRouter(echoHandlers());

  it.each([
    ['a string', 'hello'],
    ['null', null],
    ['an array', [1, 2]],
    ['a number', 42],
  ])('refuses %s as a message', async (_what, raw) => {
    const reply = await router.dispatch(raw, memory);
    expect(reply.id).toBe(-1);
    expect(errorOf(reply).code).toBe('INVALID_INPUT');
    expect(errorOf(reply).message).toMatch(/^Malformed call message/);
  });

  it('refuses a message of the wrong type, keeping its id', async () => {
    const reply = await router.dispatch({ type: 'event', id: 7, method: 'app.info', params: {} }, memory);
    expect(reply.id).toBe(7);
    expect(errorOf(reply)).toMatchObject({ code: 'INVALID_INPUT' });
  });

  it.each([[-1], [1.5], ['3'], [undefined]])('refuses id %s', async (id) => {
    const reply = await router.dispatch({ type: 'call', id, method: 'app.info', params: {} }, memory);
    expect(reply.id).toBe(-1);
    expect(errorOf(reply).code).toBe('INVALID_INPUT');
    expect(errorOf(reply).details?.issues).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'id' })]));
  });

  it('refuses extra keys on the envelope', async () => {
    const reply = await router.dispatch({ type: 'call', id: 1, method: 'app.info', params: {}, admin: true }, memory);
    expect(errorOf(reply).code).toBe('INVALID_INPUT');
  });

  it('names an unknown method', async () => {
    const reply = await router.dispatch({ type: 'call', id: 3, method: 'fs.readFile', params: {} }, memory);
    expect(reply.id).toBe(3);
    expect(errorOf(reply)).toEqual({ code: 'INVALID_INPUT', message: 'Unknown method "fs.readFile"' });
  });

  it('does not treat Object.prototype names as methods', async () => {
    const reply = await router.dispatch({ type: 'call', id: 4, method: 'constructor', params: {} }, memory);
    expect(errorOf(reply).message).toBe('Unknown method "constructor"');
  });

  it('rejects unknown parameter keys', async () => {
    const reply = await router.dispatch({ type: 'call', id: 5, method: 'history.get', params: { id: 1, sql: 'DROP TABLE' } }, memory);
    const error = errorOf(reply);
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/^Invalid parameters for "history.get": /);
    expect(error.message).toContain('sql');
  });

  it('rejects parameters of the wrong type, with the path of each issue', async () => {
    const reply = await router.dispatch({ type: 'call', id: 6, method: 'history.list', params: { limit: 'ten', order: 'sideways' } }, memory);
    const error = errorOf(reply);
    const paths = (error.details?.issues as { path: string }[]).map((i) => i.path).sort();
    expect(paths).toEqual(['limit', 'order']);
  });

  it('passes parsed parameters with defaults to the handler', async () => {
    const reply = await router.dispatch({ type: 'call', id: 8, method: 'history.list', params: { search: 'int4' } }, memory);
    expect(reply).toEqual({
      type: 'reply', id: 8, ok: true,
      value: { method: 'history.list', params: { search: 'int4', sort: 'created', order: 'desc', limit: 100, offset: 0 } },
    });
  });
});

describe('router: errors from handlers', () => {
  it('keeps code, message and details of a WhittleError', async () => {
    const router = createRouter(echoHandlers({
      'history.get': async ({ id }) => { throw new WhittleError('NOT_FOUND', `There is no experiment ${id}.`, { id }); },
    }));
    const reply = await router.dispatch({ type: 'call', id: 1, method: 'history.get', params: { id: 9 } }, memory);
    expect(errorOf(reply)).toEqual({ code: 'NOT_FOUND', message: 'There is no experiment 9.', details: { id: 9 } });
  });

  it('turns a plain Error into INTERNAL without its stack, and logs the stack', async () => {
    const logger = memoryLogger();
    const bug = new Error('cannot read properties of undefined');
    const router = createRouter(echoHandlers({ 'app.info': async () => { throw bug; } }), { logger });
    const reply = await router.dispatch({ type: 'call', id: 2, method: 'app.info', params: {} }, memory);
    const error = errorOf(reply);
    expect(error).toEqual({ code: 'INTERNAL', message: 'cannot read properties of undefined' });
    expect(JSON.stringify(reply)).not.toContain('at ');
    expect(logger.entries).toEqual([expect.objectContaining({ level: 'error', error: bug })]);
    expect(String((logger.entries[0].error as Error).stack)).toContain('router.test.ts');
  });
});

describe('router: senders', () => {
  it('refuses serve-mode calls from a connection that is not authenticated', async () => {
    const router = createRouter(echoHandlers());
    const reply = await router.dispatch({ type: 'call', id: 1, method: 'app.info', params: {} }, { transport: 'serve' });
    expect(errorOf(reply).code).toBe('UNAUTHORIZED');
    const ok = await router.dispatch({ type: 'call', id: 2, method: 'app.info', params: {} }, { transport: 'serve', authenticated: true });
    expect(ok.ok).toBe(true);
  });

  it('refuses Electron calls unless a check accepts the frame', async () => {
    const open = createRouter(echoHandlers());
    expect(errorOf(await open.dispatch({ type: 'call', id: 1, method: 'app.info', params: {} }, { transport: 'electron', isMainFrame: true, frameUrl: 'whittle://app/index.html' })).code).toBe('UNAUTHORIZED');

    const checked = createRouter(echoHandlers(), {
      checkSender: (s) => s.transport === 'electron' && s.isMainFrame === true && s.frameUrl?.startsWith('whittle://app/') === true,
    });
    const good = await checked.dispatch({ type: 'call', id: 2, method: 'app.info', params: {} }, { transport: 'electron', isMainFrame: true, frameUrl: 'whittle://app/index.html' });
    expect(good.ok).toBe(true);
    const iframe = await checked.dispatch({ type: 'call', id: 3, method: 'app.info', params: {} }, { transport: 'electron', isMainFrame: false, frameUrl: 'whittle://app/index.html' });
    expect(errorOf(iframe).code).toBe('UNAUTHORIZED');
    const foreign = await checked.dispatch({ type: 'call', id: 4, method: 'app.info', params: {} }, { transport: 'electron', isMainFrame: true, frameUrl: 'https://evil.example/' });
    expect(errorOf(foreign).code).toBe('UNAUTHORIZED');
  });

  it('checks the sender before it looks at the method', async () => {
    const router = createRouter(echoHandlers());
    const reply = await router.dispatch({ type: 'call', id: 1, method: 'no.such', params: {} }, { transport: 'serve' });
    expect(errorOf(reply).code).toBe('UNAUTHORIZED');
  });
});

describe('events', () => {
  it('delivers events emitted during a call before its reply, in emit order', async () => {
    const bus = createEventBus();
    const router = createRouter(echoHandlers({
      'jobs.cancel': async ({ jobId }) => {
        for (let seq = 1; seq <= 50; seq++) {
          bus.emit('job.progress', { jobId, experimentId: 1, seq, phase: 'evaluate', done: seq, total: 50, etaSeconds: null, message: '' });
          if (seq % 10 === 0) await new Promise((r) => setTimeout(r, 1));
        }
        bus.emit('job.finished', { jobId, experimentId: 1, seq: 51, status: 'cancelled', error: null });
        return { cancelled: true };
      },
    }));
    const client = createMemoryClient(router, bus);
    const seen: string[] = [];
    client.on('job.progress', (p) => seen.push(`progress ${p.seq}`));
    client.on('job.finished', (p) => seen.push(`finished ${p.seq}`));
    const result = await client.call('jobs.cancel', { jobId: 'j1' }).then((r) => { seen.push('reply'); return r; });
    expect(result).toEqual({ cancelled: true });
    expect(seen).toEqual([...Array.from({ length: 50 }, (_, i) => `progress ${i + 1}`), 'finished 51', 'reply']);
    expect(client.transportErrors).toEqual([]);
    client.close();
  });

  it('gives every subscriber every event, and keeps going when one subscriber throws', () => {
    const logger = memoryLogger();
    const bus = createEventBus({ logger });
    const a: EventMessage[] = [];
    const b: EventMessage[] = [];
    bus.subscribe((m) => a.push(m));
    bus.subscribe(() => { throw new Error('socket gone'); });
    const stop = bus.subscribe((m) => b.push(m));
    bus.emit('history.changed', { experimentId: 1 });
    stop();
    bus.emit('history.changed', { experimentId: 2 });
    expect(a.map((m) => m.payload)).toEqual([{ experimentId: 1 }, { experimentId: 2 }]);
    expect(b.map((m) => m.payload)).toEqual([{ experimentId: 1 }]);
    expect(logger.entries.filter((e) => e.level === 'error')).toHaveLength(2);
  });
});

describe('router: paths a call names, from the contract', () => {
  it('finds every path of a recipe, nested ones included, and none in other fields', () => {
    const found = callPaths('jobs.start', {
      name: '/not/a/path/but/a/name',
      recipe: {
        model: { path: '/m/model.onnx' },
        tokenizer: { path: '/m/tokenizer.json' },
        steps: [
          { type: 'quantize', method: 'gptq', calibration: { text: '/t/calib.txt' }, keep: ['/regex/'] },
          { type: 'sensitivity', quantize: { type: 'quantize', method: 'rtn' }, calibration: { text: '/t/sens.txt' } },
        ],
        evaluation: { perplexity: { text: '/t/eval.txt' }, samples: { prompts: ['/a prompt/'] } },
        output: { dir: '/o' },
      },
    });
    expect(found).toEqual([
      { field: 'recipe.model.path', value: '/m/model.onnx' },
      { field: 'recipe.tokenizer.path', value: '/m/tokenizer.json' },
      { field: 'recipe.steps[0].calibration.text', value: '/t/calib.txt' },
      { field: 'recipe.steps[1].calibration.text', value: '/t/sens.txt' },
      { field: 'recipe.evaluation.perplexity.text', value: '/t/eval.txt' },
      { field: 'recipe.output.dir', value: '/o' },
    ]);
  });

  it('finds the path of models.inspect, quantize.plan and files.reveal; none in a recipe that does not parse', () => {
    expect(callPaths('models.inspect', { path: '/a.onnx' })).toEqual([{ field: 'path', value: '/a.onnx' }]);
    expect(callPaths('quantize.plan', { path: '/b.onnx', step: { type: 'quantize', method: 'fp16' } })).toEqual([{ field: 'path', value: '/b.onnx' }]);
    expect(callPaths('files.reveal', { path: '/c' })).toEqual([{ field: 'path', value: '/c' }]);
    expect(callPaths('jobs.start', { recipe: { model: { path: '/m.onnx' }, unknown: 1 } })).toEqual([]);
    expect(callPaths('history.list', { search: '/etc/passwd' })).toEqual([]);
  });
});

describe('router: a sender with a workspace', () => {
  const scratch = tempDir('whittle-router-ws-');
  afterAll(() => scratch.cleanup());
  const inside = path.join(scratch.dir, 'inside');
  const outside = path.join(scratch.dir, 'outside');
  mkdirSync(inside);
  mkdirSync(outside);
  writeFileSync(path.join(inside, 'model.onnx'), 'x');
  writeFileSync(path.join(outside, 'secret.txt'), 'x');
  symlinkSync(path.join(outside, 'secret.txt'), path.join(inside, 'link.txt'));
  symlinkSync(outside, path.join(inside, 'out-link'));
  symlinkSync(path.join(outside, 'not-yet'), path.join(inside, 'dangling'));

  const ran: string[] = [];
  const router = createRouter(echoHandlers({
    'models.inspect': async ({ path: p }) => { ran.push(p); throw new WhittleError('MODEL_PARSE', 'not a model'); },
  }));
  let workspace: Workspace;
  let serve: SenderInfo;
  beforeAll(async () => {
    workspace = await createWorkspace([inside]);
    serve = { transport: 'serve', authenticated: true, workspace };
  });

  const inspect = (p: string, sender: SenderInfo = serve) => router.dispatch({ type: 'call', id: 1, method: 'models.inspect', params: { path: p } }, sender);

  it('runs calls whose paths are inside, existing or not yet', async () => {
    expect(errorOf(await inspect(path.join(inside, 'model.onnx'))).code).toBe('MODEL_PARSE');
    const start = await router.dispatch({ type: 'call', id: 2, method: 'jobs.start', params: { recipe: { model: { path: path.join(inside, 'model.onnx') }, output: { dir: path.join(inside, 'new', 'deeper') } } } }, serve);
    expect(start.ok).toBe(true);
  });

  it.each([
    ['a file outside', () => path.join(outside, 'secret.txt'), false],
    ['a path that climbs out', () => path.join(inside, '..', 'outside', 'secret.txt'), false],
    ['a symlink to a file outside', () => path.join(inside, 'link.txt'), true],
    ['a missing file under a symlinked folder', () => path.join(inside, 'out-link', 'new', 'file.onnx'), true],
    ['a dangling symlink whose target is outside', () => path.join(inside, 'dangling'), true],
    ['a missing file outside (no existence oracle)', () => path.join(outside, 'nothing-here'), false],
  ])('refuses %s with INVALID_INPUT naming the path and the roots', async (_what, p, viaLink) => {
    const before = ran.length;
    const error = errorOf(await inspect(p()));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toContain(p());
    expect(error.message).toContain(workspace.roots[0]);
    expect(error.message.includes('resolves to')).toBe(viaLink);
    expect(error.details).toMatchObject({ path: p(), roots: workspace.roots });
    expect(ran.length).toBe(before);
  });

  it('refuses a recipe with one path outside, naming its field, before the job service sees it', async () => {
    let started = 0;
    const guarded = createRouter(echoHandlers({ 'jobs.start': async () => { started++; return { jobId: 'j', experimentId: 1 }; } }));
    const recipe = {
      model: { path: path.join(inside, 'model.onnx') },
      steps: [{ type: 'quantize', method: 'int8-static', calibration: { text: path.join(inside, 'link.txt') } }],
    };
    const error = errorOf(await guarded.dispatch({ type: 'call', id: 3, method: 'jobs.start', params: { recipe } }, serve));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/^recipe\.steps\[0\]\.calibration\.text: /);
    expect(started).toBe(0);
    const outputOutside = { model: { path: path.join(inside, 'model.onnx') }, output: { dir: path.join(outside, 'results') } };
    expect(errorOf(await guarded.dispatch({ type: 'call', id: 4, method: 'jobs.start', params: { recipe: outputOutside } }, serve)).message).toMatch(/^recipe\.output\.dir: /);
    expect(started).toBe(0);
  });

  it('leaves the desktop and the CLI (no workspace) free to name any path', async () => {
    expect(errorOf(await inspect(path.join(outside, 'secret.txt'), memory)).code).toBe('MODEL_PARSE');
  });

  it('refuses a root that is not an existing folder', async () => {
    await expect(createWorkspace([path.join(scratch.dir, 'missing')])).rejects.toThrow(/does not exist/);
    await expect(createWorkspace([path.join(inside, 'model.onnx')])).rejects.toThrow(/is a file/);
  });
});
