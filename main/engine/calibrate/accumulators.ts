/**
 * Per-activation statistics, streamed one batch at a time. A batch is X [rows × d] row-major float32
 * (rows = tokens of the batch, d = the activation's last dimension); it is dropped after `add`.
 *
 *   hessian    H += XᵀX  [d × d] float32 (native hessianAccumulate); GPTQ/SparseGPT scale it by 2/rows.
 *   minmax     running min and max (always kept: percentile and entropy clip to them).
 *   histogram  symmetric histogram whose range grows with the data (histogram.ts).
 *   l2         Σ_rows x_j² per input channel j [d] float64; ‖x_j‖₂ = √l2[j] (Wanda, arXiv 2306.11695).
 */
import { WhittleError } from '../errors.ts';
import { hessianAccumulate, nativeAvailable } from '../native/index.ts';
import { SymmetricHistogram } from './histogram.ts';

export type AccumulatorKind = 'hessian' | 'minmax' | 'histogram' | 'l2';
export const ACCUMULATOR_KINDS: readonly AccumulatorKind[] = ['hessian', 'minmax', 'histogram', 'l2'];

export interface TensorStats {
  name: string;
  d: number;
  /** Rows (tokens) accumulated. */
  rows: number;
  /** Σ XᵀX over all rows, [d × d] row-major. */
  hessian?: Float32Array;
  min?: number;
  max?: number;
  /** Counts of 2m equal bins over [min, max] = [−T, T]. */
  histogram?: { counts: Float64Array; min: number; max: number };
  /** Σ x_j² per input channel. */
  l2?: Float64Array;
}

/** H += XᵀX for X [n × d]: the native kernel (native-kernels/src/hessian.cc). */
type HessianKernel = (h: Float32Array, x: Float32Array, n: number, d: number) => Promise<void>;

/** The native Hessian kernel, or INTERNAL when the addon is not built (checked before any work). */
export function hessianKernel(): HessianKernel {
  if (!nativeAvailable()) throw new WhittleError('INTERNAL', 'The native kernels are not built. Run `npm run build:native`.');
  return hessianAccumulate;
}

export class TensorAccumulator {
  readonly name: string;
  private readonly kinds: ReadonlySet<AccumulatorKind>;
  private readonly bins: number;
  private d = 0;
  private rows = 0;
  private min = Infinity;
  private max = -Infinity;
  private hessian: Float32Array | null = null;
  private histogram: SymmetricHistogram | null = null;
  private l2: Float64Array | null = null;
  private readonly kernel: HessianKernel | null;

  constructor(name: string, kinds: readonly AccumulatorKind[], histogramBins: number) {
    this.name = name;
    this.kinds = new Set(kinds);
    this.bins = histogramBins;
    this.kernel = this.kinds.has('hessian') ? hessianKernel() : null;
  }

  /** Accumulates X [rows × d]; `d` must stay the same from batch to batch. */
  async add(x: Float32Array, d: number): Promise<void> {
    if (d <= 0 || x.length % d !== 0) throw new WhittleError('INTERNAL', `Activation '${this.name}' has ${x.length} values, not a multiple of its width ${d}.`);
    if (this.d === 0) this.allocate(d);
    else if (d !== this.d) {
      throw new WhittleError('UNSUPPORTED_MODEL', `Activation '${this.name}' changed width between batches (${this.d} → ${d}).`, { tensor: this.name });
    }
    const rows = x.length / d;
    if (rows === 0) return;

    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
      throw new WhittleError('UNSUPPORTED_MODEL', `Activation '${this.name}' holds NaN or infinite values on the calibration text; the model overflows, so its statistics would be meaningless.`, { tensor: this.name });
    }
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
    this.histogram?.add(x, Math.max(-lo, hi));
    if (this.l2) {
      const l2 = this.l2;
      for (let r = 0; r < rows; r++) {
        const base = r * d;
        for (let j = 0; j < d; j++) { const v = x[base + j]; l2[j] += v * v; }
      }
    }
    if (this.kernel && this.hessian) await this.kernel(this.hessian, x, rows, d);
    this.rows += rows;
  }

  private allocate(d: number): void {
    this.d = d;
    if (this.kinds.has('hessian')) {
      if (d * d > 2 ** 31) throw new WhittleError('UNSUPPORTED_MODEL', `Activation '${this.name}' is ${d} wide; its Hessian (${d}²) is too large.`, { tensor: this.name });
      this.hessian = new Float32Array(d * d);
    }
    if (this.kinds.has('histogram')) this.histogram = new SymmetricHistogram(this.bins);
    if (this.kinds.has('l2')) this.l2 = new Float64Array(d);
  }

  result(): TensorStats {
    const out: TensorStats = { name: this.name, d: this.d, rows: this.rows };
    if (this.rows > 0) { out.min = this.min; out.max = this.max; }
    if (this.hessian) out.hessian = this.hessian;
    if (this.histogram) {
      const h = this.histogram.snapshot();
      out.histogram = { counts: h.counts, min: -h.threshold, max: h.threshold };
    }
    if (this.l2) out.l2 = this.l2;
    return out;
  }
}
