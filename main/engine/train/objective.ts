/**
 * What a training run minimises: its loss head and the per-batch signal the head reads beside the labels.
 * Fine-tuning is next-token cross-entropy with nothing more to feed; distillation's objectives build a
 * KD head and feed the teacher's logits (computed by a teacher session, or read from a top-k cache).
 */
import type * as ort from 'onnxruntime-node';
import { crossEntropyHead, type LossHead } from './loss-head.ts';
import type { Batch } from './session.ts';
import type { TrainingView } from './view.ts';

export interface TrainObjective {
  /** The loss head for the student's view (its B, T and vocabulary). */
  head(view: TrainingView): LossHead;
  /** Called once the view exists and before the first step (teacher sessions, caches). */
  prepare?(view: TrainingView): Promise<void>;
  /** The head's own inputs for one micro-batch (training or held-out). */
  feeds?(batch: Batch): Promise<Record<string, ort.Tensor>>;
  /** Releases what prepare() opened. */
  close?(): Promise<void>;
}

/** Next-token cross-entropy: the fine-tuning objective. */
export const languageModelling: TrainObjective = {
  head: (view) => crossEntropyHead(view.batch, view.length, view.vocab),
};
