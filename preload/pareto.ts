/**
 * The Pareto view's math, pure (main collects the points, the renderer redraws the front when the axes
 * change): which runs are not beaten on every axis at once, and the best run under a budget (the "sweet
 * spot" under a size, speed or quality limit).
 *
 *   a dominates b  ⇔  a is no worse than b on every objective and strictly better on at least one.
 *   front          the points no other point dominates; points missing an objective are left out (not
 *                  on the front, not dominating); equal points do not dominate each other, so both stay.
 * This file depends on nothing but metric-direction.ts, so that main, preload and renderer can share it.
 */
import type { MetricDirection } from './metric-direction.ts';

/** One done experiment of a model as a point: its result's figures (null: not measured). */
export interface ParetoPoint {
  id: number;
  name: string;
  kind: string;
  /** What the run did ('GPTQ 4-bit b32'). */
  method: string;
  created: string;
  /** The uncompressed model itself (its figures as a run measured them). */
  original: boolean;
  bytes: number | null;
  bitsPerWeight: number | null;
  perplexity: number | null;
  /** Mean KL against the original model; null unless the run started from the original itself. */
  kl: number | null;
  decodeTokensPerS: number | null;
  prefillMs: number | null;
  /** How its perplexity was measured (text, protocol, length, count); perplexities of different keys do not compare. */
  evaluation: string | null;
  /** Steps from the original (0: it ran on the original; 2: e.g. quantized a pruned model). */
  depth: number;
}

export interface ParetoSet {
  /** The original model: its content sha256 and the path it was last used from. */
  model: { sha256: string; path: string | null };
  points: ParetoPoint[];
  /** The evaluation settings met among the points, most used first, with their points. */
  evaluations: { key: string; ids: number[] }[];
}

export type ParetoX = 'bytes' | 'bitsPerWeight';
export type ParetoY = 'perplexity' | 'kl';

export interface Objective<T> {
  value: (p: T) => number | null;
  direction: MetricDirection;
}

const present = (v: number | null): v is number => v !== null && Number.isFinite(v);

/** a dominates b: no worse on every objective, strictly better on one. False when either misses an objective. */
export function dominates<T>(a: T, b: T, objectives: readonly Objective<T>[]): boolean {
  let strictly = false;
  for (const o of objectives) {
    const va = o.value(a);
    const vb = o.value(b);
    if (!present(va) || !present(vb)) return false;
    const better = o.direction === 'lower' ? va < vb : va > vb;
    const worse = o.direction === 'lower' ? va > vb : va < vb;
    if (worse) return false;
    if (better) strictly = true;
  }
  return strictly;
}

/** The points no other point dominates, among those with every objective measured; sorted by the first objective. */
export function paretoFront<T>(points: readonly T[], objectives: readonly Objective<T>[]): T[] {
  const candidates = points.filter((p) => objectives.every((o) => present(o.value(p))));
  const front = candidates.filter((p) => !candidates.some((q) => q !== p && dominates(q, p, objectives)));
  const first = objectives[0];
  return first ? front.sort((a, b) => (first.value(a)! - first.value(b)!) * (first.direction === 'lower' ? 1 : -1)) : front;
}

/** The two objectives of the chart: x (size) and y (quality), both lower is better. */
export function chartObjectives(x: ParetoX, y: ParetoY): Objective<ParetoPoint>[] {
  return [{ value: (p) => p[x], direction: 'lower' }, { value: (p) => p[y], direction: 'lower' }];
}

/** Limits a point must meet; each limit that is set needs its figure measured. */
export interface ParetoBudget {
  maxBytes?: number | null;
  maxBitsPerWeight?: number | null;
  minTokensPerS?: number | null;
  maxPerplexity?: number | null;
  maxKl?: number | null;
}

/** Whether a point meets every limit set (a point that did not measure a limited figure does not). */
export function withinBudget(p: ParetoPoint, budget: ParetoBudget): boolean {
  const limit = (value: number | null, max: number | null | undefined, min?: boolean): boolean => {
    if (max === null || max === undefined) return true;
    if (!present(value)) return false;
    return min ? value >= max : value <= max;
  };
  return limit(p.bytes, budget.maxBytes) && limit(p.bitsPerWeight, budget.maxBitsPerWeight)
    && limit(p.decodeTokensPerS, budget.minTokensPerS, true) && limit(p.perplexity, budget.maxPerplexity) && limit(p.kl, budget.maxKl);
}

export type ParetoGoal = 'perplexity' | 'kl' | 'bytes' | 'speed';

const GOALS: Record<ParetoGoal, Objective<ParetoPoint>> = {
  perplexity: { value: (p) => p.perplexity, direction: 'lower' },
  kl: { value: (p) => p.kl, direction: 'lower' },
  bytes: { value: (p) => p.bytes, direction: 'lower' },
  speed: { value: (p) => p.decodeTokensPerS, direction: 'higher' },
};

/**
 * The best point within the budget for the goal (lowest perplexity or KL, smallest, or fastest); ties go
 * to the smaller, then the faster, then the older run. Null when no point meets the budget with the goal measured.
 */
export function bestUnderBudget(points: readonly ParetoPoint[], budget: ParetoBudget, goal: ParetoGoal): ParetoPoint | null {
  const g = GOALS[goal];
  const tie: Objective<ParetoPoint>[] = [g, GOALS.bytes, GOALS.speed];
  let best: ParetoPoint | null = null;
  for (const p of points) {
    if (!present(g.value(p)) || !withinBudget(p, budget)) continue;
    if (best === null || isBetter(p, best, tie)) best = p;
  }
  return best;
}

/** Lexicographic: the first objective that differs decides (a missing figure loses); then the lower id. */
function isBetter(a: ParetoPoint, b: ParetoPoint, order: readonly Objective<ParetoPoint>[]): boolean {
  for (const o of order) {
    const va = o.value(a);
    const vb = o.value(b);
    if (present(va) && !present(vb)) return true;
    if (!present(va) && present(vb)) return false;
    if (present(va) && present(vb) && va !== vb) return o.direction === 'lower' ? va < vb : va > vb;
  }
  return a.id < b.id;
}
