import { DataType } from '../../main/engine/onnx/dtype.ts';
import type { TrainingView } from '../../main/engine/train/view.ts';
import { evaluateGraph, refTensor, type RefTensor } from './reference-ops.ts';

/**
 * Σ next-token cross-entropy in float64 over a training view's logits [B·T, V], evaluated with
 * reference-ops.ts: input_ids [B, T] = `ids`, the trainable weights from `weights`, every other input
 * (initializers, dropout masks) from `inputs`; rows whose label is negative are skipped.
 */
export function referenceLossSum(view: TrainingView, inputs: Map<string, RefTensor>, weights: Map<string, Float64Array>, ids: number[], labels: number[], B: number, T: number): number {
  const values = new Map(inputs);
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

/** Indices of g's `count` entries of largest |g|, largest first. */
export function largestEntries(g: Float64Array, count: number): number[] {
  return [...g.keys()].sort((x, y) => Math.abs(g[y]) - Math.abs(g[x])).slice(0, count);
}

/**
 * Gradient g of `loss` with respect to the weight array w, checked at `entries` against central
 * differences fd = (loss(w + h) − loss(w − h)) / 2h (w changed in place, then restored):
 * error = ‖g − fd‖ / ‖fd‖ over those entries, and norm = ‖fd‖².
 */
export function finiteDifferenceError(loss: () => number, w: Float64Array, g: Float64Array, entries: number[], h: number): { error: number; norm: number } {
  let diff = 0, norm = 0;
  for (const e of entries) {
    const keep = w[e];
    w[e] = keep + h;
    const up = loss();
    w[e] = keep - h;
    const down = loss();
    w[e] = keep;
    const fd = (up - down) / (2 * h);
    diff += (g[e] - fd) ** 2;
    norm += fd ** 2;
  }
  return { error: Math.sqrt(diff) / Math.sqrt(norm), norm };
}
