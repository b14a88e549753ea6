/**
 * Plain float64 reference of the distillation losses (TRAINING.md, "Losses"), written from the
 * definitions and nothing else: rows of logits, softmax at temperature T, KL in either direction,
 * hard-label cross-entropy, and the top-k teacher's k + 1 buckets.
 */

export interface KdSettings { T: number; alpha: number; reverse: boolean }

export interface RefParts { loss: number; kl: number; ce: number; agree: number }

/** log softmax(x / T) of one row. */
export function logSoftmax(row: ArrayLike<number>, T = 1): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i] / T);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] / T - max);
  const lse = max + Math.log(s);
  return Float64Array.from({ length: row.length }, (_, i) => row[i] / T - lse);
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** A top-k teacher row: the k most likely ids (most likely first), their log p at T, and the rest's log-mass. */
export interface TopkRow { ids: number[]; logp: number[]; rest: number }

export function topkOf(teacher: ArrayLike<number>, k: number, T: number): TopkRow {
  const logp = logSoftmax(teacher, T);
  const order = Array.from(logp.keys()).sort((a, b) => logp[b] - logp[a] || a - b);
  const ids = order.slice(0, k);
  const others = order.slice(k).map((i) => logp[i]);
  let rest = -Infinity;
  if (others.length > 0) {
    const m = Math.max(...others);
    rest = m + Math.log(others.reduce((s, v) => s + Math.exp(v - m), 0));
  }
  return { ids, logp: ids.map((i) => logp[i]), rest };
}

/** KL at T of one row over the k + 1 buckets (student rest = 1 − Σ its k bucket probabilities). */
export function topkKlRow(student: ArrayLike<number>, t: TopkRow, T: number, reverse: boolean): number {
  const logq = logSoftmax(student, T);
  const logQ = t.ids.map((i) => logq[i]);
  const Qrest = Math.max(1 - logQ.reduce((s, v) => s + Math.exp(v), 0), 1e-300);
  const buckets: [number, number][] = t.logp.map((lp, j) => [lp, logQ[j]]);
  buckets.push([t.rest, Math.log(Qrest)]);
  let kl = 0;
  for (const [lp, lq] of buckets) {
    if (!reverse) { if (lp > -Infinity) kl += Math.exp(lp) * (lp - lq); } else kl += Math.exp(lq) * (lq - lp);
  }
  return kl;
}

/** KL at T of one row over the whole vocabulary. */
export function fullKlRow(student: ArrayLike<number>, teacher: ArrayLike<number>, T: number, reverse: boolean): number {
  const logq = logSoftmax(student, T);
  const logp = logSoftmax(teacher, T);
  let kl = 0;
  for (let i = 0; i < logq.length; i++) kl += reverse ? Math.exp(logq[i]) * (logq[i] - logp[i]) : Math.exp(logp[i]) * (logp[i] - logq[i]);
  return kl;
}

/**
 * Σ over counted rows (labels ≥ 0) of α T² KL + (1 − α) CE, with z, teacher [N·V] row-major.
 * `topk` rows replace the full teacher when given.
 */
export function kdLoss(z: ArrayLike<number>, labels: number[], V: number, s: KdSettings, teacher: { logits?: ArrayLike<number>; topk?: TopkRow[] }): RefParts {
  const out = { loss: 0, kl: 0, ce: 0, agree: 0 };
  for (let r = 0; r < labels.length; r++) {
    if (labels[r] < 0) continue;
    const zr = Array.from({ length: V }, (_, i) => z[r * V + i]);
    const kl = teacher.topk ? topkKlRow(zr, teacher.topk[r], s.T, s.reverse) : fullKlRow(zr, Array.from({ length: V }, (_, i) => teacher.logits![r * V + i]), s.T, s.reverse);
    const ce = -logSoftmax(zr)[labels[r]];
    const teacherTop = teacher.topk ? teacher.topk[r].ids[0] : argmax(Array.from({ length: V }, (_, i) => teacher.logits![r * V + i]));
    out.kl += kl;
    out.ce += ce;
    out.agree += argmax(zr) === teacherTop ? 1 : 0;
  }
  out.loss = s.alpha * s.T * s.T * out.kl + (1 - s.alpha) * out.ce;
  return out;
}

/** Central differences of the reference loss w.r.t. every logit. */
export function kdLossGradient(z: Float64Array, labels: number[], V: number, s: KdSettings, teacher: { logits?: ArrayLike<number>; topk?: TopkRow[] }, h = 1e-5): Float64Array {
  const g = new Float64Array(z.length);
  const x = Float64Array.from(z);
  for (let i = 0; i < z.length; i++) {
    if (labels[Math.floor(i / V)] < 0) continue; // padding rows: the loss does not read them
    x[i] = z[i] + h;
    const up = kdLoss(x, labels, V, s, teacher).loss;
    x[i] = z[i] - h;
    const down = kdLoss(x, labels, V, s, teacher).loss;
    x[i] = z[i];
    g[i] = (up - down) / (2 * h);
  }
  return g;
}
