/**
 * Next-token scoring of logits (native-kernels/src/logits.cc): per row of [rows, vocab] logits, the NLL
 * of a target token and, for two models over the same rows, KL(p ‖ q) and top-1 agreement.
 *
 *   lse(x) = m + log Σ_v exp(x_v − m), m = max_v x_v             (float64 accumulation)
 *   nll    = lse(x) − x_target
 *   KL     = Σ_v softmax(p)_v · (log softmax(p)_v − log softmax(q)_v)   nats, clamped at 0
 *   top1   = first argmax of p == first argmax of q
 *
 * Logits are float32 or float16 (raw bits in a Uint16Array); p and q may differ. Rows whose target is
 * negative are skipped (their outputs are 0): padding, and the last position of a sample, which predicts
 * nothing. Multi-threaded over rows, AVX2 where the CPU has it; `logitsReference` is the scalar twin.
 * Batches of at most INLINE_LOGITS logits (a fraction of a millisecond of work) run on the calling thread:
 * there a hop to a worker thread and the pool would cost more than the work; the results are the same.
 */
import { callAsync, callSync, checkCount, invalid, load } from './addon.ts';

/** float32 logits, or float16 logits as their raw bits. */
export type LogitsArray = Float32Array | Uint16Array;

/** Per row of a pair: NLL under p, NLL under q, KL(p ‖ q), top-1 match (1 or 0). */
export const PAIR_STRIDE = 4;

/** Up to this many logits (rows · vocab) are scored on the calling thread. */
export const INLINE_LOGITS = 1 << 18;

interface LogitsAddon {
  scoreLogitsInline(out: Float64Array, p: LogitsArray, q: LogitsArray | null, targets: Int32Array, vocab: number): void;
  scoreLogits(out: Float64Array, p: LogitsArray, q: LogitsArray | null, targets: Int32Array, vocab: number): Promise<Float64Array>;
  scoreLogitsRef(out: Float64Array, p: LogitsArray, q: LogitsArray | null, targets: Int32Array, vocab: number): void;
}

const addon = (): LogitsAddon => load() as unknown as LogitsAddon;

function check(p: LogitsArray, q: LogitsArray | null, targets: Int32Array, vocab: number): void {
  checkCount(vocab, 'vocab', 1);
  if (!(targets instanceof Int32Array)) throw invalid('targets must be an Int32Array.');
  for (const [name, a] of [['p', p], ['q', q]] as const) {
    if (a === null) continue;
    if (!(a instanceof Float32Array) && !(a instanceof Uint16Array)) throw invalid(`${name} must be a Float32Array or a Uint16Array of float16 bits.`);
    if (a.length !== targets.length * vocab) {
      throw invalid(`${name} must hold [rows, vocab] = ${targets.length * vocab} logits, but it has ${a.length}.`, { expected: targets.length * vocab, actual: a.length });
    }
  }
}

function score(out: Float64Array, p: LogitsArray, q: LogitsArray | null, targets: Int32Array, vocab: number): Promise<Float64Array> {
  if (p.length > INLINE_LOGITS) return callAsync(() => addon().scoreLogits(out, p, q, targets, vocab));
  try {
    callSync(() => addon().scoreLogitsInline(out, p, q, targets, vocab));
    return Promise.resolve(out);
  } catch (e) {
    return Promise.reject(e as Error);
  }
}

/** NLL of targets[r] under row r of `logits` ([targets.length, vocab]); 0 where targets[r] < 0. */
export async function rowNll(logits: LogitsArray, targets: Int32Array, vocab: number): Promise<Float64Array> {
  check(logits, null, targets, vocab);
  return score(new Float64Array(targets.length), logits, null, targets, vocab);
}

/** Both models' NLL, KL(p ‖ q) and top-1 match per row: [rows, PAIR_STRIDE]; zeros where targets[r] < 0. */
export async function rowCompare(p: LogitsArray, q: LogitsArray, targets: Int32Array, vocab: number): Promise<Float64Array> {
  check(p, q, targets, vocab);
  return score(new Float64Array(targets.length * PAIR_STRIDE), p, q, targets, vocab);
}

/** The scalar, single-threaded references of rowNll / rowCompare. */
export const logitsReference = {
  rowNll(logits: LogitsArray, targets: Int32Array, vocab: number): Float64Array {
    check(logits, null, targets, vocab);
    const out = new Float64Array(targets.length);
    callSync(() => addon().scoreLogitsRef(out, logits, null, targets, vocab));
    return out;
  },
  rowCompare(p: LogitsArray, q: LogitsArray, targets: Int32Array, vocab: number): Float64Array {
    check(p, q, targets, vocab);
    const out = new Float64Array(targets.length * PAIR_STRIDE);
    callSync(() => addon().scoreLogitsRef(out, p, q, targets, vocab));
    return out;
  },
};
