/**
 * A streaming histogram of activation values whose range grows with the data, as ONNX Runtime's
 * HistogramCollector.collect_value (onnxruntime/python/tools/quantization/calibrate.py) keeps one:
 *
 *   bins are symmetric around 0: 2m bins of width s over [−T, T], T = m·s; bin i covers
 *   [−T + i·s, −T + (i+1)·s), and x = T falls in the last bin (numpy.histogram's rule).
 *   The first batch with a non-zero value sets T = max|x| and s = T/m (m = bins/2).
 *   A batch reaching beyond T adds k = ⌊(T' − T)/s⌋ + 1 bins on each side (same width, so old counts
 *   move over unchanged — ORT's merge_histogram).
 * Unlike ORT, the bin count is bounded: past 2× the requested bins, adjacent pairs are merged (after
 * padding one empty bin per side when m is odd, so no pair straddles 0). Counts stay exact; the
 * resolution stays between the requested bins and half of them.
 */
export interface HistogramSnapshot {
  /** 2m counts over [−T, T] (see the header), left to right. */
  counts: Float64Array;
  /** T: the histogram covers [−T, T]; 0 while every value seen was 0 (then all counts sit in bin m). */
  threshold: number;
}

export class SymmetricHistogram {
  private counts: Float64Array;
  /** Half the number of bins. */
  private m: number;
  /** Bin width; 0 until a non-zero value has been seen. */
  private s = 0;
  private readonly initialHalf: number;
  /** Values counted while the range was still empty (all exactly 0). */
  private zeros = 0;

  /** `bins`: requested bin count (even, ≥ 2). */
  constructor(bins: number) {
    if (!Number.isInteger(bins) || bins < 2 || bins % 2 !== 0) throw new RangeError(`histogram bins must be an even integer ≥ 2; got ${bins}`);
    this.initialHalf = bins / 2;
    this.m = this.initialHalf;
    this.counts = new Float64Array(bins);
  }

  get bins(): number {
    return 2 * this.m;
  }

  get threshold(): number {
    return this.m * this.s;
  }

  /**
   * Counts every value of `x`; `absMax` = max |x| over it (the caller has it from its min/max pass).
   * Values must be finite.
   */
  add(x: ArrayLike<number>, absMax: number): void {
    if (x.length === 0) return;
    if (this.s === 0) {
      if (absMax === 0) { this.zeros += x.length; return; }
      this.s = absMax / this.m;
      this.counts[this.m] += this.zeros;
      this.zeros = 0;
    } else if (absMax > this.threshold) {
      this.grow(absMax);
    }
    const counts = this.counts;
    const m = this.m;
    const last = 2 * m - 1;
    const inv = 1 / this.s;
    for (let i = 0; i < x.length; i++) {
      let b = Math.floor(x[i] * inv) + m;
      if (b < 0) b = 0;
      else if (b > last) b = last;
      counts[b]++;
    }
  }

  /** Adds k bins per side so that [−T, T] covers `absMax`, then coarsens if over 2× the requested bins. */
  private grow(absMax: number): void {
    const k = Math.floor((absMax - this.threshold) / this.s) + 1;
    this.resize(this.m + k);
    while (this.m > 2 * this.initialHalf) {
      if (this.m % 2 === 1) this.resize(this.m + 1);
      const half = this.m / 2;
      const merged = new Float64Array(2 * half);
      for (let i = 0; i < merged.length; i++) merged[i] = this.counts[2 * i] + this.counts[2 * i + 1];
      this.counts = merged;
      this.m = half;
      this.s *= 2;
    }
  }

  /** Same bin width, `half` bins per side; old counts centred. */
  private resize(half: number): void {
    const next = new Float64Array(2 * half);
    next.set(this.counts, half - this.m);
    this.counts = next;
    this.m = half;
  }

  snapshot(): HistogramSnapshot {
    const counts = this.counts.slice();
    if (this.s === 0) counts[this.m] += this.zeros;
    return { counts, threshold: this.threshold };
  }
}
