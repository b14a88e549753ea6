/**
 * One progress bar and one time-left estimate for a whole job, from its plan (progress-plan.ts: the
 * phases in order with their expected costs) and the progress the engine reports phase by phase.
 *
 * Overall progress: the plan's segments laid end to end,
 *   C = Σ_{j < i} cost_j + f · cost_i,   overall = C / Σ_j cost_j,
 * with i the current segment and f = done / total of its phase. A phase met further on in the plan moves
 * to its segment (the ones in between count as done); a phase the plan does not know leaves the bar where
 * it is; overall never decreases.
 *
 * Time left, once some work is observed (after the first segment, usually loading, has finished):
 *   k      = E / C                      seconds per unit of cost, E = time since the first report
 *   T_cur  = w · t_i / Δf + (1 − w) · k · cost_i
 *            the current phase's duration: its own observed rate (t_i seconds for Δf of it), trusted
 *            with weight w = min(1, 4 Δf), blended with the plan's share at the job's rate
 *   eta    = (1 − f) · T_cur + k · Σ_{j > i} cost_j
 * So the first estimate is the plan's proportions scaled by the rate the job has shown so far, and each
 * phase's own rate takes over as it advances.
 */
import type { PlanSegment } from './progress-plan.ts';

export interface OverallProgress {
  /** 0 … 1, never decreasing. */
  overall: number;
  /** Seconds left for the whole job; null until there is something to estimate from. */
  etaSeconds: number | null;
}

export interface SegmentShare { phase: string; share: number }

export class JobEta {
  private readonly plan: readonly PlanSegment[];
  private readonly totalCost: number;
  private index = 0;
  private fraction = 0;
  private t0: number | null = null;
  private segmentStart = 0;
  private segmentFraction0 = 0;
  private overall = 0;

  constructor(plan: readonly PlanSegment[]) {
    this.plan = plan.length > 0 ? plan : [{ phase: 'job', cost: 1 }];
    this.totalCost = this.plan.reduce((s, p) => s + p.cost, 0);
  }

  /** Each segment's share of the job (they add up to 1), for drawing the bar. */
  segments(): SegmentShare[] {
    return this.plan.map((p) => ({ phase: p.phase, share: p.cost / this.totalCost }));
  }

  /** `nowMs` in milliseconds. */
  update(phase: string, done: number, total: number, nowMs: number): OverallProgress {
    if (this.t0 === null) {
      this.t0 = nowMs;
      this.segmentStart = nowMs;
    }
    const f = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
    if (this.plan[this.index].phase !== phase) {
      const next = this.plan.findIndex((p, j) => j > this.index && p.phase === phase);
      if (next > this.index) {
        this.index = next;
        this.fraction = 0;
        this.segmentStart = nowMs;
        this.segmentFraction0 = f;
      }
    }
    if (this.plan[this.index].phase === phase) this.fraction = Math.max(this.fraction, f);

    let completed = this.fraction * this.plan[this.index].cost;
    for (let j = 0; j < this.index; j++) completed += this.plan[j].cost;
    this.overall = Math.max(this.overall, Math.min(1, completed / this.totalCost));
    return { overall: this.overall, etaSeconds: this.estimate(completed, nowMs) };
  }

  private estimate(completed: number, nowMs: number): number | null {
    const last = this.index === this.plan.length - 1;
    if (last && this.fraction >= 1) return 0;
    const elapsed = (nowMs - (this.t0 ?? nowMs)) / 1000;
    // Nothing observed yet: the first segment has not finished.
    if (this.index === 0 && this.fraction < 1) return null;
    if (!(elapsed > 0) || !(completed > 0)) return null;
    const k = elapsed / completed;
    const current = this.plan[this.index];
    let duration = k * current.cost;
    const advanced = this.fraction - this.segmentFraction0;
    const phaseElapsed = (nowMs - this.segmentStart) / 1000;
    if (advanced > 0 && phaseElapsed > 0) {
      const w = Math.min(1, 4 * advanced);
      duration = w * (phaseElapsed / advanced) + (1 - w) * duration;
    }
    let rest = 0;
    for (let j = this.index + 1; j < this.plan.length; j++) rest += this.plan[j].cost;
    const eta = (1 - this.fraction) * duration + k * rest;
    return Math.round(eta * 10) / 10;
  }
}
