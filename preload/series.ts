/**
 * Named series of points a step streams while it runs (a training curve; distillation's losses): one
 * point = the series' name, a step and a few named values. The engine reports them through
 * JobContext.point, the job service sends each as a `job.point` event, and the step's details keep the
 * whole series for the history. Only zod is imported, so main, preload and renderer share it.
 */
import { z } from 'zod';

/** Any JS number, NaN and ±Infinity included (a diverged loss is still a point of the curve). */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

export const SeriesPoint = z.strictObject({
  /** Which series: 'train' for a fine-tune's curve. */
  series: z.string().min(1).max(64),
  /** The optimizer step (or other x), from 1. */
  step: z.int().nonnegative(),
  values: z.record(z.string().min(1).max(64), AnyNumber),
});
export type SeriesPoint = z.infer<typeof SeriesPoint>;

/**
 * Appends a point to a curve kept in step order. A point at a step the curve already has (a run resumed
 * from an earlier checkpoint repeats the steps after it) replaces that step and everything after it.
 */
export function appendPoint<P extends { step: number }>(curve: readonly P[], point: P): P[] {
  const last = curve.at(-1);
  if (last === undefined || point.step > last.step) return [...curve, point];
  return [...curve.filter((p) => p.step < point.step), point];
}

/** appendPoint for several points in order, copying the curve once. */
export function appendPoints<P extends { step: number }>(curve: readonly P[], points: readonly P[]): P[] {
  let out = [...curve];
  for (const point of points) {
    const last = out.at(-1);
    if (last !== undefined && point.step <= last.step) out = out.filter((p) => p.step < point.step);
    out.push(point);
  }
  return out;
}

/** One point of a training curve (main/engine/train/types.ts TrainPoint; methods.ts TrainPointSchema parses it). */
export interface CurvePoint {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  etaSeconds: number;
  evalLoss?: number;
  /** The objective's parts per counted token (distillation: 'kl', 'ce', teacher–student 'agree'). */
  parts?: Record<string, number>;
}

/** The series value key of an objective's part ('part.kl'): apart from the point's own keys. */
const PART = 'part.';

/** A training point as a series point ('train'). */
export function trainSeriesPoint(p: CurvePoint): SeriesPoint {
  const values: Record<string, number> = {
    totalSteps: p.totalSteps, loss: p.loss, lr: p.lr, gradNorm: p.gradNorm, tokensPerSecond: p.tokensPerSecond, etaSeconds: p.etaSeconds,
  };
  if (p.evalLoss !== undefined) values.evalLoss = p.evalLoss;
  for (const [k, v] of Object.entries(p.parts ?? {})) values[`${PART}${k}`] = v;
  return { series: 'train', step: p.step, values };
}

/** A 'train' series point back as a training point (missing values are NaN). */
export function trainPointOf(p: SeriesPoint): CurvePoint {
  const v = (k: string): number => p.values[k] ?? Number.NaN;
  const point: CurvePoint = {
    step: p.step, totalSteps: v('totalSteps'), loss: v('loss'), lr: v('lr'), gradNorm: v('gradNorm'), tokensPerSecond: v('tokensPerSecond'), etaSeconds: v('etaSeconds'),
  };
  if (p.values.evalLoss !== undefined) point.evalLoss = p.values.evalLoss;
  const parts = Object.entries(p.values).filter(([k]) => k.startsWith(PART));
  if (parts.length) point.parts = Object.fromEntries(parts.map(([k, v]) => [k.slice(PART.length), v]));
  return point;
}
