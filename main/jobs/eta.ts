/**
 * Time left in the current phase, from the rate observed since the phase began:
 *   rate = (done − done₀) / (t − t₀),  eta = (total − done) / rate.
 * A new phase (or progress going backwards) starts a new observation, with no estimate until the phase
 * has advanced.
 */
export class EtaEstimator {
  private phase: string | null = null;
  private t0 = 0;
  private done0 = 0;
  private lastDone = 0;

  /** `nowMs` in milliseconds; returns seconds left, or null when there is nothing to estimate from. */
  update(phase: string, done: number, total: number, nowMs: number): number | null {
    if (phase !== this.phase || done < this.lastDone) {
      this.phase = phase;
      this.t0 = nowMs;
      this.done0 = done;
      this.lastDone = done;
      return done >= total && total > 0 ? 0 : null;
    }
    this.lastDone = done;
    if (total > 0 && done >= total) return 0;
    const advanced = done - this.done0;
    const elapsedS = (nowMs - this.t0) / 1000;
    if (!(advanced > 0) || !(elapsedS > 0) || !(total > 0)) return null;
    const rate = advanced / elapsedS;
    return Math.round(((total - done) / rate) * 10) / 10;
  }
}
