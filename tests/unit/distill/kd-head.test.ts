/**
 * The distillation heads run in onnxruntime (float32) against the plain float64 reference
 * (kd-reference.ts): the loss and its parts, the fused gradient against central differences of the
 * reference loss, the T² scaling, reverse KL, and the top-k teacher (exact on k = V; below the full KL by
 * exactly the rest's conditional KL otherwise).
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { distillationHead, TEACHER_LOGITS, TEACHER_REST_LOGP, TEACHER_TOPK_IDS, TEACHER_TOPK_LOGP, type TeacherSignal } from '../../../main/engine/distill/kd-head.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { NodeSink, LABELS } from '../../../main/engine/train/loss-head.ts';
import type { MetaMap } from '../../../main/engine/train/autodiff/types.ts';
import { graphOf, modelOf, rng, session } from '../train/grad-check.ts';
import { valueInfo } from '../quantize/build-model.ts';
import { fullKlRow, kdLoss, kdLossGradient, logSoftmax, topkKlRow, topkOf, type KdSettings, type TopkRow } from './kd-reference.ts';

const B = 2, T = 3, V = 11, N = B * T;

interface HeadRun { loss: number; count: number; grad: Float32Array; kl: number; ce: number; agree: number }

/** Builds the head after a plain logits input and runs it once. */
async function runHead(z: Float64Array, labels: number[], s: KdSettings, teacher: TeacherSignal, feeds: Record<string, ort.Tensor>): Promise<HeadRun> {
  const head = distillationHead({ batch: B, length: T, vocab: V, temperature: s.T, alpha: s.alpha, reverse: s.reverse, teacher });
  const meta: MetaMap = new Map([['z', { dtype: DataType.float32, shape: [B, T, V] }]]);
  const sink = new NodeSink(meta, 17, 'loss/');
  const out = head.build(sink, 'z');
  const graph = graphOf(sink.nodes, sink.initializers);
  graph.input = [valueInfo('z', DataType.float32, [B, T, V]), ...head.inputs];
  const names = [out.lossSum, out.tokenCount, out.gradLogits, out.parts!.kl, out.parts!.ce, out.parts!.agree];
  graph.output = names.map((nm) => valueInfo(nm, DataType.float32, meta.get(nm)!.shape));
  const sess = await session(modelOf(graph, 17));
  try {
    const r = await sess.run({ z: new ort.Tensor('float32', Float32Array.from(z), [B, T, V]), [LABELS]: new ort.Tensor('int64', BigInt64Array.from(labels, BigInt), [B, T]), ...feeds });
    const scalar = (nm: string): number => (r[nm].data as Float32Array)[0];
    return { loss: scalar(out.lossSum), count: scalar(out.tokenCount), grad: r[out.gradLogits].data as Float32Array, kl: scalar(out.parts!.kl), ce: scalar(out.parts!.ce), agree: scalar(out.parts!.agree) };
  } finally {
    await sess.release();
  }
}

function randomLogits(seed: number, scale: number): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: N * V }, () => (r() * 2 - 1) * scale);
}

/** Labels with a padding row in each batch position set (rows 2 and 5 are −1). */
const LABEL_ROWS = [3, 7, -1, 0, 10, -1];

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; }
  return Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12);
}

function topkFeeds(rows: TopkRow[], k: number): Record<string, ort.Tensor> {
  return {
    [TEACHER_TOPK_IDS]: new ort.Tensor('int64', BigInt64Array.from(rows.flatMap((r) => r.ids), BigInt), [B, T, k]),
    [TEACHER_TOPK_LOGP]: new ort.Tensor('float32', Float32Array.from(rows.flatMap((r) => r.logp)), [B, T, k]),
    [TEACHER_REST_LOGP]: new ort.Tensor('float32', Float32Array.from(rows.map((r) => r.rest)), [B, T, 1]),
  };
}

const SETTINGS: KdSettings[] = [
  { T: 1, alpha: 0.5, reverse: false },
  { T: 2, alpha: 0.5, reverse: false },
  { T: 4, alpha: 0.9, reverse: false },
  { T: 2, alpha: 1, reverse: false },
  { T: 1, alpha: 0.3, reverse: true },
  { T: 2, alpha: 0.5, reverse: true },
  { T: 3, alpha: 1, reverse: true },
];

describe('distillation head, full teacher logits', () => {
  for (const s of SETTINGS) {
    it(`T ${s.T}, α ${s.alpha}, ${s.reverse ? 'reverse' : 'forward'} KL: loss, parts and gradient match the float64 reference`, async () => {
      const z = randomLogits(11 + s.T, 3);
      const u = randomLogits(97 + s.T, 4);
      const ref = kdLoss(z, LABEL_ROWS, V, s, { logits: u });
      const run = await runHead(z, LABEL_ROWS, s, { kind: 'logits' }, { [TEACHER_LOGITS]: new ort.Tensor('float32', Float32Array.from(u), [B, T, V]) });
      expect(run.count).toBe(4);
      expect(run.loss).toBeCloseTo(ref.loss, 4);
      expect(run.kl).toBeCloseTo(ref.kl, 4);
      expect(run.ce).toBeCloseTo(ref.ce, 4);
      expect(run.agree).toBe(ref.agree);
      expect(ref.kl).toBeGreaterThan(0.01);
      const fd = kdLossGradient(z, LABEL_ROWS, V, s, { logits: u });
      expect(relErr(run.grad, fd)).toBeLessThan(1e-4);
      // Padding rows get no gradient.
      for (const row of [2, 5]) for (let v = 0; v < V; v++) expect(Math.abs(run.grad[row * V + v])).toBe(0);
    });
  }

  it('scales the KL by T² (α = 1): the loss is T² times the KL part, whose gradient stays on the hard-label scale', async () => {
    const z = randomLogits(5, 2);
    const u = randomLogits(6, 2);
    const feeds = { [TEACHER_LOGITS]: new ort.Tensor('float32', Float32Array.from(u), [B, T, V]) };
    const norms: number[] = [];
    for (const temp of [1, 2, 4, 8]) {
      const run = await runHead(z, LABEL_ROWS, { T: temp, alpha: 1, reverse: false }, { kind: 'logits' }, feeds);
      expect(run.loss).toBeCloseTo(temp * temp * run.kl, 5);
      let rows = 0;
      for (let r = 0; r < N; r++) if (LABEL_ROWS[r] >= 0) rows += fullKlRow(Array.from(z.subarray(r * V, r * V + V)), Array.from(u.subarray(r * V, r * V + V)), temp, false);
      expect(run.kl).toBeCloseTo(rows, 5);
      norms.push(Math.hypot(...run.grad));
    }
    // Without T² the gradient would shrink like 1/T² (factor 64 from T = 1 to 8); with it, it stays within a small factor.
    expect(Math.max(...norms) / Math.min(...norms)).toBeLessThan(4);
  });

  it('is zero in KL and agrees everywhere when the student is the teacher', async () => {
    const z = randomLogits(8, 3);
    const run = await runHead(z, LABEL_ROWS, { T: 2, alpha: 0.5, reverse: false }, { kind: 'logits' }, { [TEACHER_LOGITS]: new ort.Tensor('float32', Float32Array.from(z), [B, T, V]) });
    expect(Math.abs(run.kl)).toBeLessThan(1e-5);
    expect(run.agree).toBe(4);
  });
});

describe('distillation head, top-k teacher', () => {
  for (const s of [SETTINGS[1], SETTINGS[2], SETTINGS[5], SETTINGS[6]]) {
    it(`k 4 of ${V}, T ${s.T}, α ${s.alpha}, ${s.reverse ? 'reverse' : 'forward'}: loss and gradient match the bucketed float64 reference`, async () => {
      const z = randomLogits(21, 3);
      const u = randomLogits(33, 4);
      const rows = Array.from({ length: N }, (_, r) => topkOf(u.subarray(r * V, r * V + V), 4, s.T));
      const ref = kdLoss(z, LABEL_ROWS, V, s, { topk: rows });
      const run = await runHead(z, LABEL_ROWS, s, { kind: 'topk', k: 4 }, topkFeeds(rows, 4));
      expect(run.loss).toBeCloseTo(ref.loss, 4);
      expect(run.kl).toBeCloseTo(ref.kl, 4);
      expect(run.agree).toBe(ref.agree);
      const fd = kdLossGradient(z, LABEL_ROWS, V, s, { topk: rows });
      expect(relErr(run.grad, fd)).toBeLessThan(1e-4);
    });
  }

  it('k = V gives the full KL and the full gradient (both directions)', async () => {
    const z = randomLogits(41, 3);
    const u = randomLogits(42, 3);
    for (const reverse of [false, true]) {
      const s = { T: 2, alpha: 0.5, reverse };
      const rows = Array.from({ length: N }, (_, r) => topkOf(u.subarray(r * V, r * V + V), V, s.T));
      const full = await runHead(z, LABEL_ROWS, s, { kind: 'logits' }, { [TEACHER_LOGITS]: new ort.Tensor('float32', Float32Array.from(u), [B, T, V]) });
      const topk = await runHead(z, LABEL_ROWS, s, { kind: 'topk', k: V }, topkFeeds(rows, V));
      expect(Math.abs(topk.kl - full.kl) / full.kl).toBeLessThan(2e-6);
      expect(Math.abs(topk.loss - full.loss) / full.loss).toBeLessThan(2e-6);
      expect(relErr(topk.grad, full.grad)).toBeLessThan(1e-5);
    }
  });

  it('k < V: the forward KL lies below the full KL by exactly P_rest · KL of the rest\'s conditional distributions', async () => {
    // Chain rule of KL over the partition {id_1 … id_k, rest}: KL_full = KL_buckets + P_rest · KL(p|rest ‖ q|rest) ≥ KL_buckets
    // (data processing). So |Δ| per row is P_rest times the conditional KL, and 0 when the rest mass is 0.
    const z = randomLogits(51, 2);
    const u = randomLogits(52, 5);
    const s = { T: 2, alpha: 1, reverse: false };
    for (const k of [1, 3, 6]) {
      const rows = Array.from({ length: N }, (_, r) => topkOf(u.subarray(r * V, r * V + V), k, s.T));
      const topk = await runHead(z, LABEL_ROWS, s, { kind: 'topk', k }, topkFeeds(rows, k));
      let full = 0, gap = 0;
      for (let r = 0; r < N; r++) {
        if (LABEL_ROWS[r] < 0) continue;
        const zr = Array.from(z.subarray(r * V, r * V + V));
        const ur = Array.from(u.subarray(r * V, r * V + V));
        full += fullKlRow(zr, ur, s.T, false);
        const logp = logSoftmax(ur, s.T);
        const logq = logSoftmax(zr, s.T);
        const inTop = new Set(rows[r].ids);
        const restIds = Array.from(logp.keys()).filter((i) => !inTop.has(i));
        const Pr = restIds.reduce((a, i) => a + Math.exp(logp[i]), 0);
        const Qr = restIds.reduce((a, i) => a + Math.exp(logq[i]), 0);
        gap += restIds.reduce((a, i) => a + Math.exp(logp[i]) * (logp[i] - Math.log(Pr) - (logq[i] - Math.log(Qr))), 0);
        expect(topkKlRow(zr, rows[r], s.T, false)).toBeLessThanOrEqual(fullKlRow(zr, ur, s.T, false) + 1e-12);
      }
      expect(topk.kl).toBeLessThanOrEqual(full + 1e-5);
      expect(full - topk.kl).toBeCloseTo(gap, 4);
    }
  });
});
