/**
 * What a distillation run is asked to do: the seam between the engine (distill-model.ts) and whoever
 * starts it (the `distill` step, the CLI, tests). The training itself is trainModel's, with the
 * distillation objective; the result and its details extend a training run's.
 */
import type { CalibrationConfig, Recipe } from '../../../preload/recipe.ts';
import type { TrainConfig, TrainDetails, TrainPoint } from '../train/types.ts';
import type { WrittenFolder } from '../rewrite/write-folder.ts';

/** The student: some of the teacher's blocks (DistilBERT initialisation), or a model the user brings. */
export type StudentSpec = { kind: 'blocks'; blocks: number[] } | { kind: 'model'; path: string };

export interface DistillLoss {
  /** Softmax temperature T of both distributions (the KL term is scaled by T²). */
  temperature: number;
  /** Weight α of the KL term; 1 − α weighs cross-entropy on the text's next tokens. */
  alpha: number;
  /** Reverse KL (student ‖ teacher), MiniLLM's token-level objective, instead of forward KL. */
  reverse: boolean;
  /** Weight of hidden-state matching (MSE between mapped teacher and student block outputs); 0 = off. */
  hidden: number;
}

/** Teacher logits computed in the same step, or read from a top-k cache built once before training. */
export type TeacherSignal = { kind: 'logits' } | { kind: 'topk'; k: number };

export interface DistillRequest {
  teacherPath: string;
  student: StudentSpec;
  loss: DistillLoss;
  signal: TeacherSignal;
  /** LoRA adapters instead of full fine-tuning of the student (rank 0 = off). */
  lora?: { rank: number; alpha: number; roles: string[]; dropout?: number };
  /**
   * LoRA on a MatMulNBits student: how the merged weights are quantized again (default RTN); GPTQ
   * calibrates on `calibration` (read with the config's tokenizer).
   */
  requantize?: { method: 'rtn' } | { method: 'gptq'; calibration: CalibrationConfig };
  /**
   * KD-QAT: the student's linear weights trained through fake quantization on MatMulNBits' grid and
   * exported as MatMulNBits; `freezeRoles` ['o', 'v'] is ov-freeze (arXiv 2403.18159).
   */
  qat?: { bits: 4 | 8; blockSize: number; symmetric: boolean; freezeRoles: string[] };
  /** Data, schedule, optimizer, freezing, checkpoints: as a fine-tuning run. */
  config: TrainConfig;
  outDir: string;
  deliver: 'partial' | 'final';
  recipe?: Recipe;
  checkpointDir: string;
  resume: boolean;
  onPoint?: (p: TrainPoint) => void;
}

export interface DistillDetails extends TrainDetails {
  teacher: { path: string; blocks: number; parameters: number };
  student: { blocks: number; keptBlocks: number[] | null; parameters: number };
  loss: DistillLoss;
  signal: TeacherSignal & { cacheBytes?: number; cacheSeconds?: number; klRelativeError?: number; lossRelativeError?: number };
  /** Teacher–student top-1 agreement on the held-out text, before and after. */
  agreementBefore?: number;
  agreementAfter?: number;
  /** Warnings listed with the result (e.g. evaluation text inside the training text). */
  warnings: string[];
}

export interface DistillResult {
  folder: WrittenFolder;
  details: DistillDetails;
}
