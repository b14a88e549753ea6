/**
 * The float64 reference evaluator against onnxruntime: the whole stories260K decoder (every op it uses)
 * gives the same logits and cache, and a few ops whose edge cases the gradient checks rely on.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { erf, evaluateGraph, loadInitializers, REFERENCE_OPS, refTensor } from '../../helpers/reference-ops.ts';
import { STORIES } from '../../helpers/fixtures.ts';

describe('reference evaluator', () => {
  it('evaluates the stories260K decoder like onnxruntime (logits and present cache)', async () => {
    const model = await readModel(STORIES.model);
    const graph = model.proto.graph;
    if (!graph) throw new Error('no graph');
    const used = new Set(graph.node.map((n) => n.opType ?? ''));
    for (const op of used) expect((REFERENCE_OPS as readonly string[]).includes(op), op).toBe(true);

    const ids = [1, 403, 58, 261, 302, 7];
    const values = await loadInitializers(graph);
    values.set('input_ids', refTensor(DataType.int64, [1, ids.length], ids));
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) };
    for (const v of graph.input) {
      if (!v.name?.startsWith('past_key_values')) continue;
      values.set(v.name, refTensor(DataType.float32, [1, 4, 0, 8], []));
      feeds[v.name] = new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8]);
    }
    const env = evaluateGraph(graph, values);
    const session = await ort.InferenceSession.create(STORIES.model, { intraOpNumThreads: 1 });
    const out = await session.run(feeds);
    await session.release();
    for (const name of ['logits', 'present.0.key', 'present.4.value']) {
      const want = out[name].data as Float32Array;
      const got = env.get(name);
      expect(got?.dims).toEqual(out[name].dims);
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < want.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs((got?.data[i] ?? NaN) - want[i]));
        maxAbs = Math.max(maxAbs, Math.abs(want[i]));
      }
      expect(maxDiff / maxAbs, name).toBeLessThan(1e-4);
    }
  });

  it('erf matches known values to float64 precision', () => {
    expect(erf(0)).toBe(0);
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 12);
    expect(erf(-1)).toBeCloseTo(-0.8427007929497149, 12);
    expect(erf(2.9)).toBeCloseTo(0.9999589021219005, 12);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 12);
  });
});
