/**
 * What a training run minimises: its loss head and the per-batch signal the head reads beside the labels.
 * Fine-tuning is next-token cross-entropy with nothing more to feed; distillation's objectives build a
 * KD head and feed the teacher's logits (computed by a teacher session, or read from a top-k cache).
 */
import type * as ort from 'onnxruntime-node';
import type { JobContext } from '../job-context.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import type { OutputOptions, WrittenFolder } from '../rewrite/write-folder.ts';
import { crossEntropyHead, type LossHead } from './loss-head.ts';
import type { DropoutDraw } from './lora-dropout.ts';
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

/**
 * A change to the view before it is compiled (LoRA adapters, fake quantization) and, when the trained
 * parameters are not the source's own weights, how the result is written (merged adapters, quantized
 * weights). Without `write`, the trained parameters are written back into the source graph by name.
 * `feeds` gives the inputs the adapter added to the view (LoRA's dropout masks) for one training
 * micro-batch (`draw`: its optimizer step and micro-batch) or for an evaluation pass (null).
 */
export interface ViewAdapter {
  apply(view: TrainingView): Promise<TrainingView>;
  feeds?(draw: DropoutDraw | null): Record<string, ort.Tensor>;
  write?(source: OnnxModel, view: TrainingView, weights: Float32Array[], outDir: string, ctx: JobContext, step: unknown, options: OutputOptions): Promise<WrittenFolder>;
}
