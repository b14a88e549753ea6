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
}

const finite = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);

export function curveRows(curve: readonly CurvePoint[]): CurveRow[] {
  return curve.map((p) => ({ step: p.step, loss: finite(p.loss), evalLoss: finite(p.evalLoss), lr: finite(p.lr) }));
}

/** The curve a job has streamed so far. */
export function liveCurve(series: Readonly<Record<string, readonly SeriesPoint[]>>): CurvePoint[] {
  return (series.train ?? []).map(trainPointOf);
}

/** The curve a finished job's details keep (its train step's), or null when it has none. */
export function storedCurve(details: unknown): CurvePoint[] | null {
  const train = parseStepDetails(details).find((s) => s.key === 'train');
  return train && train.key === 'train' ? train.curve.map((p) => ({ ...p })) : null;
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
}

export function curveFigures(curve: readonly CurvePoint[]): CurveFigures | null {
  const last = curve.at(-1);
  if (!last) return null;
  const evals = curve.filter((p) => p.evalLoss !== undefined && Number.isFinite(p.evalLoss));
  return {
    step: last.step, totalSteps: last.totalSteps, loss: last.loss, lr: last.lr, tokensPerSecond: last.tokensPerSecond, etaSeconds: last.etaSeconds,
    evalLoss: evals.at(-1)?.evalLoss ?? null, firstEvalLoss: evals[0]?.evalLoss ?? null,
  };
}
