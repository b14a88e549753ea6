/**
 * The evaluation cache and the history links, through the real job service, the real engine process and
 * a real history file: a repeated evaluation is answered without an engine process, a changed setting
 * misses, a compression hangs under the evaluation of its original and reuses its cached speed, and the
 * result's own metrics answer a later evaluation of the output model.
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

  it('a compression hangs under the latest evaluation of its original and reuses its cached speed', async () => {
    const out = path.join(scratch.dir, 'q4');
    const d = await run(evaluate({ steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }], output: { dir: out } }), 'int4');
    expect(d.finished.status, JSON.stringify(d.finished.error)).toBe('done');
    expect(host.spawned).toBe(3);
    compression = d.detail;
    const row = history.db.prepare<{ parent_id: number | null }>('SELECT parent_id FROM experiments WHERE id = ?').get(d.detail.id);
    expect(row?.parent_id).toBe(changed.id); // the latest done evaluation of the same model file

    const original = byKey(d.detail.metrics, 'original');
    const before = byKey(first.metrics, 'model');
    // Speed from the cache (the same numbers), perplexity from the lockstep pass (the same computation).
    expect(original.prefill_ms).toBe(before.prefill_ms);
    expect(original.decode_tokens_per_s).toBe(before.decode_tokens_per_s);
    expect(original.perplexity).toBe(before.perplexity);
    expect(d.detail.details.cachedOriginal).toMatchObject({ from: first.id, used: ['prefill_ms', 'prefill_tokens', 'decode_tokens_per_s'] });
    expect(String((d.detail.details.cachedOriginal as { note: string }).note)).toContain("the lockstep pass needs the original's logits");

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

  it('an evaluation that asks for generations always runs (they are not cached)', async () => {
    const f = await run(evaluate({ evaluation: { ...evaluation, samples: { prompts: ['Once upon a time'], maxNewTokens: 4 } } }), 'with samples');
    expect(f.finished.status).toBe('done');
    expect(host.spawned).toBe(4);
    expect(f.detail.details.cached).toBeUndefined();
  });
});
