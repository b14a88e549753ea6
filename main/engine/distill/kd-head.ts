/**
 * Knowledge-distillation loss heads (TRAINING.md, "Losses"): nodes after the student's logits that
 * compute, for one micro-batch, the SUM over counted tokens (labels −1 are not counted) of
 *
 *   ℓ = α · T² · KL(p ‖ q) + (1 − α) · CE(z, y)          (forward KL, Hinton)
 *   ℓ = α · T² · KL(q ‖ p) + (1 − α) · CE(z, y)          (reverse KL, MiniLLM's token-level form)
 *
 * with, per row (token) of N = B·T rows and V words:
 *   z [N, V]  student logits          q = softmax(z / T)       (student at temperature T)
 *   u [N, V]  teacher logits          p = softmax(u / T)       (teacher at temperature T)
 *   r = softmax(z)                    CE(z, y) = −log r_y      (hard labels at temperature 1)
 *
 * and, fused in the same graph, the gradient ∂ℓ/∂z that seeds the backward:
 *
 *   forward KL:  ∂KL(p‖q)/∂z = (q − p) / T
 *   reverse KL:  with d = log q − log p and K = Σ_v q_v d_v = KL(q‖p):
 *                ∂KL(q‖p)/∂z_j = q_j (d_j − K) / T
 *                (∂q_i/∂s_j = q_i(δ_ij − q_j) for s = z/T; the "+1" of ∂(q log q) sums to 0)
 *   CE:          ∂CE/∂z = r − onehot(y)
 *
 *   ∂ℓ/∂z = α T · ∂KL/∂(z/T) + (1 − α) · (r − onehot(y)), times the row's mask.
 *
 * The T² keeps the KL's gradient (which carries 1/T from the softened softmax and another 1/T from the
 * flattened difference q − p) on the scale of the hard-label gradient as T changes.
 *
 * Top-k teacher (a cache of the k most likely teacher ids per position): the teacher distribution is
 * k exact buckets plus one "rest" bucket, P_k = exp(logp_k) and P_rest = exp(rest); the student's buckets
 * are Q_k = q[id_k] and Q_rest = 1 − Σ_k Q_k. With S = Σ_k P_k + P_rest (1 up to storage rounding):
 *
 *   forward:  KL = Σ_k P_k (log P_k − log Q_k) + P_rest (log P_rest − log Q_rest)
 *             ∂KL/∂s_j = q_j (S − P_rest / Q_rest)         for j ∉ ids
 *                      = Q_j S − P_j                        for j = id_k
 *   reverse:  d_b = log Q_b − log P_b over the k + 1 buckets, K = Σ_b Q_b d_b
 *             ∂KL/∂s_j = q_j (d_rest − K)                   for j ∉ ids
 *                      = Q_j (d_j − K)                      for j = id_k
 *   (∂Q_rest/∂s_j = q_j [j ∉ ids] − q_j Q_rest.)
 * So each form is "q times a per-row number" everywhere, then k values scattered in: one [N, V] pass.
 *
 * Cost on [N, V] (the part that dominates a small model with a 32,000-word vocabulary): LogSoftmax and
 * Softmax-like Exp are fused row kernels in onnxruntime, per-row numbers [N, 1] broadcast cheaply, and
 * no ReduceLogSumExp is used. When T = 1 the student's tempered and plain log-softmax are one node.
 *
 * Parts (sums over counted tokens): 'kl' = KL at temperature T (without α and T²), 'ce' = the hard-label
 * cross-entropy, 'agree' = tokens where the student's argmax equals the teacher's (its top-1 id for the
 * cache). So loss = α T² kl + (1 − α) ce.
 */
import { DataType } from '../onnx/dtype.ts';
import { intAttr } from '../onnx/graph.ts';
import type { TensorMeta } from '../train/autodiff/types.ts';
import { valueInfo } from '../train/graph-io.ts';
import { LABELS, type LossHead, type NodeSink } from '../train/loss-head.ts';
import { WhittleError } from '../errors.ts';

/** Teacher logits [B, T, V] (float32), fed per micro-batch. */
export const TEACHER_LOGITS = 'teacher_logits';
/** Top-k teacher: ids [B, T, K] (int64), log-probabilities at T of those ids [B, T, K] and of the rest [B, T, 1] (float32). */
export const TEACHER_TOPK_IDS = 'teacher_topk_ids';
export const TEACHER_TOPK_LOGP = 'teacher_topk_logp';
export const TEACHER_REST_LOGP = 'teacher_rest_logp';

/**
 * Lowest log-mass of a rest bucket the head uses (e^−80 ≈ 1.8e−35, a normal float32): a cache whose k ids
 * hold all the mass stores −∞ or a tiny number, and P_rest · log P_rest must stay a finite 0.
 */
export const REST_LOGP_FLOOR = -80;
/** Smallest student rest mass Q_rest = 1 − Σ_k Q_k (float32 rounding can make the difference 0 or negative). */
const REST_MASS_FLOOR = 1e-30;

export type TeacherSignal = { kind: 'logits' } | { kind: 'topk'; k: number };

export interface DistillationHeadOptions {
  batch: number;
  length: number;
  vocab: number;
  /** Softmax temperature T (default 2). */
  temperature?: number;
  /** Weight α of the KL term (default 0.5); 1 − α weighs the hard-label cross-entropy. */
  alpha?: number;
  /** KL(student ‖ teacher) (MiniLLM's token-level reverse KL) instead of KL(teacher ‖ student). */
  reverse?: boolean;
  teacher: TeacherSignal;
}

export const DEFAULT_TEMPERATURE = 2;
export const DEFAULT_ALPHA = 0.5;

export function checkDistillationSettings(o: { temperature?: number; alpha?: number; teacher?: TeacherSignal; vocab?: number }): void {
  const bad = (m: string): never => { throw new WhittleError('INVALID_INPUT', m); };
  const t = o.temperature ?? DEFAULT_TEMPERATURE;
  const a = o.alpha ?? DEFAULT_ALPHA;
  if (!(t > 0) || !Number.isFinite(t)) bad(`The distillation temperature must be a number above 0 (got ${t}); 1 to 4 are usual, 2 is the default.`);
  if (!(a >= 0 && a <= 1)) bad(`The distillation weight α must lie in [0, 1] (got ${a}): α weighs the teacher's KL, 1 − α the hard-label cross-entropy.`);
  if (o.teacher?.kind === 'topk') {
    const { k } = o.teacher;
    if (!Number.isInteger(k) || k < 1) bad(`The top-k cache needs k ≥ 1 (got ${k}).`);
    if (o.vocab !== undefined && k > o.vocab) bad(`The top-k cache's k (${k}) exceeds the vocabulary (${o.vocab} words).`);
  }
}

/** The KD head for a student of shape [batch, length, vocab] (see the header for the math). */
export function distillationHead(options: DistillationHeadOptions): LossHead {
  checkDistillationSettings({ ...options, vocab: options.vocab });
  const { batch, length, vocab, teacher } = options;
  const T = options.temperature ?? DEFAULT_TEMPERATURE;
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  const reverse = options.reverse ?? false;
  const labelsMeta: TensorMeta = { dtype: DataType.int64, shape: [batch, length] };
  const inputMetas: [string, TensorMeta][] = [[LABELS, labelsMeta]];
  if (teacher.kind === 'logits') {
    inputMetas.push([TEACHER_LOGITS, { dtype: DataType.float32, shape: [batch, length, vocab] }]);
  } else {
    inputMetas.push([TEACHER_TOPK_IDS, { dtype: DataType.int64, shape: [batch, length, teacher.k] }]);
    inputMetas.push([TEACHER_TOPK_LOGP, { dtype: DataType.float32, shape: [batch, length, teacher.k] }]);
    inputMetas.push([TEACHER_REST_LOGP, { dtype: DataType.float32, shape: [batch, length, 1] }]);
  }
  return {
    inputs: inputMetas.map(([name, m]) => valueInfo(name, m)),
    build(sink, logits) {
      for (const [name, m] of inputMetas) sink.meta.set(name, m);
      const dtype = sink.meta.get(logits)?.dtype ?? DataType.float32;
      if (dtype !== DataType.float32) throw new Error(`distillation heads take float32 logits (got ${dtype})`);
      return buildHead(sink, logits, { batch, length, vocab, T, alpha, reverse, teacher });
    },
  };
}

interface Built { batch: number; length: number; vocab: number; T: number; alpha: number; reverse: boolean; teacher: TeacherSignal }

function buildHead(sink: NodeSink, logits: string, o: Built): ReturnType<LossHead['build']> {
  const f = DataType.float32;
  const n = o.batch * o.length;
  const V = o.vocab;
  const rows: TensorMeta = { dtype: f, shape: [n, V] };
  const col: TensorMeta = { dtype: f, shape: [n, 1] };
  const scalar: TensorMeta = { dtype: f, shape: [] };
  const intCol: TensorMeta = { dtype: DataType.int64, shape: [n, 1] };
  const c = (v: number): string => sink.float(v, f);
  const sumAll = (x: string): string => sink.reduce('ReduceSum', x, null, false, scalar);
  const tempered = (x: string): string => (o.T === 1 ? x : sink.op('Mul', [x, c(1 / o.T)], rows));

  // Rows and their mask m [N, 1] (1 counted, 0 padding); padding reads column 0 and is multiplied by 0.
  const z = sink.op('Reshape', [logits, sink.int64([2], [n, V])], rows);
  const y = sink.op('Reshape', [LABELS, sink.int64([2], [n, 1])], intCol);
  const valid = sink.op('Greater', [y, sink.int64([], [-1])], { dtype: DataType.bool, shape: [n, 1] });
  const m = sink.op('Cast', [valid], col, [intAttr('to', f)]);
  const yc = sink.op('Where', [valid, y, sink.int64([], [0])], intCol);
  const tokenCount = sumAll(m);

  // Hard labels: log r = logsoftmax(z) [N, V]; CE row = −log r_y [N, 1].
  const logr = sink.op('LogSoftmax', [z], rows, [intAttr('axis', 1)]);
  const ceSum = sink.op('Neg', [sumAll(sink.op('Mul', [sink.op('GatherElements', [logr, yc], col, [intAttr('axis', 1)]), m], col))], scalar);
  // Student at temperature T: log q [N, V], q [N, V].
  const logq = o.T === 1 ? logr : sink.op('LogSoftmax', [tempered(z)], rows, [intAttr('axis', 1)]);
  const q = sink.op('Exp', [logq], rows);
  // The student's argmax (the same at every temperature) [N, 1].
  const studentTop = sink.op('ArgMax', [z], intCol, [intAttr('axis', 1), intAttr('keepdims', 1)]);

  // KL per row [N, 1], the KD gradient w.r.t. s = z/T as q ⊙ base [N, V] with optional k values scattered in, the teacher's top-1.
  const kd = o.teacher.kind === 'logits' ? fullKl(sink, o, { rows, col, intCol }, { logq, q, tempered }) : topkKl(sink, o, o.teacher.k, { rows, col, intCol }, { logq, q });
  const klSum = sumAll(sink.op('Mul', [kd.klRow, m], col));
  const agree = sumAll(sink.op('Mul', [sink.op('Cast', [sink.op('Equal', [studentTop, kd.teacherTop], { dtype: DataType.bool, shape: [n, 1] })], col, [intAttr('to', f)]), m], col));

  // lossSum = α T² Σ KL + (1 − α) Σ CE.
  const lossSum = sink.op('Add', [sink.op('Mul', [klSum, c(o.alpha * o.T * o.T)], scalar), sink.op('Mul', [ceSum, c(1 - o.alpha)], scalar)], scalar);

  // ∂lossSum/∂z = c1 ⊙ ∂KL/∂s + c2 ⊙ (r − onehot(y)), with c1 = α T m, c2 = (1 − α) m  [N, 1].
  const c1 = sink.op('Mul', [m, c(o.alpha * o.T)], col);
  const c2 = sink.op('Mul', [m, c(1 - o.alpha)], col);
  // Everywhere: q ⊙ (base · c1) + r ⊙ c2   [N, V].
  let g = sink.op('Mul', [kd.gradRows ?? q, kd.gradRows ? c1 : sink.op('Mul', [kd.base ?? c(1), c1], col)], rows);
  if (o.alpha < 1) g = sink.op('Add', [g, sink.op('Mul', [sink.op('Exp', [logr], rows), c2], rows)], rows);
  // Top-k columns: c1 · b_k + c2 · r[id_k]   [N, K].
  if (kd.ids && kd.values) {
    const K = sink.meta.get(kd.ids)?.shape[1] ?? 0;
    const kCols: TensorMeta = { dtype: f, shape: [n, K] };
    let upd = sink.op('Mul', [kd.values, c1], kCols);
    if (o.alpha < 1) upd = sink.op('Add', [upd, sink.op('Mul', [sink.op('Exp', [sink.op('GatherElements', [logr, kd.ids], kCols, [intAttr('axis', 1)])], kCols), c2], kCols)], kCols);
    g = sink.op('ScatterElements', [g, kd.ids, upd], rows, [intAttr('axis', 1)]);
  }
  // The label's column: minus c2 (after the top-k scatter, so an id that is also the label gets both).
  if (o.alpha < 1) {
    const atY = sink.op('Sub', [sink.op('GatherElements', [g, yc], col, [intAttr('axis', 1)]), c2], col);
    g = sink.op('ScatterElements', [g, yc, atY], rows, [intAttr('axis', 1)]);
  }
  const gradLogits = sink.op('Reshape', [g, sink.int64([3], [o.batch, o.length, V])], { dtype: f, shape: [o.batch, o.length, V] });
  return { lossSum, tokenCount, gradLogits, parts: { kl: klSum, ce: ceSum, agree } };
}

interface Shapes { rows: TensorMeta; col: TensorMeta; intCol: TensorMeta }
interface KdPieces {
  klRow: string;
  teacherTop: string;
  /** ∂KL/∂s in full [N, V] (full teacher) … */
  gradRows?: string;
  /** … or q ⊙ base [N, 1] with `values` [N, K] at `ids` [N, K] (top-k teacher). */
  base?: string;
  ids?: string;
  values?: string;
}

/** Full teacher logits u [N, V]: log p = logsoftmax(u/T). */
function fullKl(sink: NodeSink, o: Built, s: Shapes, st: { logq: string; q: string; tempered: (x: string) => string }): KdPieces {
  const n = o.batch * o.length;
  const u = sink.op('Reshape', [TEACHER_LOGITS, sink.int64([2], [n, o.vocab])], s.rows);
  const logp = sink.op('LogSoftmax', [st.tempered(u)], s.rows, [intAttr('axis', 1)]);
  const teacherTop = sink.op('ArgMax', [u], s.intCol, [intAttr('axis', 1), intAttr('keepdims', 1)]);
  if (!o.reverse) {
    // KL(p‖q) row = Σ_v p (log p − log q); ∂/∂s = q − p.
    const p = sink.op('Exp', [logp], s.rows);
    const klRow = sink.reduce('ReduceSum', sink.op('Mul', [p, sink.op('Sub', [logp, st.logq], s.rows)], s.rows), [1], true, s.col);
    return { klRow, teacherTop, gradRows: sink.op('Sub', [st.q, p], s.rows) };
  }
  // KL(q‖p) row K = Σ_v q d, d = log q − log p; ∂/∂s = q ⊙ (d − K).
  const d = sink.op('Sub', [st.logq, logp], s.rows);
  const klRow = sink.reduce('ReduceSum', sink.op('Mul', [st.q, d], s.rows), [1], true, s.col);
  return { klRow, teacherTop, gradRows: sink.op('Mul', [st.q, sink.op('Sub', [d, klRow], s.rows)], s.rows) };
}

/** Top-k teacher: k exact buckets and a rest bucket (see the header). */
function topkKl(sink: NodeSink, o: Built, k: number, s: Shapes, st: { logq: string; q: string }): KdPieces {
  const f = DataType.float32;
  const n = o.batch * o.length;
  const kCols: TensorMeta = { dtype: f, shape: [n, k] };
  const c = (v: number): string => sink.float(v, f);
  const rowSum = (x: string): string => sink.reduce('ReduceSum', x, [1], true, s.col);
  const ids = sink.op('Reshape', [TEACHER_TOPK_IDS, sink.int64([2], [n, k])], { dtype: DataType.int64, shape: [n, k] });
  const logP = sink.op('Reshape', [TEACHER_TOPK_LOGP, sink.int64([2], [n, k])], kCols);
  const logPrest = sink.op('Max', [sink.op('Reshape', [TEACHER_REST_LOGP, sink.int64([2], [n, 1])], s.col), c(REST_LOGP_FLOOR)], s.col);
  const P = sink.op('Exp', [logP], kCols);
  const Prest = sink.op('Exp', [logPrest], s.col);
  // Student buckets: log Q_k = log q[id_k]; Q_rest = max(1 − Σ Q_k, floor).
  const logQ = sink.op('GatherElements', [st.logq, ids], kCols, [intAttr('axis', 1)]);
  const Q = sink.op('Exp', [logQ], kCols);
  const Qrest = sink.op('Max', [sink.op('Sub', [c(1), rowSum(Q)], s.col), c(REST_MASS_FLOOR)], s.col);
  const logQrest = sink.op('Log', [Qrest], s.col);
  const teacherTop = sink.op('Slice', [ids, sink.int64([1], [0]), sink.int64([1], [1]), sink.int64([1], [1])], s.intCol);
  if (!o.reverse) {
    const klRow = sink.op('Add', [
      rowSum(sink.op('Mul', [P, sink.op('Sub', [logP, logQ], kCols)], kCols)),
      sink.op('Mul', [Prest, sink.op('Sub', [logPrest, logQrest], s.col)], s.col),
    ], s.col);
    // S = Σ P_k + P_rest; base = S − P_rest/Q_rest; at id_k: Q_k S − P_k.
    const S = sink.op('Add', [rowSum(P), Prest], s.col);
    const base = sink.op('Sub', [S, sink.op('Div', [Prest, Qrest], s.col)], s.col);
    const values = sink.op('Sub', [sink.op('Mul', [Q, S], kCols), P], kCols);
    return { klRow, teacherTop, base, ids, values };
  }
  // d_b = log Q_b − log P_b; K = Σ_b Q_b d_b; base = d_rest − K; at id_k: Q_k (d_k − K).
  const d = sink.op('Sub', [logQ, logP], kCols);
  const dRest = sink.op('Sub', [logQrest, logPrest], s.col);
  const klRow = sink.op('Add', [rowSum(sink.op('Mul', [Q, d], kCols)), sink.op('Mul', [Qrest, dRest], s.col)], s.col);
  const base = sink.op('Sub', [dRest, klRow], s.col);
  const values = sink.op('Mul', [Q, sink.op('Sub', [d, klRow], kCols)], kCols);
  return { klRow, teacherTop, base, ids, values };
}
