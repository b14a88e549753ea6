/**
 * The evaluation cache and the history links, through the real job service, the real engine process and
 * a real history file: a repeated evaluation is answered without an engine process, a changed setting
 * misses, a compression hangs under the evaluation of its original but measures it again (never its speed
 * from the cache), `cache: false` measures again, and the result's own metrics answer a later evaluation
 * of the output model.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentDetail, JobFinished, Metric, RecipeInput } from '../../preload/contract.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService, sha256File, type EngineHost } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

/** The real host, counting the engine processes it starts. */
class CountingHost implements EngineHost {
  spawned = 0;
  private readonly inner = new ChildProcessHost(WORKER);
  spawn() {
    this.spawned++;
    return this.inner.spawn();
  }
}

const evaluation = {
  perplexity: { text: STORIES.text, window: 128, maxSamples: 100 },
  speed: { promptTokens: 16, decodeTokens: 8, repeats: 1, threads: 1 },
  footprint: true,
};
const evaluate = (over: Partial<RecipeInput> = {}): RecipeInput => ({
  model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, evaluation, ...over,
});

let scratch: ReturnType<typeof tempDir>;
let history: History;
let host: CountingHost;
let jobs: JobService;

async function run(recipe: RecipeInput, name?: string): Promise<{ finished: JobFinished; detail: ExperimentDetail }> {
  const { jobId, experimentId } = await jobs.start(recipe, name);
  const finished = await jobs.whenFinished(jobId);
  return { finished, detail: history.get(experimentId) };
}

const byKey = (metrics: readonly Metric[], subject: string): Record<string, number> =>
  Object.fromEntries(metrics.filter((m) => m.subject === subject).map((m) => [m.name, m.value]));

beforeAll(() => {
  scratch = tempDir('whittle-cache-');
  history = openHistory({ home: scratch.dir });
  host = new CountingHost();
  jobs = new JobService({
    history, host, outputRoot: path.join(scratch.dir, 'outputs'),
    emit: () => {},
  });
});
afterAll(async () => {
  await jobs.shutdown();
  history.close();
  scratch.cleanup();
});

describe('evaluation cache and history links', () => {
  let first: ExperimentDetail;
  let changed: ExperimentDetail;
  let compression: ExperimentDetail;

  it('answers a second identical evaluation from the cache, without an engine process', async () => {
    const a = await run(evaluate(), 'first');
    expect(a.finished.status).toBe('done');
    expect(host.spawned).toBe(1);
    first = a.detail;
    expect(first.details.cached).toBeUndefined();

    const b = await run(evaluate(), 'second');
    expect(b.finished.status).toBe('done');
    expect(host.spawned).toBe(1);
    expect(b.detail.metrics).toEqual(first.metrics);
    expect(b.detail.details.cached).toEqual({ from: first.id, created: expect.any(String) });
    expect(b.detail.log.map((l) => l.text).join('\n')).toMatch(new RegExp(`Answered from the evaluation cache: experiment ${first.id} evaluated this model`));
    expect(b.detail.status).toBe('done');
  });

  it('misses the cache when a setting changes (the window)', async () => {
    const c = await run(evaluate({ evaluation: { ...evaluation, perplexity: { ...evaluation.perplexity, window: 64 } } }), 'window 64');
    expect(c.finished.status).toBe('done');
    expect(host.spawned).toBe(2);
    expect(c.detail.details.cached).toBeUndefined();
    expect(byKey(c.detail.metrics, 'model').perplexity).not.toBe(byKey(first.metrics, 'model').perplexity);
    changed = c.detail;
  });

  it('a compression hangs under the latest evaluation of its original and never takes its speed from the cache', async () => {
    // The cache entry of the original with these settings is overwritten with figures no machine measures:
    // the old code copied the original's speed from here into the comparison.
    const settings = (first.details.evaluationCache as { settings: string }).settings;
    const contentSha = (await sha256File(STORIES.model));
    const planted: Metric[] = [
      { name: 'prefill_ms', value: 987_654, unit: 'ms', subject: 'model' },
      { name: 'prefill_tokens', value: 16, unit: 'tokens', subject: 'model' },
      { name: 'decode_tokens_per_s', value: 0.000123, unit: 'tokens/s', subject: 'model' },
    ];
    history.cachePut(contentSha, settings, planted, first.id);

    const out = path.join(scratch.dir, 'q4');
    const d = await run(evaluate({ steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }], output: { dir: out } }), 'int4');
    expect(d.finished.status, JSON.stringify(d.finished.error)).toBe('done');
    expect(host.spawned).toBe(3);
    compression = d.detail;
    const row = history.db.prepare<{ parent_id: number | null }>('SELECT parent_id FROM experiments WHERE id = ?').get(d.detail.id);
    expect(row?.parent_id).toBe(changed.id); // the latest done evaluation of the same model file

    const original = byKey(d.detail.metrics, 'original');
    const before = byKey(first.metrics, 'model');
    // Speed measured here, beside the result; perplexity from the lockstep pass (the same computation).
    expect(original.prefill_ms).not.toBe(987_654);
    expect(original.decode_tokens_per_s).not.toBe(0.000123);
    expect(original.decode_tokens_per_s).toBeGreaterThan(1);
    expect(original.speed_repeats).toBe(evaluation.speed.repeats);
    expect(original.perplexity).toBe(before.perplexity);
    expect(d.detail.details.cachedOriginal).toBeUndefined();
    expect(d.detail.log.map((l) => l.text).join('\n')).not.toMatch(/evaluation cache/i);
    const speedOrder = ((d.detail.details.evaluation as { original: { speed: { order: string[] } } }).original.speed.order);
    expect(speedOrder).toEqual(['original', 'result']);
    // The fresh figures of the original replace the planted entry.
    expect(history.cacheGet(contentSha, settings)?.metrics.find((m) => m.name === 'prefill_ms')?.value).toBe(original.prefill_ms);

    const sha = await sha256File(STORIES.model);
    expect(d.detail.details.original).toMatchObject({ path: STORIES.model, sha256: sha });
    expect(d.detail.details.result).toMatchObject({ path: path.join(out, 'model.onnx'), sha256: await sha256File(path.join(out, 'model.onnx')) });

    const manifest = await readManifest(out);
    expect(byKey(manifest.metrics as Metric[], 'result')).toEqual(byKey(d.detail.metrics, 'result'));
    expect(byKey(d.detail.metrics, 'result').kl_mean).toBeGreaterThan(0);
    expect(d.detail.artefacts.map((a) => a.kind)).toEqual(['folder', 'model']);
  });

  it("the result's metrics are cached under its own content: evaluating the output model is answered", async () => {
    const e = await run(evaluate({ model: { path: path.join(scratch.dir, 'q4', 'model.onnx') } }), 'the int4 model');
    expect(e.finished.status).toBe('done');
    expect(host.spawned).toBe(3);
    expect(e.detail.details.cached).toMatchObject({ from: compression.id });
    const result = byKey(compression.metrics, 'result');
    delete result.kl_mean;
    delete result.top1_agreement;
    expect(byKey(e.detail.metrics, 'model')).toEqual(result);
  });

  it('an evaluation with cache: false measures again, and its figures refresh the cache', async () => {
    const g = await run(evaluate({ evaluation: { ...evaluation, cache: false } }), 'no cache');
    expect(g.finished.status).toBe('done');
    expect(host.spawned).toBe(4);
    expect(g.detail.details.cached).toBeUndefined();
    expect(g.detail.details.evaluationCache).toMatchObject({ read: false });
    const again = await run(evaluate(), 'after no cache');
    expect(host.spawned).toBe(4);
    expect(again.detail.details.cached).toMatchObject({ from: g.detail.id });
  });

  it('an evaluation that asks for generations always runs (they are not cached)', async () => {
    const f = await run(evaluate({ evaluation: { ...evaluation, samples: { prompts: ['Once upon a time'], maxNewTokens: 4 } } }), 'with samples');
    expect(f.finished.status).toBe('done');
    expect(host.spawned).toBe(5);
    expect(f.detail.details.cached).toBeUndefined();
  });
});
