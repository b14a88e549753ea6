/**
 * The learning-rate schedule: linear warmup, then cosine decay (Loshchilov & Hutter, SGDR, arXiv
 * 1608.03983, without restarts), as nanoGPT and most LLM fine-tuning recipes use it.
 *
 * For the 0-based optimizer step s (the first step is 0), peak lr, W warmup steps, S total steps and the
 * floor lr_min = lr · minLrRatio:
 *   s < W:   lr · (s + 1) / W                                   (lr / W at the first step, lr at step W − 1)
 *   s ≥ W:   lr_min + (lr − lr_min) · ½ (1 + cos(π · p)),  p = min(1, (s − W) / (S − W))
 * so the rate is lr at step W and reaches lr_min at step S (past S it stays there).
 */
import { WhittleError } from '../errors.ts';

export interface ScheduleOptions {
  /** Peak learning rate (> 0). */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** The final rate as a fraction of the peak, in [0, 1]. */
  minLrRatio: number;
}

export function learningRateAt(step: number, options: ScheduleOptions): number {
  const { lr, warmupSteps, totalSteps, minLrRatio } = options;
  if (!Number.isSafeInteger(step) || step < 0) throw new WhittleError('INVALID_INPUT', `The schedule's step must be a whole number ≥ 0 (got ${step}).`);
  if (!(lr > 0) || !Number.isFinite(lr)) throw new WhittleError('INVALID_INPUT', `The learning rate must be a number above 0 (got ${lr}).`);
  if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 0) throw new WhittleError('INVALID_INPUT', `Warmup must be a whole number of steps, 0 or more (got ${warmupSteps}).`);
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) throw new WhittleError('INVALID_INPUT', `The total number of steps must be a whole number ≥ 1 (got ${totalSteps}).`);
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) throw new WhittleError('INVALID_INPUT', `The final learning-rate ratio must lie in [0, 1] (got ${minLrRatio}).`);

  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const minLr = lr * minLrRatio;
  const decaySteps = totalSteps - warmupSteps;
  const progress = decaySteps > 0 ? Math.min(1, (step - warmupSteps) / decaySteps) : 1;
  return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
