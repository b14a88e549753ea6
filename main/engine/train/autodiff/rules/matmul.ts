/**
 * Matrix products.
 *
 * MatMul, Y[…, m, n] = A[…, m, k] · B[…, k, n] (numpy batching; a 1-D A is [1, k], a 1-D B is [k, 1]):
 *   ∂A = g · Bᵀ, ∂B = Aᵀ · g, each summed over the batch axes its operand was broadcast along.
 *   With a 2-D weight B [k, n] (every linear layer), A is viewed as rows [M = b·t·…, k] and g as [M, n]:
 *   ∂B = Gemm(A_rows, g_rows, transA) — one GEMM, no batched product and no reduction — and
 *   ∂A = Gemm(g_rows, B, transB) — no transposed copy of B.
 *
 * Gemm, Y[M, N] = α·A'·B' + β·C with A' = transA ? Aᵀ : A, B' = transB ? Bᵀ : B:
 *   ∂A' = α·g·B'ᵀ, ∂B' = α·A'ᵀ·g, each emitted as one Gemm with the trans flags that read the operands
 *   in place; ∂C = β·g summed over C's broadcast axes.
 */
import { attrFloat, attrInt, floatAttr, intAttr } from '../../../onnx/graph.ts';
import { sameShape, sizeOf, type GradBuilder } from '../builder.ts';
import { inputAt, onlyGrad, type Grad, type Rule } from './rule.ts';

/** Batched MatMul with its output meta: [batch(a, b)…, a[-2], b[-1]]. */
function matmul(b: GradBuilder, x: string, y: string): string {
  const sa = b.shape(x);
  const sb = b.shape(y);
  const batchA = sa.slice(0, -2);
  const batchB = sb.slice(0, -2);
  const r = Math.max(batchA.length, batchB.length);
  const batch: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = batchA[batchA.length - r + i] ?? 1;
    const db = batchB[batchB.length - r + i] ?? 1;
    batch.push(da === 1 ? db : da);
  }
  return b.op('MatMul', [x, y], { dtype: b.dtype(x), shape: [...batch, sa[sa.length - 2], sb[sb.length - 1]] });
}

/** Swaps the last two axes. */
function swapLast(b: GradBuilder, x: string): string {
  const r = b.shape(x).length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return b.transpose(x, perm);
}

function gemm(b: GradBuilder, x: string, y: string, transA: boolean, transB: boolean, alpha: number): string {
  const sa = b.shape(x);
  const sb = b.shape(y);
  const m = transA ? sa[1] : sa[0];
  const n = transB ? sb[0] : sb[1];
  const attrs = [];
  if (transA) attrs.push(intAttr('transA', 1));
  if (transB) attrs.push(intAttr('transB', 1));
  if (alpha !== 1) attrs.push(floatAttr('alpha', alpha));
  return b.op('Gemm', [x, y], { dtype: b.dtype(x), shape: [m, n] }, attrs);
}

export const matMul: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [a, w] = node.input;
  const sa = b.shape(a);
  const sb = b.shape(w);
  const k = sa[sa.length - 1];
  // 2-D operands: a 1-D A is a row [1, k], a 1-D B a column [k, 1].
  const a2Shape = sa.length === 1 ? [1, k] : sa;
  const b2Shape = sb.length === 1 ? [k, 1] : sb;
  const n = b2Shape[b2Shape.length - 1];
  const out: Grad[] = [null, null];

  if (sb.length === 2 && sa.length >= 2) {
    // Linear layer: rows of A [M, k] times the weight [k, n].
    const rows = sizeOf(sa) / k;
    const gRows = b.reshape(g, [rows, n]);
    if (needs(0)) out[0] = b.reshape(gemm(b, gRows, w, false, true, 1), sa);
    if (needs(1)) out[1] = gemm(b, b.reshape(a, [rows, k]), gRows, true, false, 1);
    return out;
  }

  const gShape = [...b.shape(g)];
  if (sa.length === 1) gShape.splice(gShape.length - 1, 0, 1);
  if (sb.length === 1) gShape.push(1);
  const g2 = b.reshape(g, gShape);
  const a2 = b.reshape(a, a2Shape);
  const b2 = b.reshape(w, b2Shape);
  if (needs(0)) out[0] = b.reshape(b.reduceToShape(matmul(b, g2, swapLast(b, b2)), a2Shape), sa);
  if (needs(1)) out[1] = b.reshape(b.reduceToShape(matmul(b, swapLast(b, a2), g2), b2Shape), sb);
  return out;
};

export const gemmRule: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [a, w] = node.input;
  const transA = attrInt(node, 'transA', 0) !== 0;
  const transB = attrInt(node, 'transB', 0) !== 0;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const out: Grad[] = [null, null, null];
  if (needs(0)) {
    // ∂A' = α·g·B'ᵀ; with transA, ∂A = (∂A')ᵀ = α·B'·gᵀ.
    out[0] = transA ? gemm(b, w, g, transB, true, alpha) : gemm(b, g, w, false, !transB, alpha);
  }
  if (needs(1)) {
    // ∂B' = α·A'ᵀ·g; with transB, ∂B = (∂B')ᵀ = α·gᵀ·A'.
    out[1] = transB ? gemm(b, g, a, true, transA, alpha) : gemm(b, a, g, !transA, false, alpha);
  }
  const c = inputAt(node, 2);
  if (c !== undefined && needs(2)) {
    const gc = b.reduceToShape(g, b.shape(c));
    out[2] = b.scale(gc, beta);
  }
  if (out[0] && !sameShape(b.shape(out[0]), b.shape(a))) out[0] = b.reshape(out[0], b.shape(a));
  return out;
};
