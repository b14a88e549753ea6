/**
 * Whole-model gradients of the bundled stories260K against float64 finite differences: the train-step
 * graph's ∂(Σ token loss)/∂w, computed by onnxruntime in float32, against central differences of a plain
 * float64 evaluation of the same training view (tests/helpers/reference-ops.ts) and a float64 cross-entropy.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { buildTrainingView, type TrainingView } from '../../main/engine/train/view.ts';
import { evaluateGraph, loadInitializers, refTensor, type RefTensor } from '../helpers/reference-ops.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const B = 1, T = 8;
const scratch = tempDir('whittle-gradcheck-');
afterAll(() => scratch.cleanup());

/** Σ next-token cross-entropy in float64 over the view's logits. */
function referenceLossSum(view: TrainingView, constants: Map<string, RefTensor>, weights: Map<string, Float64Array>, ids: number[], labels: number[]): number {
  const values = new Map(constants);
  values.set('input_ids', refTensor(DataType.int64, [B, T], ids));
  for (const p of view.trainable) values.set(p.name, { dtype: DataType.float32, dims: p.dims, data: weights.get(p.name) ?? new Float64Array(0) });
  const graph = view.model.graph;
  if (!graph) throw new Error('no graph');
  const logits = evaluateGraph(graph, values).get(view.logits);
  if (!logits) throw new Error('no logits');
  const V = view.vocab;
  let sum = 0;
  for (let r = 0; r < B * T; r++) {
    if (labels[r] < 0) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits.data[r * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits.data[r * V + v] - max);
    sum += Math.log(z) + max - logits.data[r * V + labels[r]];
  }
  return sum;
}

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
    const base = referenceLossSum(view, constants, weights, ids, labels);
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
      const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a]));
      const entries = [order[0], order[1], Math.floor(w.length / 3), w.length - 1];
      let diff = 0, norm = 0;
      for (const e of entries) {
        const keep = w[e];
        w[e] = keep + h;
        const up = referenceLossSum(view, constants, weights, ids, labels);
        w[e] = keep - h;
        const down = referenceLossSum(view, constants, weights, ids, labels);
        w[e] = keep;
        const fd = (up - down) / (2 * h);
        diff += (g[e] - fd) ** 2;
        norm += fd ** 2;
      }
      expect(Math.sqrt(diff) / Math.sqrt(norm), p.name).toBeLessThan(1e-3);
    }
  }, 300_000);
});
