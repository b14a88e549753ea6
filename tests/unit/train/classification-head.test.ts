/**
 * The classification heads on onnxruntime against float64 references: the summed cross-entropy and its
 * fused gradient softmax − onehot, the KD loss α·T²·KL + (1 − α)·CE and its gradient (also checked by
 * central finite differences of the reference loss), and the count of right answers.
 */
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';
import { classificationHead, classificationKdHead, TEACHER_LOGITS } from '../../../main/engine/train/classification-head.ts';
import { valueInfo } from '../../../main/engine/train/graph-io.ts';
import { LABELS, NodeSink, type LossHead } from '../../../main/engine/train/loss-head.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const B = 4, C = 3;
const tmp = tempDir('whittle-cls-head-');
afterAll(() => tmp.cleanup());

const z = [1.5, -0.3, 0.2, 0.1, 0.4, -1.2, -2.0, 0.5, 2.5, 0.0, 0.0, 0.0];
const u = [2.0, 0.0, -1.0, -0.5, 1.5, 0.3, 0.1, 0.2, 0.9, 1.0, -1.0, 0.5];
const y = [0, 2, 2, 1];

async function runHead(head: LossHead, name: string): Promise<{ loss: number; count: number; grad: Float32Array; parts: Record<string, number> }> {
  const meta = new Map([['z', { dtype: DataType.float32, shape: [B, C] }]]);
  const sink = new NodeSink(meta, 18, 'loss/');
  const out = head.build(sink, 'z');
  const parts = out.parts ?? {};
  const names = [out.lossSum, out.tokenCount, out.gradLogits, ...Object.values(parts)];
  const file = `${tmp.dir}/${name}.onnx`;
  await writeModel({
    irVersion: 10, opsetImport: [{ domain: '', version: 18 }], producerName: 'test',
    graph: {
      node: sink.nodes, name: 'head', initializer: sink.initializers, sparseInitializer: [],
      input: [valueInfo('z', { dtype: DataType.float32, shape: [B, C] }), ...head.inputs],
      output: names.map((n) => valueInfo(n, meta.get(n) ?? { dtype: DataType.float32, shape: [] })), valueInfo: [], quantizationAnnotation: [], metadataProps: [],
    },
    metadataProps: [], trainingInfo: [], functions: [], configuration: [],
  }, file, { externalData: 'none' });
  const session = await ort.InferenceSession.create(file);
  const feeds: Record<string, ort.Tensor> = { z: new ort.Tensor('float32', Float32Array.from(z), [B, C]), [LABELS]: new ort.Tensor('int64', BigInt64Array.from(y.map(BigInt)), [B]) };
  if (head.inputs.some((i) => i.name === TEACHER_LOGITS)) feeds[TEACHER_LOGITS] = new ort.Tensor('float32', Float32Array.from(u), [B, C]);
  const r = await session.run(feeds);
  await session.release();
  const scalar = (n: string): number => Number((r[n].data as Float32Array)[0]);
  return { loss: scalar(out.lossSum), count: scalar(out.tokenCount), grad: r[out.gradLogits].data as Float32Array, parts: Object.fromEntries(Object.entries(parts).map(([k, n]) => [k, scalar(n)])) };
}

function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
  return row.map((x) => x - lse);
}
const rowOf = (v: number[], b: number): number[] => v.slice(b * C, (b + 1) * C);

/** Reference KD loss in float64 (α = 0 gives the plain cross-entropy). */
function kdLoss(zz: number[], t: number, alpha: number): { kl: number; ce: number; loss: number } {
  let kl = 0, ce = 0;
  for (let b = 0; b < B; b++) {
    const logq = logSoftmax(rowOf(zz, b).map((x) => x / t));
    const logp = logSoftmax(rowOf(u, b).map((x) => x / t));
    for (let c = 0; c < C; c++) kl += Math.exp(logp[c]) * (logp[c] - logq[c]);
    ce -= logSoftmax(rowOf(zz, b))[y[b]];
  }
  return { kl, ce, loss: alpha * t * t * kl + (1 - alpha) * ce };
}

describe('classification heads', () => {
  it('cross-entropy: summed loss, B counted, ∂z = softmax − onehot, right answers counted', async () => {
    const r = await runHead(classificationHead({ batch: B, classes: C }), 'ce');
    expect(r.loss).toBeCloseTo(kdLoss(z, 1, 0).ce, 5);
    expect(r.count).toBe(B);
    for (let b = 0; b < B; b++) {
      const p = logSoftmax(rowOf(z, b)).map(Math.exp);
      for (let c = 0; c < C; c++) expect(r.grad[b * C + c]).toBeCloseTo(p[c] - (c === y[b] ? 1 : 0), 6);
    }
    // argmax rows: 0 (label 0 ✓), 1 (label 2 ✗), 2 (label 2 ✓), 0 — a tie at 0 — (label 1 ✗)
    expect(r.parts.correct).toBe(2);
  });

  it('KD: α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE, its fused gradient matches finite differences', async () => {
    const t = 2, alpha = 0.7;
    const r = await runHead(classificationKdHead({ batch: B, classes: C, temperature: t, alpha }), 'kd');
    const ref = kdLoss(z, t, alpha);
    expect(r.loss).toBeCloseTo(ref.loss, 5);
    expect(r.parts.kl).toBeCloseTo(ref.kl, 5);
    expect(r.parts.ce).toBeCloseTo(ref.ce, 5);
    expect(r.parts.correct).toBe(2);
    const h = 1e-5;
    for (let i = 0; i < B * C; i++) {
      const plus = [...z], minus = [...z];
      plus[i] += h; minus[i] -= h;
      const fd = (kdLoss(plus, t, alpha).loss - kdLoss(minus, t, alpha).loss) / (2 * h);
      expect(Math.abs(r.grad[i] - fd), `∂loss/∂z[${i}]`).toBeLessThan(1e-5);
    }
  });
});
