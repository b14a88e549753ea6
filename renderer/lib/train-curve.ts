/**
 * A training curve for the charts: the points a job streamed (series 'train') or the curve a finished
 * job's details keep, as chart rows (non-finite values left out, so a diverged step shows as a gap), and
 * the figures of the latest point (step, loss, tokens/s, time left).
 */
import { parseStepDetails } from '../../preload/methods.ts';
import { trainPointOf, type CurvePoint, type SeriesPoint } from '../../preload/series.ts';

export interface CurveRow {
  step: number;
  loss: number | null;
  evalLoss: number | null;
  lr: number | null;
  /** Distillation: the KL term, the cross-entropy and the teacher–student top-1 agreement, per token. */
  kl: number | null;
  ce: number | null;
  agree: number | null;
}

const finite = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);

export function curveRows(curve: readonly CurvePoint[]): CurveRow[] {
  return curve.map((p) => ({
    step: p.step, loss: finite(p.loss), evalLoss: finite(p.evalLoss), lr: finite(p.lr), kl: finite(p.parts?.kl), ce: finite(p.parts?.ce), agree: finite(p.parts?.agree),
  }));
}

/** Whether a curve carries an objective's parts (a distillation's). */
/** Most rows a chart draws: longer curves are thinned (every k-th step, held-out points and the last kept). */
export const MAX_CHART_ROWS = 400;

/** The rows a chart draws: all of a short curve; of a long one, every k-th step plus every held-out point and the last. */
export function chartRows(rows: readonly CurveRow[], max = MAX_CHART_ROWS): CurveRow[] {
  if (rows.length <= max) return [...rows];
  const stride = Math.ceil(rows.length / max);
  return rows.filter((r, i) => i % stride === 0 || r.evalLoss !== null || i === rows.length - 1);
}

export function hasParts(curve: readonly CurvePoint[]): boolean {
  return curve.some((p) => p.parts !== undefined && Object.keys(p.parts).length > 0);
}

/** The curve a job has streamed so far. */
export function liveCurve(series: Readonly<Record<string, readonly SeriesPoint[]>>): CurvePoint[] {
  return (series.train ?? []).map(trainPointOf);
}

/** The curve a finished job's details keep (its train or distill step's), or null when it has none. */
export function storedCurve(details: unknown): CurvePoint[] | null {
  const train = parseStepDetails(details).find((s) => s.key === 'train' || s.key === 'distill');
  return train && (train.key === 'train' || train.key === 'distill') ? train.curve.map((p) => ({ ...p })) : null;
}

export interface CurveFigures {
  step: number;
  totalSteps: number;
  loss: number;
  /** The latest held-out loss measured, and the first (before training, or at the first measurement). */
  evalLoss: number | null;
  firstEvalLoss: number | null;
  lr: number;
  tokensPerSecond: number;
  etaSeconds: number;
  /** Distillation: the latest teacher–student top-1 agreement on the training batch (null without parts). */
  agree: number | null;
}

export function curveFigures(curve: readonly CurvePoint[]): CurveFigures | null {
  const last = curve.at(-1);
  if (!last) return null;
  const evals = curve.filter((p) => p.evalLoss !== undefined && Number.isFinite(p.evalLoss));
  return {
    step: last.step, totalSteps: last.totalSteps, loss: last.loss, lr: last.lr, tokensPerSecond: last.tokensPerSecond, etaSeconds: last.etaSeconds,
    evalLoss: evals.at(-1)?.evalLoss ?? null, firstEvalLoss: evals[0]?.evalLoss ?? null,
    agree: finite(last.parts?.agree),
  };
}
