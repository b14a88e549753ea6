/**
 * What a training run is asked to do and what it reports: the seam between the engine's training loop
 * (train-model.ts) and whoever starts it (the `train` step, the CLI, tests).
 */
import type { Recipe } from '../../../preload/recipe.ts';
import type { WrittenFolder } from '../rewrite/write-folder.ts';
import type { TrainObjective, ViewAdapter } from './objective.ts';

export interface TrainConfig {
  /** Training text (UTF-8; paragraphs split on blank lines, packed into sequences of `length` + 1 tokens). */
  textPath: string;
  tokenizerPath: string;
  /** Optimizer steps; when absent, `epochs` passes over the text decide the count. */
  steps?: number;
  epochs?: number;
  /** Sequences per micro-batch (B) and tokens per sequence (T): one training graph per (B, T). */
  batch: number;
  length: number;
  /** Micro-batches summed into one optimizer step. */
  accumulate: number;
  /** Peak learning rate (> 0), linear warmup over `warmupSteps`, cosine decay to `lr · minLrRatio`. */
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  /** AdamW's decoupled weight decay (not applied to biases, norms or embeddings). */
  weightDecay: number;
  /** Clip the global gradient norm to this value (0 = no clipping). */
  clipNorm: number;
  /** Weights kept frozen: glob patterns on initializer names, or architecture roles ('q', 'k', 'v', 'o', 'gate', 'up', 'down', 'norm', 'embedding', 'lm_head'). */
  freeze: string[];
  /** Weights that are exactly zero at the start stay exactly zero (pruning masks kept). */
  keepSparsity: boolean;
  /** Held-out text scored every `evalEvery` optimizer steps (and at the start and end). */
  evalTextPath?: string;
  evalEvery: number;
  /** Seed of the data order. */
  seed: number;
  /** Write a checkpoint every this many optimizer steps (and at cancel). */
  checkpointEvery: number;
}

/** One point of the live curves, reported after each optimizer step. */
export interface TrainPoint {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  etaSeconds: number;
  /** Held-out loss, on the steps where it was measured. */
  evalLoss?: number;
  /** The objective's parts per counted token (e.g. distillation's 'kl' and 'ce'). */
  parts?: Record<string, number>;
}

export interface TrainRequest {
  modelPath: string;
  /** Folder the trained model is written into (in the input's own layout). */
  outDir: string;
  /** 'partial' for recipe steps (the runner commits the folder), 'final' for direct callers. */
  deliver: 'partial' | 'final';
  /** The recipe, recorded in the output's whittle.json. */
  recipe?: Recipe;
  /** Where checkpoints live; a resumed run reads the newest one there. */
  checkpointDir: string;
  resume: boolean;
  config: TrainConfig;
  onPoint?: (p: TrainPoint) => void;
  /** What the run minimises (default: next-token cross-entropy). */
  objective?: TrainObjective;
  /** A change to the view (LoRA, fake quantization) and its own write-back. */
  adapter?: ViewAdapter;
}

export interface TrainDetails {
  steps: number;
  tokens: number;
  trainableParameters: number;
  frozenParameters: number;
  firstLoss: number;
  finalLoss: number;
  evalLossBefore?: number;
  evalLossAfter?: number;
  /** The objective's parts on the held-out text per counted token (e.g. distillation's 'agree'), before and after. */
  evalPartsBefore?: Record<string, number>;
  evalPartsAfter?: Record<string, number>;
  tokensPerSecond: number;
  seconds: number;
  /** The step a resumed run continued from. */
  resumedFromStep?: number;
  checkpointDir: string;
  /** The whole curve (one point per optimizer step), so history can redraw it. */
  curve: TrainPoint[];
  /** Where the optimizer steps' time went (seconds over the run's steps). */
  timing: TrainTiming;
}

export interface TrainTiming {
  /** Building micro-batches (token ids and labels). */
  data: number;
  /** The objective's own feeds (a teacher's logits). */
  teacher: number;
  /** onnxruntime: forward, loss and backward of every micro-batch, with the copies in and out. */
  session: number;
  /** Summing micro-batch gradients. */
  accumulate: number;
  /** Global norm, clipping and the AdamW update. */
  optimizer: number;
  /** Held-out loss. */
  evaluate: number;
  checkpoint: number;
}

export interface TrainResult {
  folder: WrittenFolder;
  details: TrainDetails;
}
