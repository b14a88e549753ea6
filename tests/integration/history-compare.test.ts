/**
 * history.compare and history.pareto through the real app (in-memory transport, real engine worker):
 * RTN 4-bit and a magnitude prune of the sample, an RTN 8-bit of the pruned output (lineage), and one run
 * evaluated on a shorter window; then the calls' answers and their refusals.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import { bestUnderBudget, chartObjectives, paretoFront } from '../../preload/pareto.ts';
import { WhittleCallError } from '../../preload/wire.ts';
import { createWhittleApp, type WhittleApp } from '../../main/app.ts';
import { createMemoryClient, type MemoryClient } from '../../main/api/memory-transport.ts';
import { sha256File } from '../../main/jobs/model-file.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;

function recipe(model: string, steps: unknown[], window = 64): RecipeInput {
  return {
    model: { path: model }, tokenizer: { path: STORIES.tokenizer }, steps: steps as RecipeInput['steps'],
    evaluation: { perplexity: { text: STORIES.text, window, maxSamples: 8 }, footprint: true, samples: { prompts: ['Once upon a time'], maxNewTokens: 8 } },
  };
}

async function run(r: RecipeInput): Promise<number> {
  const { jobId, experimentId } = await client.call('jobs.start', { recipe: r });
  const finished = await app.jobs.whenFinished(jobId);
  expect(finished.status, JSON.stringify(finished.error)).toBe('done');
  return experimentId;
}

async function failure(promise: Promise<unknown>): Promise<WhittleCallError> {
  const e = await promise.then(() => { throw new Error('expected the call to fail'); }, (error: unknown) => error);
  expect(e).toBeInstanceOf(WhittleCallError);
  return e as WhittleCallError;
}

let rtn4: number;
let pruned: number;
let child: number;
let shortWindow: number;

beforeAll(async () => {
  scratch = tempDir('whittle-compare-api-');
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: WORKER });
  client = createMemoryClient(app.router, app.events);
  rtn4 = await run(recipe(STORIES.model, [{ type: 'quantize', method: 'rtn', bits: 4 }]));
  pruned = await run(recipe(STORIES.model, [{ type: 'prune', method: 'magnitude', sparsity: 0.5 }]));
  const prunedModel = app.history.get(pruned).artefacts.find((a) => a.kind === 'model')!.path;
  child = await run(recipe(prunedModel, [{ type: 'quantize', method: 'rtn', bits: 8 }]));
  shortWindow = await run(recipe(STORIES.model, [{ type: 'quantize', method: 'rtn', bits: 8 }], 32));
}, 240_000);

afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

describe('history.compare', () => {
  it('answers the runs side by side, with the baseline asked for, and says which were measured differently', async () => {
    const c = await client.call('history.compare', { ids: [rtn4, pruned, shortWindow], baseline: pruned });
    expect(c.baseline).toBe(pruned);
    expect(c.experiments.map((e) => e.method)).toEqual(['RTN 4-bit g32', 'Magnitude 50%', 'RTN 8-bit g32']);
    const ppl = c.metrics.find((m) => m.name === 'perplexity')!;
    const [a, base, short] = ppl.cells;
    // A 50 % magnitude prune of this tiny model is far worse than 4-bit RTN.
    expect(base.value!).toBeGreaterThan(a.value!);
    expect(a).toMatchObject({ verdict: 'better', comparable: true });
    expect(short).toMatchObject({ comparable: false, reasons: ['protocol'] });
    expect(c.notes.find((n) => n.aspect === 'protocol')?.groups.map((g) => g.ids)).toEqual([[rtn4, pruned], [shortWindow]]);
    const size = c.metrics.find((m) => m.name === 'bytes_on_disk')!;
    expect(size.cells[0].verdict).toBe('better');
    expect(c.generations).toHaveLength(1);
    expect(c.generations[0].texts.every((t) => typeof t === 'string' && t.length > 0)).toBe(true);
    expect(c.series.find((s) => s.kind === 'quantization-error')?.ids).toEqual([rtn4, shortWindow]);
    expect(c.series.find((s) => s.kind === 'sparsity')?.ids).toEqual([pruned]);
    expect(c.recipeDiff.map((d) => d.path)).toEqual(expect.arrayContaining(['steps[0].method', 'evaluation.perplexity.window']));
  });

  it('refuses a comparison of one run, of more than eight, and a baseline outside it', async () => {
    expect((await failure(client.call('history.compare', { ids: [rtn4] }))).code).toBe('INVALID_INPUT');
    expect((await failure(client.call('history.compare', { ids: [1, 2, 3, 4, 5, 6, 7, 8, 9] }))).code).toBe('INVALID_INPUT');
    const outside = await failure(client.call('history.compare', { ids: [rtn4, pruned], baseline: child }));
    expect(outside.code).toBe('INVALID_INPUT');
    expect(outside.message).toContain('baseline');
    expect((await failure(client.call('history.compare', { ids: [rtn4, 9999] }))).code).toBe('NOT_FOUND');
  });
});

describe('history.pareto', () => {
  it('gathers every run of the sample, the quantized prune through its lineage, by the sample\'s path or sha256', async () => {
    const byPath = await client.call('history.pareto', { path: STORIES.model });
    const sha = await sha256File(STORIES.model);
    expect(byPath.model.sha256).toBe(sha);
    const ids = byPath.points.filter((p) => !p.original).map((p) => p.id).sort((x, y) => x - y);
    expect(ids).toEqual([rtn4, pruned, child, shortWindow].sort((x, y) => x - y));
    expect(byPath.points.find((p) => p.id === child && !p.original)).toMatchObject({ depth: 2, kl: null, method: 'RTN 8-bit g32' });
    expect(byPath.points.filter((p) => p.original)).toHaveLength(1);
    expect(byPath.evaluations).toHaveLength(2);

    // From the derived model's sha256, the same original and points.
    const childModel = app.history.get(pruned).artefacts.find((a) => a.kind === 'model')!.path;
    const fromChild = await client.call('history.pareto', { sha256: await sha256File(childModel) });
    expect(fromChild.model.sha256).toBe(sha);
    expect(fromChild.points.map((p) => p.id)).toEqual(byPath.points.map((p) => p.id));

    // The front on the main evaluation, and the best under a size budget: 4-bit RTN is the smallest.
    const main = byPath.points.filter((p) => p.evaluation === byPath.evaluations[0].key);
    const front = paretoFront(main, chartObjectives('bytes', 'perplexity'));
    expect(front.map((p) => p.id)).toContain(rtn4);
    const rtnBytes = main.find((p) => p.id === rtn4)!.bytes!;
    expect(bestUnderBudget(main, { maxBytes: rtnBytes }, 'perplexity')?.id).toBe(rtn4);
  });

  it('refuses both or neither of sha256 and path, and a model no run used', async () => {
    expect((await failure(client.call('history.pareto', {}))).code).toBe('INVALID_INPUT');
    expect((await failure(client.call('history.pareto', { sha256: 'ab'.repeat(32), path: STORIES.model }))).code).toBe('INVALID_INPUT');
    expect((await failure(client.call('history.pareto', { sha256: 'ab'.repeat(32) }))).code).toBe('NOT_FOUND');
    expect((await failure(client.call('history.pareto', { sha256: 'not-hex' }))).code).toBe('INVALID_INPUT');
  });
});
