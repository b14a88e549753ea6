/**
 * Whole-model gradients of the bundled stories260K against float64 finite differences: the train-step
 * graph's ∂(Σ token loss)/∂w, computed by onnxruntime in float32, against central differences of a plain
 * float64 evaluation of the same training view (tests/helpers/reference-ops.ts) and a float64 cross-entropy.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { buildTrainingView } from '../../main/engine/train/view.ts';
import { finiteDifferenceError, largestEntries, referenceLossSum } from '../helpers/reference-loss.ts';
import { loadInitializers } from '../helpers/reference-ops.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const B = 1, T = 8;
const scratch = tempDir('whittle-gradcheck-');
afterAll(() => scratch.cleanup());

describe('whole-model gradient check', () => {
  it('stories260K: the train-step gradients match float64 finite differences on a sample of weights (relative error ≤ 1e-3)', async () => {
    const source = await readModel(STORIES.model);
    const view = await buildTrainingView(source, mapArchitecture(source), { batch: B, length: T, frozen: () => false, scratchDir: scratch.dir });
    const ids = [1, 72, 304, 45, 260, 13, 411, 99];
    const labels = [72, 304, 45, 260, 13, 411, 99, -1];
    const weights32 = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
    const session = await StepSession.open(compileTrainStep(view, crossEntropyHead(B, T, view.vocab)), view.trainable, weights32, [B, T], `${scratch.dir}/train`);
    const got = await session.run({ inputIds: BigInt64Array.from(ids.map(BigInt)), labels: BigInt64Array.from(labels.map(BigInt)) });
    const grads = got.grads.map((g) => Float64Array.from(g));
    await session.close();

    const graph = view.model.graph;
    if (!graph) throw new Error('no graph');
    const constants = await loadInitializers(graph);
    const weights = new Map(view.trainable.map((p, i) => [p.name, Float64Array.from(weights32[i])]));
    const base = referenceLossSum(view, constants, weights, ids, labels, B, T);
    expect(Math.abs(got.lossSum - base) / base).toBeLessThan(1e-5);

    // One weight of each role per block 0 and 4, the embedding and the final norm: the two entries with the
    // largest gradient and two fixed others.
    const picked = view.trainable.filter((p) => p.block === 0 || p.block === 4 || p.role === 'embedding' || (p.role === 'norm' && p.block === null));
    expect(picked.length).toBeGreaterThanOrEqual(10);
    const h = 1e-5;
    for (const p of picked) {
      const i = view.trainable.indexOf(p);
      const w = weights.get(p.name) ?? new Float64Array(0);
      const g = grads[i];
      const entries = [...largestEntries(g, 2), Math.floor(w.length / 3), w.length - 1];
      const { error } = finiteDifferenceError(() => referenceLossSum(view, constants, weights, ids, labels, B, T), w, g, entries, h);
      expect(error, p.name).toBeLessThan(1e-3);
    }
  }, 300_000);
});
