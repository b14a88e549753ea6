/**
 * The shared weight loop with the outcomes pruning needs: new bytes for the same node ('replace-bytes')
 * and a weight left alone with its reason ('skip'), written through the shared output-folder lifecycle
 * and loaded back by onnxruntime.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { planTargets } from '../../main/engine/quantize/targets.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { WeightReader } from '../../main/engine/rewrite/weight-reader.ts';
import { transformWeights, type WeightEdit } from '../../main/engine/rewrite/weight-loop.ts';
import { writeOutputFolder } from '../../main/engine/rewrite/write-folder.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-weight-loop-'); });
afterAll(() => tmp.cleanup());

async function floats(modelPath: string, name: string): Promise<Float32Array> {
  const model = await readModel(modelPath);
  const t = initializerMap(model.proto.graph!).get(name)!;
  const reader = new WeightReader();
  try {
    const bytes = await reader.read(t);
    return new Float32Array(bytes.slice().buffer);
  } finally {
    await reader.close();
  }
}

it('replace-bytes rewrites a weight in place, skip leaves it with its reason; the node count is unchanged and the model runs', async () => {
  const model = await readModel(STORIES.model);
  const graph = model.proto.graph!;
  const nodesBefore = graph.node.length;
  const targets = planTargets(graph, { blockSize: 32, keep: [] }).targets;
  expect(targets.length).toBeGreaterThan(2);
  const [zeroed, skipped] = [targets[0].weight, targets[1].weight];

  const out = path.join(tmp.dir, 'pruned');
  const written = await writeOutputFolder(model, out, quietContext(tmp.dir), {
    step: { type: 'test' },
    options: {},
    rewrite: (_, io) => transformWeights(graph, targets.slice(0, 2), io, quietContext(tmp.dir), {
      phase: 'prune',
      decode: (bytes) => new Float32Array(bytes.slice().buffer),
      async transform(t, w): Promise<WeightEdit> {
        if (t.weight === skipped) return { kind: 'skip', reason: 'kept for the test' };
        // Magnitude pruning at 50 %: the smaller half of |w| becomes 0.
        const threshold = Float32Array.from(w, Math.abs).sort()[Math.floor(w.length / 2)];
        const pruned = w.map((x) => (Math.abs(x) < threshold ? 0 : x));
        return { kind: 'replace-bytes', data: new Uint8Array(pruned.buffer) };
      },
    }),
    manifest: (r) => ({
      weights: [
        ...r.changed.map((t) => ({ name: t.weight, shape: t.shape, bits: null, blockSize: null, status: 'quantized' as const })),
        ...r.skipped.map((s) => ({ name: s.target.weight, shape: s.target.shape, bits: null, blockSize: null, status: 'skipped' as const, reason: s.reason })),
      ],
    }),
  });
  expect(written.result.changed.map((t) => t.weight)).toEqual([zeroed]);
  expect(written.result.skipped).toEqual([expect.objectContaining({ reason: 'kept for the test' })]);
  expect(written.result.swept).toEqual([]);

  const original = await floats(STORIES.model, zeroed);
  const after = await floats(written.modelPath, zeroed);
  expect(after.length).toBe(original.length);
  const zeros = after.filter((x) => x === 0).length;
  expect(zeros).toBeGreaterThanOrEqual(Math.floor(original.length / 2) - 1);
  for (let i = 0; i < after.length; i++) if (after[i] !== 0) expect(after[i]).toBe(original[i]);
  expect(await floats(written.modelPath, skipped)).toEqual(await floats(STORIES.model, skipped));

  const reread = await readModel(written.modelPath);
  expect(reread.proto.graph!.node.length).toBe(nodesBefore);
  const session = await ort.InferenceSession.create(written.modelPath);
  expect(session.inputNames.length).toBeGreaterThan(0);
  await session.release();
  const manifest = await readManifest(out);
  expect(manifest.weights.find((w) => w.name === skipped)).toMatchObject({ status: 'skipped', reason: 'kept for the test' });
});
