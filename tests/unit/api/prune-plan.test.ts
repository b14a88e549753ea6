/**
 * `prune.plan` on the stories260K sample: the eligible weights and their uniform sparsity, N:M checked
 * against every K, structured counts equal to what planStructured removes with any importance, typed
 * errors for bad input — directly, and once through the router and the inspection worker.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { planPruneAt } from '../../../main/api/prune-plan.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { toNumber } from '../../../main/engine/onnx/graph.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { planStructured } from '../../../main/engine/prune/structured-plan.ts';
import { mapArchitecture } from '../../../main/engine/rewrite/architecture.ts';
import { appRoot } from '../../../main/paths.ts';
import { PruneStep } from '../../../preload/recipe.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const step = (s: Record<string, unknown>): PruneStep => PruneStep.parse({ type: 'prune', ...s });

describe('prune.plan, unstructured', () => {
  it('lists every eligible weight at the uniform sparsity and leaves the tied embedding out', async () => {
    const plan = await planPruneAt(STORIES.model, step({ method: 'magnitude', sparsity: 0.5 }));
    const inspection = await inspectModel(STORIES.model);
    const map = mapArchitecture(await readModel(STORIES.model));
    expect(map.tiedEmbedding).toBe(true);
    // Every MatMul weight the inspection finds eligible is listed, once, at 0.5; the embedding is not.
    const eligible = new Set(inspection.quantizable.filter((w) => !w.skipReason && w.op !== 'Gather').map((w) => w.name));
    expect(new Set(plan.weights.map((w) => w.name))).toEqual(eligible);
    expect(plan.weights.length).toBe(map.blocks.length * 7);
    for (const w of plan.weights) expect(w.sparsity).toBe(0.5);
    expect(plan.weights.some((w) => w.name === map.embedding)).toBe(false);
    expect(plan.skipped.some((s) => s.name === map.embedding)).toBe(true);
    // One table row per block, its parameters the sum of its weights'; half of them zeroed, the file unchanged.
    expect(plan.blocks.map((b) => b.block)).toEqual(map.blocks.map((b) => b.index));
    const total = plan.weights.reduce((a, w) => a + w.params, 0);
    expect(plan.blocks.reduce((a, b) => a + b.params, 0)).toBe(total);
    expect(plan.parametersZeroed).toBe(Math.round(total * 0.5));
    expect(plan.bytesAfter).toBe(plan.bytesBefore);
    expect(plan.note).toMatch(/zeros take as many bytes/);
  });

  it('keeps weights matching a keep pattern out and names OWL sparsities as set by calibration', async () => {
    const plan = await planPruneAt(STORIES.model, step({ method: 'wanda', sparsity: 0.6, allocation: 'owl', keep: ['layers\\.0\\.'], calibration: { text: STORIES.text, samples: 4, length: 32 } }));
    expect(plan.weights.some((w) => /layers\.0\./.test(w.name))).toBe(false);
    expect(plan.weights.length).toBeGreaterThan(0);
    for (const b of plan.blocks.filter((x) => x.block !== null)) {
      expect(b.sparsity).toBeNull();
      expect(b.note).toBe('set by the activation outliers on the calibration text, mean = 60 %');
    }
  });

  it('checks N:M against every K: 2:4 fits the sample, an M that does not divide K lists the weights', async () => {
    const ok = await planPruneAt(STORIES.model, step({ method: 'magnitude', pattern: '2:4' }));
    expect(ok.nm).toEqual({ pattern: '2:4', ok: true, failing: [] });
    expect(ok.sparsity).toBe(0.5);
    const ks = [...new Set(ok.weights.map((w) => w.k))];
    // An M dividing some K but not all: the weights whose K it does not divide, and only those.
    const m = [3, 5, 6, 7, 8, 16, 32].find((x) => ks.some((k) => k % x !== 0) && ks.some((k) => k % x === 0))!;
    expect(m).toBeDefined();
    const bad = await planPruneAt(STORIES.model, step({ method: 'magnitude', pattern: `1:${m}` }));
    expect(bad.nm!.ok).toBe(false);
    expect(bad.nm!.failing.map((f) => f.name).sort()).toEqual(ok.weights.filter((w) => w.k % m !== 0).map((w) => w.name).sort());
  });

  it('estimates SparseGPT with 4-bit quantization as MatMulNBits, smaller than the float file', async () => {
    const plan = await planPruneAt(STORIES.model, step({ method: 'sparsegpt', sparsity: 0.5, calibration: { text: STORIES.text, samples: 4, length: 32 }, quantize: { bits: 4, blockSize: 32 } }));
    expect(plan.bytesAfter).toBeLessThan(plan.bytesBefore);
    expect(plan.note).toMatch(/4-bit MatMulNBits/);
  });
});

describe('prune.plan, structured', () => {
  it('removes as many parameters as planStructured does with any importance (neurons 25 %)', async () => {
    const s = step({ method: 'structured', target: 'neurons', ratio: 0.25 });
    const plan = await planPruneAt(STORIES.model, s);
    const model = await readModel(STORIES.model);
    const map = mapArchitecture(model);
    const shapeOf = (name: string): number[] | null => model.proto.graph!.initializer.find((t) => t.name === name)?.dims.map((d) => toNumber(d)) ?? null;
    // Arbitrary importance scores: which neurons go changes, the count and the parameters do not.
    let seed = 7;
    const scores = map.blocks.map((b) => Array.from({ length: b.mlp.intermediate! }, () => (seed = (seed * 16807) % 2147483647) / 2147483647));
    const engine = planStructured(map, { target: 'neurons', ratio: 0.25 }, scores, shapeOf);
    expect(plan.parametersRemoved).toBe(engine.removedParameters);
    expect(plan.parametersRemoved).toBeGreaterThan(0);
    expect(plan.structured!.perBlock).toBe(Math.round(0.25 * map.blocks[0].mlp.intermediate!));
    for (const b of plan.blocks) {
      expect(b.intermediate).toBe(map.blocks[b.block!].mlp.intermediate);
      expect(b.removed).toBe(plan.structured!.perBlock);
    }
    expect(plan.bytesAfter).toBeLessThan(plan.bytesBefore);
  });

  it('answers a ratio that removes nothing or a count that removes all heads with the engine\'s typed error', async () => {
    const none = await planPruneAt(STORIES.model, step({ method: 'structured', target: 'layers', ratio: 0.01 })).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(WhittleError);
    expect(none).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/removes none/) });
    const map = mapArchitecture(await readModel(STORIES.model));
    const all = await planPruneAt(STORIES.model, step({ method: 'structured', target: 'heads', count: map.blocks[0].attention.heads! })).catch((e: unknown) => e);
    expect(all).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/would remove all/) });
  });
});

describe('prune.plan through the router', () => {
  let scratch: ReturnType<typeof tempDir>;
  let app: WhittleApp;
  let client: MemoryClient;
  beforeAll(() => {
    scratch = tempDir('whittle-prune-plan-');
    const logger = memoryLogger();
    app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts'), logger });
    client = createMemoryClient(app.router, app.events, { logger });
  });
  afterAll(async () => {
    client?.close();
    await app?.close();
    scratch?.cleanup();
  });

  it('gives the worker\'s plan, the same as planning here, and rejects a ratio of 1 by schema', async () => {
    const s = { type: 'prune' as const, method: 'structured' as const, target: 'heads' as const, ratio: 0.5 };
    expect(await client.call('prune.plan', { path: STORIES.model, step: s })).toEqual(await planPruneAt(STORIES.model, step(s)));
    const e = await client.call('prune.plan', { path: STORIES.model, step: { ...s, ratio: 1 } }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'INVALID_INPUT' });
  });
});
