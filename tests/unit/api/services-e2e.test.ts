/**
 * The real services through the in-memory transport: a temporary history, the real engine worker
 * (main/jobs/engine-worker.ts forked by Node), the stories260K fixture.
 */
import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads, JobFinished, RecipeInput } from '../../../preload/contract.ts';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { listSamples } from '../../../main/api/services.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { appRoot } from '../../../main/paths.ts';
import { WhittleCallError } from '../../../preload/wire.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

const quick: RecipeInput = {
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, window: 64, maxSamples: 20 }, footprint: true },
};

/** Still evaluating when the test cancels it (never run to the end). */
const long: RecipeInput = {
  model: { path: STORIES.model },
  tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, window: 256, maxSamples: 1000 } },
};

type JobEvent = { [E in Exclude<EventName, 'history.changed'>]: { channel: E; payload: EventPayloads[E] } }[Exclude<EventName, 'history.changed'>];

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;
const logger = memoryLogger();
const jobEvents: JobEvent[] = [];
const historyChanges: (number | null)[] = [];

function eventsOf(jobId: string): JobEvent[] {
  return jobEvents.filter((e) => e.payload.jobId === jobId);
}

function finishedEvent(jobId: string): Promise<JobFinished> {
  return new Promise((resolve) => {
    const done = eventsOf(jobId).find((e) => e.channel === 'job.finished');
    if (done) return resolve(done.payload as JobFinished);
    const stop = client.on('job.finished', (f) => {
      if (f.jobId === jobId) { stop(); resolve(f); }
    });
  });
}

async function failure(promise: Promise<unknown>): Promise<WhittleCallError> {
  const e = await promise.then(() => { throw new Error('expected the call to fail'); }, (error: unknown) => error);
  expect(e).toBeInstanceOf(WhittleCallError);
  return e as WhittleCallError;
}

beforeAll(() => {
  scratch = tempDir('whittle-services-');
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: WORKER, logger, jobs: { cancelGraceMs: 2000 } });
  client = createMemoryClient(app.router, app.events, { logger });
  for (const channel of ['job.progress', 'job.log', 'job.result', 'job.finished'] as const) {
    client.on(channel, (payload) => jobEvents.push({ channel, payload } as JobEvent));
  }
  client.on('history.changed', (p) => historyChanges.push(p.experimentId));
});

afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

describe('services over the in-memory transport', () => {
  it('app.info describes this Whittle', async () => {
    const info = await client.call('app.info', {});
    const pkg = JSON.parse(readFileSync(path.join(appRoot(), 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
    expect(info).toEqual({
      version: pkg.version,
      transport: 'memory',
      platform: process.platform,
      home: app.home,
      node: process.versions.node,
      onnxruntime: pkg.dependencies['onnxruntime-node'],
      nativeKernels: existsSync(path.join(appRoot(), 'native-kernels', 'build', 'Release', 'whittle_kernels.node')),
    });
  });

  it('lists the bundled sample with files that exist', async () => {
    const samples = await client.call('samples.list', {});
    expect(samples).toHaveLength(1);
    const [sample] = samples;
    expect(sample.id).toBe('stories260K');
    for (const p of [sample.modelPath, sample.tokenizerPath, sample.textPath, sample.calibrationTextPath]) expect(existsSync(p)).toBe(true);
    expect(path.basename(sample.modelPath)).toBe('stories260K-kv.onnx');
  });

  it('starts with an empty history and no recent models', async () => {
    expect(await client.call('history.list', {})).toEqual({ items: [], total: 0 });
    expect(await client.call('models.recent', {})).toEqual([]);
    expect(await client.call('jobs.list', {})).toEqual([]);
  });

  it('inspects a fixture model and remembers it', async () => {
    const inspection = await client.call('models.inspect', { path: STORIES.model });
    expect(inspection.path).toBe(STORIES.model);
    expect(inspection.kind).toBe('decoder-hf-cache');
    expect(inspection.inputs.map((i) => i.name)).toContain('input_ids');
    expect(inspection.outputs.map((o) => o.name)).toContain('logits');
    expect(inspection.bytesOnDisk).toBeGreaterThan(1_000_000);
    const recent = await client.call('models.recent', {});
    expect(recent).toEqual([{ path: STORIES.model, lastOpened: expect.any(String), exists: true }]);
  });

  it('says what is wrong with a model path', async () => {
    const missing = await failure(client.call('models.inspect', { path: path.join(scratch.dir, 'nope.onnx') }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain('nope.onnx');
    const relative = await failure(client.call('models.inspect', { path: 'models/x.onnx' }));
    expect(relative.code).toBe('INVALID_INPUT');
    expect(relative.message).toMatch(/not a full path/);
    const folder = await failure(client.call('models.inspect', { path: scratch.dir }));
    expect(folder.code).toBe('INVALID_INPUT');
    expect(folder.message).toMatch(/is a folder/);
    const notOnnx = await failure(client.call('models.inspect', { path: STORIES.tokenizer }));
    expect(['MODEL_PARSE', 'UNSUPPORTED_MODEL']).toContain(notOnnx.code);
    expect((await client.call('models.recent', {})).map((r) => r.path)).toEqual([STORIES.model]);
  });

  it('has no file dialog outside the desktop app', async () => {
    const picked = await client.call('models.pickFile', { purpose: 'model' });
    expect(picked.path).toBeNull();
    expect(picked.reason).toMatch(/type or paste the full path/);
  });

  it('validates recipes with readable issues', async () => {
    const good = await client.call('recipes.validate', { recipe: quick });
    expect(good.ok).toBe(true);
    if (good.ok) expect(good.recipe.evaluation.perplexity?.protocol).toBe('documents');
    const bad = await client.call('recipes.validate', { recipe: { model: {}, steps: [{ type: 'quantize', method: 'rtn', bits: 3 }], extra: 1 } });
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      const paths = bad.issues.map((i) => i.path);
      expect(paths).toEqual(expect.arrayContaining(['model.path', 'steps[0].bits']));
      expect(bad.issues.every((i) => i.message.length > 0)).toBe(true);
      expect(bad.issues.some((i) => /extra/.test(i.message))).toBe(true);
    }
  });

  it('refuses an invalid recipe without recording anything', async () => {
    const error = await failure(client.call('jobs.start', { recipe: { model: { path: STORIES.model }, evaluation: { perplexity: { text: STORIES.text, window: 4 } } } }));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/evaluation\.perplexity\.window/);
    expect(error.details?.issues).toEqual([expect.objectContaining({ path: 'evaluation.perplexity.window' })]);
    expect((await client.call('history.list', {})).total).toBe(0);
  });

  it('runs an evaluation: progress, result and finished in sequence, then the history has the metrics', async () => {
    const started = await client.call('jobs.start', { recipe: quick, name: 'quick look' });
    expect(started.jobId).toEqual(expect.any(String));
    const listed = await client.call('jobs.list', {});
    expect(listed).toEqual([expect.objectContaining({ jobId: started.jobId, experimentId: started.experimentId, name: 'quick look' })]);

    const finished = await finishedEvent(started.jobId);
    expect(finished).toMatchObject({ status: 'done', error: null, experimentId: started.experimentId });

    const list = eventsOf(started.jobId);
    list.forEach((e, i) => expect(e.payload.seq, `event ${i} (${e.channel})`).toBe(i + 1));
    const channels = list.map((e) => e.channel);
    expect(channels).toContain('job.progress');
    expect(channels.filter((c) => c === 'job.result')).toHaveLength(1);
    expect(channels.at(-1)).toBe('job.finished');
    expect(channels.indexOf('job.result')).toBeLessThan(channels.length - 1);
    expect(channels.indexOf('job.progress')).toBeLessThan(channels.indexOf('job.result'));

    const result = list.find((e) => e.channel === 'job.result')!.payload as EventPayloads['job.result'];
    const ppl = result.metrics.find((m) => m.name === 'perplexity');
    expect(ppl?.value).toBeGreaterThan(1);
    expect(ppl?.value).toBeLessThan(20);

    const detail = await client.call('history.get', { id: started.experimentId });
    expect(detail.status).toBe('done');
    expect(detail.name).toBe('quick look');
    expect(detail.recipe).toEqual(quick);
    expect(detail.metrics.find((m) => m.name === 'perplexity')?.value).toBeCloseTo(ppl!.value, 10);
    expect(detail.metrics.some((m) => m.name === 'bytes_on_disk')).toBe(true);
    expect(historyChanges).toContain(started.experimentId);
    expect(await client.call('jobs.list', {})).toEqual([]);

    const listedAfter = await client.call('history.list', { status: 'done' });
    expect(listedAfter.total).toBe(1);
    expect(listedAfter.items[0].headline.some((m) => m.name === 'perplexity')).toBe(true);
  });

  it('cancels a running job', async () => {
    const started = await client.call('jobs.start', { recipe: long });
    await expect.poll(() => eventsOf(started.jobId).some((e) => e.channel === 'job.progress'), { timeout: 60_000 }).toBe(true);
    expect(await client.call('jobs.cancel', { jobId: started.jobId })).toEqual({ cancelled: true });
    const finished = await finishedEvent(started.jobId);
    expect(finished.status).toBe('cancelled');
    expect(finished.error?.code).toBe('CANCELLED');
    expect(eventsOf(started.jobId).some((e) => e.channel === 'job.result')).toBe(false);
    expect((await client.call('history.get', { id: started.experimentId })).status).toBe('cancelled');
    expect(await client.call('jobs.cancel', { jobId: started.jobId })).toEqual({ cancelled: false });
  });

  it('cancels a job before it starts', async () => {
    const started = await client.call('jobs.start', { recipe: long });
    expect(await client.call('jobs.cancel', { jobId: started.jobId })).toEqual({ cancelled: true });
    const finished = await finishedEvent(started.jobId);
    expect(finished.status).toBe('cancelled');
    expect((await client.call('history.get', { id: started.experimentId })).status).toBe('cancelled');
  });

  it('renames, tags and deletes experiments, announcing each change', async () => {
    const { items } = await client.call('history.list', { status: 'done' });
    const id = items[0].id;
    historyChanges.length = 0;
    const updated = await client.call('history.update', { id, name: 'renamed', tags: ['baseline'], notes: 'first run' });
    expect(updated).toMatchObject({ id, name: 'renamed', tags: ['baseline'], notes: 'first run' });
    expect(await client.call('history.delete', { id })).toEqual({ deleted: true });
    expect((await failure(client.call('history.get', { id }))).code).toBe('NOT_FOUND');
    expect(await client.call('history.delete', { id })).toEqual({ deleted: false });
    await expect.poll(() => historyChanges).toEqual([id, id]);
    expect((await failure(client.call('history.update', { id, name: 'ghost' }))).code).toBe('NOT_FOUND');
  });

  it('sent nothing a real transport could not carry, and logged no internal errors', () => {
    expect(client.transportErrors).toEqual([]);
    expect(logger.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});

describe('the bundled sample', () => {
  it('is offered only when every one of its files is there', async () => {
    const copy = tempDir('whittle-sample-');
    try {
      cpSync(path.join(appRoot(), 'main', 'resources', 'sample'), path.join(copy.dir, 'sample'), { recursive: true });
      expect((await listSamples(copy.dir)).map((s) => s.modelPath)).toEqual([path.join(copy.dir, 'sample', 'stories260K-kv.onnx')]);
      rmSync(path.join(copy.dir, 'sample', 'LICENSE'));
      expect(await listSamples(copy.dir)).toEqual([]);
      expect(await listSamples(path.join(copy.dir, 'nowhere'))).toEqual([]);
    } finally {
      copy.cleanup();
    }
  });
});
