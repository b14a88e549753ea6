/**
 * The curve of a resumable training step, kept beside its checkpoints (`curve.jsonl`) so that a resumed
 * run shows and reports the curve from step 1 whatever its checkpoints hold; and the step output whose
 * checkpoints go once it is committed. Shared by the train, classify, distill and KD-QAT steps.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { appendPoint, trainSeriesPoint, type CurvePoint } from '../../../preload/series.ts';
import type { JobContext } from '../job-context.ts';
import type { StepOutput } from '../pipeline/step.ts';
import { CURVE_FILE, removeCheckpoints } from './checkpoint-home.ts';
import type { TrainPoint } from './types.ts';

/** The points an earlier run of the same training recorded in `dir` (none when there are none). */
export async function readCurve(dir: string): Promise<CurvePoint[]> {
  let text: string;
  try {
    text = await readFile(path.join(dir, CURVE_FILE), 'utf8');
  } catch {
    return [];
  }
  let curve: CurvePoint[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      curve = appendPoint(curve, JSON.parse(line) as CurvePoint);
    } catch {
      // A line cut short by a kill: the points before it stand.
    }
  }
  return curve;
}

/**
 * The whole curve of a run that continued `earlier`: the earlier points before the first step of the
 * engine's curve, then the engine's (which may already start at step 1 when its checkpoint kept them).
 */
export function mergeCurves(earlier: readonly CurvePoint[], engine: readonly CurvePoint[]): CurvePoint[] {
  const first = engine[0]?.step ?? Number.POSITIVE_INFINITY;
  return [...earlier.filter((p) => p.step < first), ...engine];
}

/**
 * The curve of a resumable training step kept beside its checkpoints: a resumed run's watchers first see
 * the curve so far (`earlier`), then every point is streamed as a 'train' series point and appended to
 * `curve.jsonl`. `flush` waits for the writes.
 */
export async function curveRecorder(checkpointDir: string, resume: boolean, ctx: JobContext): Promise<{ earlier: CurvePoint[]; onPoint: (p: TrainPoint) => void; flush: () => Promise<void> }> {
  await mkdir(checkpointDir, { recursive: true });
  const earlier = resume ? await readCurve(checkpointDir) : [];
  // A resumed run's watchers see the curve so far first; the engine's points then replace its tail.
  for (const p of earlier) ctx.point?.(trainSeriesPoint(p));
  const curveFile = path.join(checkpointDir, CURVE_FILE);
  let writes: Promise<void> = resume ? Promise.resolve() : appendFile(curveFile, '', { flag: 'w' });
  const onPoint = (p: TrainPoint): void => {
    ctx.point?.(trainSeriesPoint(p));
    const line = `${JSON.stringify(p)}\n`;
    writes = writes.then(() => appendFile(curveFile, line)).catch((e: unknown) => ctx.log('warn', `The curve could not be saved beside the checkpoints: ${(e as Error).message}`));
  };
  return { earlier, onPoint, flush: () => writes };
}

/** The step's output, with its checkpoints removed once the output has its final name (until then a cancel can still resume). */
export function removeCheckpointsOnCommit(output: StepOutput, checkpointDir: string, ctx: JobContext): StepOutput {
  const pending = output.pending;
  if (pending) {
    output.pending = {
      dir: pending.dir,
      finalDir: pending.finalDir,
      discard: () => pending.discard(),
      commit: async () => {
        const committed = await pending.commit();
        await removeCheckpoints(checkpointDir).catch((e: unknown) => ctx.log('warn', `The checkpoints in ${checkpointDir} could not be removed: ${(e as Error).message}`));
        return committed;
      },
    };
  }
  return output;
}
