/**
 * One description per recipe step (per quantization method): what lists and cards call it, what it does
 * in one line, whether it transforms or only analyses the model, what it needs, the options a user sets
 * (recipe field, CLI flag, help), what it outputs, and the schema of the details its step reports.
 *
 * The engine's step runner points at its description (main/engine/pipeline/registry.ts); the CLI, the
 * wizard's method cards, the job service, the history and the result pages read these, so a new method
 * is described here once, beside its recipe schema (recipe.ts) and its step runner.
 * This file only depends on zod so that main, preload and renderer can all share it.
 */
import { z } from 'zod';
import {
  CalibrationConfig, PruneMagnitudeStep, PruneSparseGptStep, PruneStructuredStep, PruneWandaStep, StructuredImportance, TaylorAggregate,
  QuantizeFp16Step, QuantizeGptqStep, QuantizeInt8DynamicStep, QuantizeInt8StaticStep, QuantizeQatStep, QuantizeRtnStep, SensitivityStep, TrainStep, DistillStep,
  type Recipe, type Step,
} from './recipe.ts';

// ── traits ──────────────────────────────────────────────────────────────────────────────────────────

/** A transform writes a new model (compared with the original afterwards); an analysis leaves it as it is. */
export type StepKind = 'transform' | 'analysis';

/** Statistics a step gathers from calibration activations. */
export type CalibrationStatistic = 'hessian' | 'minmax' | 'histogram' | 'l2';

export interface StepNeeds {
  /** The recipe's tokenizer (to turn calibration or scoring text into tokens). */
  tokenizer?: boolean;
  /** Statistics of the activations on calibration text. */
  calibration?: readonly CalibrationStatistic[];
  /** Calibration through the already transformed layers, layer by layer. */
  sequentialCalibration?: boolean;
  /** Gradients (training, distillation). */
  gradients?: boolean;
}

export interface StepTraits {
  kind: StepKind;
  needs: StepNeeds;
  /** The name in lists and cards ('GPTQ — error-compensating'). */
  title: string;
  /**
   * The comparison also measures each model's size compressed: what a step gains there only (zeros that do
   * not shrink an ONNX file) shows nowhere else.
   */
  measuresCompressedSize?: boolean;
  /**
   * The step writes checkpoints a later job can continue from (`resume` in its recipe step): the job
   * records the checkpoint folder, and the history offers "Resume" for an interrupted or cancelled run.
   */
  resumable?: boolean;
  /** The named series of points the step streams while it runs (job.point events), e.g. 'train'. */
  series?: string;
}

/** Registry key of a step: its type, and for quantize steps the method too ('quantize:rtn'). */
export type StepKey = { [S in Step as S['type']]: S extends { method: infer M extends string } ? `${S['type']}:${M}` : S['type'] }[Step['type']];

export function stepKey(step: Pick<Step, 'type'> & { method?: string }): StepKey {
  return (step.method !== undefined ? `${step.type}:${step.method}` : step.type) as StepKey;
}

/** One option of a method: the recipe field, the `whittle quantize` flag that sets it (if any), what it does. */
export interface MethodOption {
  field: string;
  flag: string | null;
  help: string;
}

export interface StepDescription<K extends StepKey = StepKey> extends StepTraits {
  key: K;
  type: Step['type'];
  /** The quantization method, or null for a step type without methods. */
  method: string | null;
  /** Short name for tables and CLI listings ('GPTQ'). */
  short: string;
  /** One line: what it costs and what it gives. */
  summary: string;
  /** How a job whose first step is of this type starts its default name ('Quantize model.onnx'). */
  jobTitle: string;
  /** The recipe step's schema (recipe.ts); its defaults are the method's defaults. */
  schema: z.ZodType;
  options: readonly MethodOption[];
  /** What the step writes or reports. */
  outputs: string;
  /** The schema of the step's `details`, checked by the runner when the step reports them. */
  details: z.ZodType;
}

// ── details ─────────────────────────────────────────────────────────────────────────────────────────

/** A number as JSON carries it here: NaN and ±Infinity are kept (a diverged error is still a result). */
const real = z.custom<number>((v) => typeof v === 'number', 'a number');
const count = z.int().min(0);

export const SkippedWeight = z.looseObject({ name: z.string(), reason: z.string() });
export const QuantizedWeight = z.looseObject({
  name: z.string(), shape: z.array(z.int()), bits: z.int().optional(), sqError: real,
  /** GPTQ: ‖X·W − X·Ŵ‖² over the calibration activations. */
  loss: real.optional(),
  deadInputs: count.optional(),
});

/** What every step that writes a model folder adds (quantize/step.ts folderStepOutput). */
const folderDetails = { outputDir: z.string(), outputBytes: count, modelBytes: count };

const weightOnlyDetails = {
  ...folderDetails,
  format: z.enum(['matmulnbits', 'qdq']), bits: z.int(), blockSize: z.int(), symmetric: z.boolean(), accuracyLevel: z.int(),
  quantized: count, quantizedWeights: z.array(QuantizedWeight), skipped: z.array(SkippedWeight), sqError: real,
  /** What the user should know about the result (many weights skipped for a reason they can change). Absent in older results. */
  warnings: z.array(z.string()).optional(),
};

export const RtnDetails = z.looseObject({ method: z.literal('rtn'), ...weightOnlyDetails });
export const GptqDetails = z.looseObject({
  method: z.literal('gptq'), ...weightOnlyDetails,
  percdamp: z.number(), actOrder: z.boolean(), columnBlock: z.int(), calibration: CalibrationConfig,
  /** Absent in results of versions that only calibrated in one pass. */
  sequential: z.boolean().optional(),
  hessians: z.array(z.looseObject({ tensor: z.string(), d: z.int(), rows: z.int(), weights: z.array(z.string()) })),
});
export const Fp16Details = z.looseObject({
  method: z.literal('fp16'), ...folderDetails,
  converted: count, keptFp32: z.array(z.looseObject({ name: z.string(), reason: z.string() })), blockOps: z.array(z.string()), keepIoTypes: z.boolean(),
  fp32Nodes: z.array(z.looseObject({ name: z.string(), op: z.string(), reason: z.string() })), casts: count, warnings: z.array(z.string()),
});
export const Int8DynamicDetails = z.looseObject({
  method: z.literal('int8-dynamic'), ...folderDetails,
  format: z.enum(['matmulinteger', 'dynamic-quantize-matmul']), perChannel: z.boolean(),
  quantized: count, quantizedWeights: z.array(QuantizedWeight), skipped: z.array(SkippedWeight), activationCasts: count, sqError: real,
});
export const Int8StaticDetails = z.looseObject({
  method: z.literal('int8-static'), ...folderDetails,
  format: z.literal('qdq'), bits: z.literal(8), rangeMethod: z.enum(['minmax', 'percentile', 'entropy']), percentile: z.number().optional(), entropyBins: z.int().optional(),
  activationType: z.enum(['uint8', 'int8']), perChannel: z.boolean(), weightGranularity: z.string(), weightGranularityNote: z.string().optional(),
  calibration: CalibrationConfig, quantized: count, quantizedWeights: z.array(QuantizedWeight), activations: z.array(z.looseObject({})),
  skipped: z.array(SkippedWeight), skippedNodes: z.array(z.looseObject({ name: z.string(), op: z.string(), reason: z.string() })), sqError: real,
});
export const SensitivityRow = z.looseObject({ name: z.string(), kl: real, bits: z.int(), params: count, weights: z.array(z.string()) });
export const SensitivityDetails = z.looseObject({
  analysis: z.literal('sensitivity'), granularity: z.enum(['weight', 'block']), method: z.string(),
  quantize: z.looseObject({ method: z.enum(['rtn', 'gptq']), bits: z.int(), blockSize: z.int(), symmetric: z.boolean() }),
  metric: z.string(), samples: count, tokens: count, sensitivity: z.array(SensitivityRow),
  baseline: z.looseObject({ kl: real, params: count }).nullable(),
});

/** One pruned weight: its shape, the zeros it got (sparsity = zeros / params), its block, and the method's facts (SparseGPT: OBS loss). */
export const PrunedWeight = z.looseObject({
  name: z.string(), shape: z.array(z.int()), block: z.int().nullable(), role: z.string(), params: count, zeros: count, sparsity: real,
  /** The sparsity asked of this weight (the allocation's share for its block). */
  target: real,
  /** SparseGPT: ½ Σ err² the sweep predicts (units of H). */
  loss: real.optional(),
  deadInputs: count.optional(),
});
/** Sparsity per transformer block (null: outside the blocks), with OWL's outlier ratio where measured. */
export const PrunedBlock = z.looseObject({ block: z.int().nullable(), params: count, zeros: count, sparsity: real, target: real, outlierRatio: real.optional() });

export const UnstructuredPruneDetails = z.looseObject({
  method: z.enum(['magnitude', 'wanda', 'sparsegpt']), ...folderDetails,
  /** The overall sparsity asked (the pattern's 1 − N/M with a pattern). */
  sparsity: real,
  pattern: z.string().nullable(), scope: z.enum(['layer', 'global']), allocation: z.enum(['uniform', 'owl']),
  /** Zeros / parameters over the pruned weights. */
  achievedSparsity: real,
  /** Parameters of the pruned weights, and of the whole model's float weights. */
  prunedParams: count, zeros: count,
  pruned: count, prunedWeights: z.array(PrunedWeight), blocks: z.array(PrunedBlock), skipped: z.array(SkippedWeight),
  calibration: CalibrationConfig.optional(), sequential: z.boolean().optional(),
  /** SparseGPT joint mode: the kept weights quantized in the same sweep (MatMulNBits). */
  quantize: z.looseObject({ bits: z.int(), blockSize: z.int(), symmetric: z.boolean(), accuracyLevel: z.int() }).nullable().optional(),
  /** What the user should know: unstructured zeros do not shrink the ONNX file nor speed up onnxruntime's CPU kernels. */
  notes: z.array(z.string()),
  warnings: z.array(z.string()),
});

/** One structured removal: the block, what was removed there (head, neuron or block indices) and the parameters it took. */
export const StructuredRemoval = z.looseObject({ block: z.int().nullable(), removed: z.array(z.int()), kept: count, params: count });
export const StructuredPruneDetails = z.looseObject({
  method: z.literal('structured'), ...folderDetails,
  target: z.enum(['heads', 'neurons', 'layers']), ratio: real.nullable(), count: count.nullable(),
  importance: StructuredImportance,
  taylorAggregate: TaylorAggregate.optional(),
  /** Parameters of the model before and after the surgery. */
  paramsBefore: count, paramsAfter: count,
  removals: z.array(StructuredRemoval),
  calibration: CalibrationConfig.optional(),
  warnings: z.array(z.string()),
});

/** One point of a training curve (main/engine/train/types.ts TrainPoint): after each optimizer step. */
export const TrainPointSchema = z.looseObject({
  step: count, totalSteps: count, loss: real, lr: real, gradNorm: real, tokensPerSecond: real, etaSeconds: real,
  /** Held-out loss, on the steps where it was measured. */
  evalLoss: real.optional(),
  /** The objective's parts per counted token (distillation's KL and cross-entropy). */
  parts: z.record(z.string(), real).optional(),
});
export type TrainPointDetails = z.infer<typeof TrainPointSchema>;

/** What every training run reports (fine-tuning and distillation): steps, losses, the curve, where the time went. */
const trainRunDetails = {
  ...folderDetails,
  steps: count, tokens: count, trainableParameters: count, frozenParameters: count,
  firstLoss: real, finalLoss: real, evalLossBefore: real.optional(), evalLossAfter: real.optional(),
  tokensPerSecond: real, seconds: real,
  /** The step a resumed run continued from, and the experiment it continued. */
  resumedFromStep: count.optional(), resumedFromExperiment: z.int().positive().optional(),
  /** Where the checkpoints were written (removed once the job has succeeded). */
  checkpointDir: z.string(),
  /** The settings the run used (warmup resolved). */
  config: z.looseObject({ batch: z.int(), length: z.int(), accumulate: z.int(), lr: real, warmupSteps: count, freeze: z.array(z.string()) }),
  /** The whole curve, one point per optimizer step (a resumed run's includes the steps before it). */
  curve: z.array(TrainPointSchema),
  /** Seconds spent on data, onnxruntime (forward + backward), accumulation, the optimizer, held-out loss and checkpoints. */
  timing: z.looseObject({ data: real, teacher: real.optional(), session: real, accumulate: real, optimizer: real, evaluate: real, checkpoint: real }).optional(),
};

export const TrainDetailsSchema = z.looseObject({ objective: z.literal('lm'), ...trainRunDetails });

/** Per-class precision, recall and F1 on the held-out examples (main/engine/evaluate/accuracy.ts). */
export const ClassMetricsSchema = z.looseObject({ class: z.string(), precision: real, recall: real, f1: real, support: count });

/** Accuracy of a classifier on held-out examples (the evaluation's accuracy section, a classify step's held-out split). */
export const AccuracyDetailsSchema = z.looseObject({
  file: z.string(), count, classes: z.array(z.string()), accuracy: real, macroF1: real,
  perClass: z.array(ClassMetricsSchema), confusion: z.array(z.array(count)),
});
export type AccuracyDetails = z.infer<typeof AccuracyDetailsSchema>;

/** A classification fine-tune's details (main/engine/train/classify-step.ts). */
export const ClassifyDetailsSchema = z.looseObject({
  objective: z.literal('classify'), ...folderDetails,
  steps: count, examples: count, classes: z.array(z.string()), trainableParameters: count, frozenParameters: count,
  firstLoss: real, finalLoss: real, trainAccuracy: real, headAdded: z.boolean(), seconds: real,
  resumedFromStep: count.optional(), resumedFromExperiment: z.int().positive().optional(),
  checkpointDir: z.string(),
  config: z.looseObject({ batch: z.int(), length: z.int(), lr: real, warmupSteps: count, freeze: z.array(z.string()) }),
  curve: z.array(TrainPointSchema),
  /** The labelled file, its columns and split. */
  labels: z.looseObject({ file: z.string(), textColumn: z.string(), labelColumn: z.string(), heldOut: real, seed: z.int(), trainExamples: count, heldOutExamples: count }),
  /** The result's accuracy on the held-out split. */
  heldOutAccuracy: AccuracyDetailsSchema,
  /** Classification distillation: the teacher and its loss weights. */
  teacher: z.looseObject({ model: z.string(), temperature: real, alpha: real }).optional(),
});

/** A train step's details: next-token ('lm') or classification ('classify'). */
export const TrainStepDetailsSchema = z.discriminatedUnion('objective', [TrainDetailsSchema, ClassifyDetailsSchema]);

/** A distillation's details (main/engine/distill/types.ts DistillDetails): a training run's, with the teacher, the student and the KD settings. */
export const DistillDetailsSchema = z.looseObject({
  objective: z.literal('distill'), ...trainRunDetails,
  teacher: z.looseObject({ path: z.string(), blocks: count, parameters: count }),
  student: z.looseObject({ blocks: count, keptBlocks: z.array(z.int()).nullable(), parameters: count }),
  loss: z.looseObject({ temperature: real, alpha: real, reverse: z.boolean(), hidden: real }),
  signal: z.looseObject({ kind: z.enum(['logits', 'topk']), k: z.int().optional(), cacheBytes: count.optional(), cacheSeconds: real.optional(), klRelativeError: real.optional(), lossRelativeError: real.optional() }),
  /** Teacher–student top-1 agreement on the held-out text, before and after. */
  agreementBefore: real.optional(), agreementAfter: real.optional(),
  warnings: z.array(z.string()),
});

/** KD-QAT's details (main/engine/quantize/qat-step.ts): a distillation run's, with the quantization grid and the frozen roles. */
export const QatDetailsSchema = z.looseObject({
  method: z.literal('qat'), ...trainRunDetails,
  bits: z.int(), blockSize: z.int(), symmetric: z.boolean(), accuracyLevel: z.int(),
  /** Roles kept in float during training (['o', 'v']: ov-freeze), quantized at export. */
  freezeRoles: z.array(z.string()),
  /** MatMulNBits weights in the result. */
  quantized: count,
  loss: z.looseObject({ temperature: real, alpha: real }),
  agreementBefore: real.optional(), agreementAfter: real.optional(),
  warnings: z.array(z.string()),
});

// ── the descriptions ────────────────────────────────────────────────────────────────────────────────

const weightOnlyOptions: readonly MethodOption[] = [
  { field: 'bits', flag: 'bits', help: 'bits per weight: 2, 4 or 8' },
  { field: 'blockSize', flag: 'block-size', help: 'weights per block along K, a power of two from 16 to 256' },
  { field: 'symmetric', flag: 'symmetric', help: 'symmetric quantization (no zero points)' },
  { field: 'accuracyLevel', flag: 'accuracy-level', help: 'MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 (the fast CPU kernel)' },
  { field: 'format', flag: 'format', help: 'matmulnbits (one fused ONNX Runtime operator) or qdq (DequantizeLinear → MatMul, portable)' },
  { field: 'overrides', flag: '8bit', help: 'weights whose name matches a pattern get other bits (mixed precision)' },
  { field: 'keep', flag: 'keep', help: 'weights whose name matches a pattern stay in full precision' },
];

const calibrationOptions: readonly MethodOption[] = [
  { field: 'calibration.text', flag: 'calib-text', help: 'a UTF-8 calibration text, best not the evaluation text' },
  { field: 'calibration.samples', flag: 'calib-samples', help: 'calibration sequences N' },
  { field: 'calibration.length', flag: 'calib-len', help: 'tokens per calibration sequence L' },
  { field: 'calibration.seed', flag: 'seed', help: 'seed for drawing the calibration sequences' },
];

const int8Options: readonly MethodOption[] = [
  { field: 'perChannel', flag: 'per-channel', help: 'one weight scale per output channel (the default)' },
  { field: 'perChannel', flag: 'no-per-channel', help: 'one weight scale per tensor' },
];

const QUANTIZE_OUTPUTS = 'A model folder (model.onnx, its weights, whittle.json) compared with the original.';

export const RTN = {
  key: 'quantize:rtn', type: 'quantize', method: 'rtn', kind: 'transform', needs: {} as StepNeeds,
  title: 'RTN — round to nearest', short: 'RTN', jobTitle: 'Quantize',
  summary: 'Fastest; rounds each weight block to the nearest level. Good at 8-bit, noticeably lossy at 4-bit on small models.',
  schema: QuantizeRtnStep, options: weightOnlyOptions, outputs: QUANTIZE_OUTPUTS, details: RtnDetails,
} as const satisfies StepDescription<'quantize:rtn'>;

export const GPTQ = {
  key: 'quantize:gptq', type: 'quantize', method: 'gptq', kind: 'transform', needs: { tokenizer: true, calibration: ['hessian'], sequentialCalibration: true } as StepNeeds,
  title: 'GPTQ — error-compensating', short: 'GPTQ', jobTitle: 'Quantize',
  summary: 'Same size as RTN; corrects each rounding error using real activations, so 4-bit loses less. Needs a calibration pass.',
  schema: QuantizeGptqStep,
  options: [
    ...weightOnlyOptions, ...calibrationOptions,
    { field: 'actOrder', flag: 'act-order', help: 'quantize input features in order of decreasing Hessian diagonal (act-order)' },
    { field: 'percdamp', flag: 'percdamp', help: "dampening added to the Hessian's diagonal, a fraction of its mean" },
    { field: 'columnBlock', flag: null, help: 'columns swept together before the lazy batch update' },
    { field: 'sequential', flag: 'one-pass', help: 'calibrate in one pass over the original model instead of level by level on the already-quantized one (faster, less accurate)' },
  ],
  outputs: `${QUANTIZE_OUTPUTS} Reports the GPTQ loss of every weight.`, details: GptqDetails,
} as const satisfies StepDescription<'quantize:gptq'>;

export const QAT = {
  key: 'quantize:qat', type: 'quantize', method: 'qat', kind: 'transform', needs: { tokenizer: true, gradients: true } as StepNeeds, resumable: true, series: 'train',
  title: 'KD-QAT (quantization-aware training)', short: 'KD-QAT', jobTitle: 'Quantize',
  summary: "Trains the model through 4- or 8-bit fake quantization, distilled from its own float weights, then exports MatMulNBits: the same size as RTN and GPTQ, lower perplexity. Needs a training text; minutes to hours on a CPU.",
  schema: QuantizeQatStep,
  options: [
    { field: 'bits', flag: 'bits', help: 'bits per weight: 4 or 8' },
    { field: 'blockSize', flag: 'block-size', help: 'weights per block along K, a power of two from 16 to 256' },
    { field: 'symmetric', flag: 'symmetric', help: 'symmetric quantization (no zero points)' },
    { field: 'freezeRoles', flag: 'freeze-roles', help: 'roles kept in float while training and quantized only at export, comma-separated; o,v is ov-freeze' },
    { field: 'text', flag: 'text', help: 'the UTF-8 training text (paragraphs separated by blank lines); must not hold the evaluation text' },
    { field: 'evalText', flag: null, help: 'held-out text whose loss and agreement with the float model are measured during training' },
    { field: 'steps', flag: 'steps', help: 'optimizer steps (give this or epochs)' },
    { field: 'epochs', flag: null, help: 'passes over the training text (give this or steps)' },
    { field: 'batch', flag: 'batch', help: 'sequences per micro-batch B (default 8)' },
    { field: 'length', flag: 'len', help: 'tokens per sequence T (default 64)' },
    { field: 'lr', flag: 'lr', help: 'peak learning rate, above 0 (default 2e-4)' },
    { field: 'warmup', flag: null, help: 'linear warmup steps (default about a tenth of the run, at most 100)' },
    { field: 'temperature', flag: 'temperature', help: 'softmax temperature T of the float teacher and the quantized student (default 2)' },
    { field: 'alpha', flag: 'alpha', help: "weight α of the teacher's term (default 0.5); 1 − α weighs the text's own next tokens" },
    { field: 'seed', flag: 'seed', help: 'seed of the data order (default 0)' },
    { field: 'checkpointEvery', flag: null, help: 'write a checkpoint every this many steps, and at cancel (default 25)' },
  ],
  outputs: `${QUANTIZE_OUTPUTS} Reports the training curve, the frozen roles and the quantized weights.`,
  details: QatDetailsSchema,
} as const satisfies StepDescription<'quantize:qat'>;

export const FP16 = {
  key: 'quantize:fp16', type: 'quantize', method: 'fp16', kind: 'transform', needs: {} as StepNeeds,
  title: 'FP16 — half precision', short: 'FP16', jobTitle: 'Quantize',
  summary: 'Halves every float tensor; norms and Softmax stay in float32. About half the size, nearly the same answers.',
  schema: QuantizeFp16Step,
  options: [
    { field: 'keepIoTypes', flag: 'keep-io-types', help: 'keep float32 graph inputs and outputs (the default)' },
    { field: 'keepIoTypes', flag: 'no-keep-io-types', help: 'make the graph inputs and outputs float16 too' },
    { field: 'blockOps', flag: null, help: 'operators that keep computing in float32 behind Casts' },
    { field: 'keep', flag: 'keep', help: 'node or initializer names that stay in float32' },
  ],
  outputs: `${QUANTIZE_OUTPUTS} Reports what stayed in float32 and why.`, details: Fp16Details,
} as const satisfies StepDescription<'quantize:fp16'>;

export const INT8_DYNAMIC = {
  key: 'quantize:int8-dynamic', type: 'quantize', method: 'int8-dynamic', kind: 'transform', needs: {} as StepNeeds,
  title: 'INT8 dynamic', short: 'INT8 dynamic', jobTitle: 'Quantize',
  summary: 'Int8 weights per channel; activations quantized on the fly at run time. About a quarter of float32, no calibration.',
  schema: QuantizeInt8DynamicStep,
  options: [
    { field: 'format', flag: 'format', help: 'matmulinteger (standard ONNX) or dynamic-quantize-matmul (one fused ONNX Runtime operator)' },
    ...int8Options,
    { field: 'keep', flag: 'keep', help: 'weights whose name matches a pattern stay in full precision' },
  ],
  outputs: QUANTIZE_OUTPUTS, details: Int8DynamicDetails,
} as const satisfies StepDescription<'quantize:int8-dynamic'>;

export const INT8_STATIC = {
  key: 'quantize:int8-static', type: 'quantize', method: 'int8-static', kind: 'transform', needs: { tokenizer: true, calibration: ['minmax', 'histogram'] } as StepNeeds,
  title: 'INT8 static (QDQ)', short: 'INT8 static', jobTitle: 'Quantize',
  summary: 'Int8 weights and activations with ranges measured on calibration text; portable QDQ graph, depends on the calibration.',
  schema: QuantizeInt8StaticStep,
  options: [
    ...calibrationOptions,
    { field: 'rangeMethod', flag: 'range', help: 'activation range from minmax, percentile or entropy (KL)' },
    { field: 'percentile', flag: 'percentile', help: 'with the percentile range: the percentile of |x| kept' },
    { field: 'entropyBins', flag: null, help: 'entropy (KL) calibration: quantized bins' },
    { field: 'activationType', flag: 'activation-type', help: 'uint8 (asymmetric) or int8 (symmetric) activations' },
    { field: 'exclude', flag: 'exclude', help: 'nodes whose name matches a pattern stay in float' },
    ...int8Options,
    { field: 'keep', flag: 'keep', help: 'weights whose name matches a pattern stay in full precision' },
  ],
  outputs: `${QUANTIZE_OUTPUTS} Reports the activation ranges and the nodes left in float.`, details: Int8StaticDetails,
} as const satisfies StepDescription<'quantize:int8-static'>;

export const SENSITIVITY = {
  key: 'sensitivity', type: 'sensitivity', method: null, kind: 'analysis', needs: { tokenizer: true } as StepNeeds,
  title: 'Per-layer sensitivity', short: 'Sensitivity', jobTitle: 'Sensitivity of',
  summary: 'For each weight (or block), the KL against the original when only it is quantized: which layers to keep at more bits.',
  schema: SensitivityStep,
  options: [
    { field: 'quantize', flag: null, help: 'the RTN or GPTQ settings each candidate is quantized with' },
    { field: 'granularity', flag: null, help: 'one candidate per weight or per transformer block' },
    { field: 'samples', flag: null, help: 'sequences of the calibration text scored per candidate' },
    { field: 'calibration', flag: null, help: 'the text the candidates are scored on' },
  ],
  outputs: 'A ranking of the candidates by KL; the model is not changed.', details: SensitivityDetails,
} as const satisfies StepDescription<'sensitivity'>;

const PRUNE_OUTPUTS = 'A model folder (model.onnx, its weights, whittle.json) compared with the original, with the sparsity of every weight and block.';
const UNSTRUCTURED_NOTE = 'unstructured zeros do not shrink the ONNX file and do not speed up onnxruntime\'s CPU kernels; compare the compressed size';

const unstructuredOptions: readonly MethodOption[] = [
  { field: 'sparsity', flag: 'sparsity', help: 'fraction of the weights set to zero, between 0 and 1 (0.5 = half)' },
  { field: 'pattern', flag: 'pattern', help: 'N:M semi-structured sparsity: keep N of every M consecutive inputs (2:4, 4:8)' },
  { field: 'allocation', flag: 'allocation', help: 'uniform (every block the same sparsity) or owl (blocks with more activation outliers pruned less, same overall sparsity)' },
  { field: 'keep', flag: 'keep', help: 'weights whose name matches a pattern stay dense' },
];
const sequentialOption: MethodOption = {
  field: 'sequential', flag: 'one-pass', help: 'calibrate in one pass over the original model instead of level by level on the already-pruned one (faster, less accurate)',
};

export const PRUNE_MAGNITUDE = {
  key: 'prune:magnitude', type: 'prune', method: 'magnitude', kind: 'transform', needs: {} as StepNeeds, measuresCompressedSize: true,
  title: 'Magnitude — smallest weights', short: 'Magnitude', jobTitle: 'Prune',
  summary: `Fastest, no calibration; zeroes the smallest weights. Loses much more than Wanda or SparseGPT at 50 %; ${UNSTRUCTURED_NOTE}.`,
  schema: PruneMagnitudeStep,
  options: [
    ...unstructuredOptions,
    { field: 'scope', flag: 'scope', help: 'layer: the same sparsity in every weight; global: the smallest weights of all weights together' },
    ...calibrationOptions,
  ],
  outputs: PRUNE_OUTPUTS, details: UnstructuredPruneDetails,
} as const satisfies StepDescription<'prune:magnitude'>;

export const PRUNE_WANDA = {
  key: 'prune:wanda', type: 'prune', method: 'wanda', kind: 'transform', needs: { tokenizer: true, calibration: ['l2'], sequentialCalibration: true } as StepNeeds, measuresCompressedSize: true,
  title: 'Wanda — weights × activations', short: 'Wanda', jobTitle: 'Prune',
  summary: `Prunes by |weight| × input activation norm from a short calibration pass; no weight update, fast, far better than magnitude; ${UNSTRUCTURED_NOTE}.`,
  schema: PruneWandaStep,
  options: [...unstructuredOptions, ...calibrationOptions, sequentialOption],
  outputs: PRUNE_OUTPUTS, details: UnstructuredPruneDetails,
} as const satisfies StepDescription<'prune:wanda'>;

export const PRUNE_SPARSEGPT = {
  key: 'prune:sparsegpt', type: 'prune', method: 'sparsegpt', kind: 'transform', needs: { tokenizer: true, calibration: ['hessian'], sequentialCalibration: true } as StepNeeds, measuresCompressedSize: true,
  title: 'SparseGPT — error-compensating', short: 'SparseGPT', jobTitle: 'Prune',
  summary: `Chooses the mask and updates the kept weights to compensate (like GPTQ); slower than Wanda, best quality; can quantize to 4-bit in the same pass; ${UNSTRUCTURED_NOTE}.`,
  schema: PruneSparseGptStep,
  options: [
    ...unstructuredOptions, ...calibrationOptions, sequentialOption,
    { field: 'quantize.bits', flag: 'quantize-bits', help: 'also quantize the kept weights to this many bits in the same sweep (MatMulNBits)' },
    { field: 'quantize.blockSize', flag: 'block-size', help: 'with --quantize-bits: weights per quantization block along K' },
    { field: 'percdamp', flag: 'percdamp', help: "dampening added to the Hessian's diagonal, a fraction of its mean" },
    { field: 'columnBlock', flag: null, help: 'columns swept together before the lazy batch update' },
    { field: 'maskBlock', flag: null, help: 'inputs per adaptive mask block' },
  ],
  outputs: `${PRUNE_OUTPUTS} Reports the OBS loss of every weight.`, details: UnstructuredPruneDetails,
} as const satisfies StepDescription<'prune:sparsegpt'>;

export const PRUNE_STRUCTURED = {
  key: 'prune:structured', type: 'prune', method: 'structured', kind: 'transform', needs: { tokenizer: true } as StepNeeds, measuresCompressedSize: true,
  title: 'Structured — heads, neurons, blocks', short: 'Structured', jobTitle: 'Prune',
  summary: 'Removes whole attention heads, MLP neurons or transformer blocks: a really smaller and faster model, at a larger quality cost per parameter removed.',
  schema: PruneStructuredStep,
  options: [
    { field: 'target', flag: 'structured', help: 'what is removed: heads, neurons or layers (whole blocks)' },
    { field: 'ratio', flag: 'ratio', help: 'the fraction removed (of the heads or neurons of each block, or of the blocks)' },
    { field: 'count', flag: 'count', help: 'how many are removed (heads or neurons per block, or blocks)' },
    { field: 'importance', flag: 'importance', help: 'how parts are ranked: magnitude (weights), activation (calibration), block-influence (how little a block changes its input), taylor (|Σ weight × gradient of the calibration loss|, LLM-Pruner)' },
    { field: 'taylorAggregate', flag: 'taylor-aggregate', help: "with importance taylor: 'group' |Σ w·g| over the part (default) or 'element' Σ |w·g|" },
    ...calibrationOptions,
    { field: 'keep', flag: 'keep', help: 'weights whose name matches a pattern keep their heads, neurons or block' },
  ],
  outputs: `${PRUNE_OUTPUTS.replace(', with the sparsity of every weight and block', '')} Reports what was removed from every block and the parameters before and after.`,
  details: StructuredPruneDetails,
} as const satisfies StepDescription<'prune:structured'>;

export const TRAIN = {
  key: 'train', type: 'train', method: null, kind: 'transform', needs: { tokenizer: true, gradients: true } as StepNeeds, resumable: true, series: 'train',
  title: 'Fine-tune — next-token loss', short: 'Fine-tune', jobTitle: 'Train',
  summary: 'Trains the float weights on your text with AdamW (warmup, cosine decay, clipping); recovers quality after pruning or adapts a model to a domain. An encoder learns to classify labelled data instead (objective classify). Minutes to hours on a CPU.',
  schema: TrainStep,
  options: [
    { field: 'text', flag: 'text', help: 'the UTF-8 training text (paragraphs separated by blank lines); best not the evaluation text' },
    { field: 'labels.file', flag: 'labels', help: 'labelled data (TSV, CSV or JSONL with a text and a label column): fine-tunes an encoder classifier instead (objective classify)' },
    { field: 'labels.textColumn', flag: 'text-column', help: "with --labels: the text column (default: the first of sentence, text, content, message)" },
    { field: 'labels.labelColumn', flag: 'label-column', help: 'with --labels: the label column (default: the first of label, labels, class, category)' },
    { field: 'labels.heldOut', flag: 'held-out', help: 'with --labels: the share (below 1) or count of examples held out of training and scored for accuracy (default 0.2)' },
    { field: 'teacher.model', flag: 'teacher', help: "with --labels: distil from this classifier's class logits as well as the labels" },
    { field: 'teacher.temperature', flag: 'temperature', help: 'with --teacher: softmax temperature T (default 2)' },
    { field: 'teacher.alpha', flag: 'alpha', help: "with --teacher: weight α of the teacher's term (default 0.5)" },
    { field: 'steps', flag: 'steps', help: 'optimizer steps (give this or --epochs)' },
    { field: 'epochs', flag: 'epochs', help: 'passes over the training text (give this or --steps)' },
    { field: 'batch', flag: 'batch', help: 'sequences per micro-batch B (default 4)' },
    { field: 'length', flag: 'len', help: 'tokens per sequence T (default 128)' },
    { field: 'accumulate', flag: 'accumulate', help: 'micro-batches summed into one optimizer step (default 1)' },
    { field: 'lr', flag: 'lr', help: 'peak learning rate, above 0 (default 3e-4)' },
    { field: 'warmup', flag: 'warmup', help: 'linear warmup steps (default about a tenth of the run, at most 100)' },
    { field: 'minLrRatio', flag: null, help: 'the cosine decay ends at lr × this (default 0.1)' },
    { field: 'weightDecay', flag: 'weight-decay', help: "AdamW's decoupled weight decay, not on biases, norms or embeddings (default 0.01)" },
    { field: 'clipNorm', flag: 'clip-norm', help: 'clip the global gradient norm to this (default 1; 0 = no clipping)' },
    { field: 'freeze', flag: 'freeze', help: 'weights left as they are: a role (q, k, v, o, gate, up, down, norm, embedding, lm_head) or a glob pattern on weight names' },
    { field: 'keepSparsity', flag: 'keep-sparsity', help: 'weights that are zero at the start stay zero (a pruned model stays pruned; the default)' },
    { field: 'evalText', flag: 'eval-text', help: 'held-out text whose loss is measured during training (the comparison after training uses it too)' },
    { field: 'evalEvery', flag: 'eval-every', help: 'measure the held-out loss every this many steps (default 20)' },
    { field: 'seed', flag: 'seed', help: 'seed of the data order (default 0)' },
    { field: 'checkpointEvery', flag: 'checkpoint-every', help: 'write a checkpoint every this many steps, and at cancel (default 25)' },
    { field: 'resume', flag: 'resume', help: 'continue an interrupted or cancelled training experiment from its newest checkpoint' },
  ],
  outputs: 'A model folder in the input\'s own layout (model.onnx, its weights, whittle.json) compared with the original, with the loss curve.',
  details: TrainStepDetailsSchema,
} as const satisfies StepDescription<'train'>;

export const DISTILL = {
  key: 'distill', type: 'distill', method: null, kind: 'transform', needs: { tokenizer: true, gradients: true } as StepNeeds, resumable: true, series: 'train',
  title: 'Distill — a student learns from a teacher', short: 'Distill', jobTitle: 'Distill',
  summary: "Trains a smaller student (some of the teacher's blocks, or your own model) to match the teacher's next-token distribution; also recovers quality after pruning or quantization with the original as teacher. Minutes to hours on a CPU.",
  schema: DistillStep,
  options: [
    { field: 'teacher', flag: 'teacher', help: "the teacher model (an .onnx file); default: the recipe's model" },
    { field: 'student.blocks', flag: 'student-blocks', help: "a student of the teacher's blocks, by index from 0 (e.g. 0,2,4); give this or --student" },
    { field: 'student.model', flag: 'student', help: 'a student model you bring (same tokenizer; the vocabulary is checked); give this or --student-blocks' },
    { field: 'data.text', flag: 'text', help: 'the UTF-8 training text (paragraphs separated by blank lines); must not hold the evaluation text' },
    { field: 'data.evalText', flag: 'eval-text', help: 'held-out text: its loss and the teacher–student agreement are measured during training, and the comparison uses it' },
    { field: 'data.batch', flag: 'batch', help: 'sequences per micro-batch B (default 4)' },
    { field: 'data.length', flag: 'len', help: 'tokens per sequence T (default 128)' },
    { field: 'loss.temperature', flag: 'temperature', help: "softmax temperature T of teacher and student (default 2): higher shows the student more of the teacher's second choices" },
    { field: 'loss.alpha', flag: 'alpha', help: "weight α of the teacher's term (default 0.5); 1 − α weighs the text's own next tokens" },
    { field: 'loss.reverse', flag: 'reverse-kl', help: "reverse KL (student ‖ teacher): the student concentrates on the teacher's main modes instead of covering all of them" },
    { field: 'loss.hidden', flag: 'hidden-loss', help: "weight of matching the teacher's block outputs (MSE); 0 = off (default)" },
    { field: 'teacherSignal.k', flag: 'topk-cache', help: "cache the teacher's top k probabilities on disk once (cheaper epochs) instead of running the teacher at every step" },
    { field: 'schedule.steps', flag: 'steps', help: 'optimizer steps (give this or --epochs)' },
    { field: 'schedule.epochs', flag: 'epochs', help: 'passes over the training text (give this or --steps)' },
    { field: 'schedule.accumulate', flag: 'accumulate', help: 'micro-batches summed into one optimizer step (default 1)' },
    { field: 'schedule.lr', flag: 'lr', help: 'peak learning rate, above 0 (default 3e-4)' },
    { field: 'schedule.warmup', flag: 'warmup', help: 'linear warmup steps (default about a tenth of the run, at most 100)' },
    { field: 'schedule.minLrRatio', flag: null, help: 'the cosine decay ends at lr × this (default 0.1)' },
    { field: 'schedule.weightDecay', flag: 'weight-decay', help: "AdamW's decoupled weight decay (default 0.01)" },
    { field: 'schedule.clipNorm', flag: 'clip-norm', help: 'clip the global gradient norm to this (default 1; 0 = no clipping)' },
    { field: 'schedule.evalEvery', flag: 'eval-every', help: 'measure the held-out loss every this many steps (default 20)' },
    { field: 'schedule.seed', flag: 'seed', help: 'seed of the data order (default 0)' },
    { field: 'schedule.checkpointEvery', flag: 'checkpoint-every', help: 'write a checkpoint every this many steps, and at cancel (default 25)' },
    { field: 'lora.rank', flag: 'lora-rank', help: 'train low-rank adapters of this rank on the attention projections instead of every weight; merged at export' },
    { field: 'lora.dropout', flag: 'lora-dropout', help: "with --lora-rank: dropout probability on the adapters' input while training, 0 ≤ P < 1 (default 0; none in evaluation or at export)" },
    { field: 'resume', flag: 'resume', help: 'continue an interrupted or cancelled distillation experiment from its newest checkpoint' },
  ],
  outputs: "A student model folder in the teacher's layout (model.onnx, its weights, whittle.json, config updated) compared with the teacher, with the loss curves and the teacher–student agreement.",
  details: DistillDetailsSchema,
} as const satisfies StepDescription<'distill'>;

/** Every step this build describes, quantization methods in the order the wizard and the CLI list them. */
export const STEP_DESCRIPTIONS = [RTN, GPTQ, FP16, INT8_DYNAMIC, INT8_STATIC, QAT, PRUNE_MAGNITUDE, PRUNE_WANDA, PRUNE_SPARSEGPT, PRUNE_STRUCTURED, SENSITIVITY, TRAIN, DISTILL] as const satisfies readonly StepDescription[];
export type DescribedStep = (typeof STEP_DESCRIPTIONS)[number];

/** The quantization methods, in order. */
export const QUANTIZE_METHODS = STEP_DESCRIPTIONS.filter((d): d is Extract<DescribedStep, { type: 'quantize' }> => d.type === 'quantize');
export type QuantizeMethodId = (typeof QUANTIZE_METHODS)[number]['method'];
export const QUANTIZE_METHOD_IDS: readonly QuantizeMethodId[] = QUANTIZE_METHODS.map((d) => d.method);

/** The quantization methods with an option set by this `whittle quantize` flag, in order. */
export function methodsWithFlag(flag: string): QuantizeMethodId[] {
  return QUANTIZE_METHODS.filter((d) => d.options.some((o) => o.flag === flag)).map((d) => d.method);
}

/** Every flag some quantization method's options name, in first-use order. */
export const METHOD_FLAGS: readonly string[] = [...new Set(QUANTIZE_METHODS.flatMap((d) => d.options.flatMap((o) => (o.flag === null ? [] : [o.flag]))))];

const BY_KEY: ReadonlyMap<string, StepDescription> = new Map(STEP_DESCRIPTIONS.map((d) => [d.key, d]));

/** The description of a step key, or undefined for a key this build does not describe. */
export function describeKey(key: string): StepDescription | undefined {
  return BY_KEY.get(key);
}

/** The description of a recipe step (every step of a parsed recipe has one). */
export function describeStep(step: Pick<Step, 'type'> & { method?: string }): StepDescription {
  const d = BY_KEY.get(stepKey(step));
  if (!d) throw new Error(`No description of the step ${stepKey(step)}.`);
  return d;
}

/** The pruning methods, in the order the wizard and the CLI list them. */
export const PRUNE_METHODS = STEP_DESCRIPTIONS.filter((d): d is Extract<DescribedStep, { type: 'prune' }> => d.type === 'prune');

export function describeMethod(method: QuantizeMethodId): Extract<DescribedStep, { type: 'quantize' }> {
  return QUANTIZE_METHODS.find((d) => d.method === method)!;
}

// ── recipes by their steps' traits ──────────────────────────────────────────────────────────────────

/** Whether the recipe writes a new model, which is then compared with the original. */
export function compresses(r: Pick<Recipe, 'steps'>): boolean {
  return r.steps.some((s) => describeStep(s).kind === 'transform');
}

/** Whether a step of the recipe asks the comparison for the size compressed (StepTraits.measuresCompressedSize). */
export function measuresCompressedSize(r: Pick<Recipe, 'steps'>): boolean {
  return r.steps.some((s) => describeStep(s).measuresCompressedSize === true);
}

/** Job kinds for lists and filters: 'evaluate' (no steps) or a step type. */
export const JOB_KINDS: readonly string[] = ['evaluate', ...new Set(STEP_DESCRIPTIONS.map((d) => d.type))];

/** The kind of job a recipe describes: the type of its first transform step, else of its first analysis, else 'evaluate'. */
export function recipeKind(r: Pick<Recipe, 'steps'>): string {
  const transform = r.steps.find((s) => describeStep(s).kind === 'transform');
  return (transform ?? r.steps[0])?.type ?? 'evaluate';
}

/** How a default job name starts for a job of this kind ('Quantize', 'Sensitivity of', 'Evaluate'). */
export function jobTitle(kind: string): string {
  return STEP_DESCRIPTIONS.find((d) => d.type === kind)?.jobTitle ?? 'Evaluate';
}

// ── step details, as the renderer reads them ────────────────────────────────────────────────────────

/** The artefact kind of a resumable step's checkpoint folder, recorded when its job starts. */
export const CHECKPOINTS_ARTEFACT = 'checkpoints';

/** Whether a recipe has a step that writes checkpoints a later job can continue from (StepTraits.resumable). */
export function resumable(r: Pick<Recipe, 'steps'>): boolean {
  return r.steps.some((s) => describeStep(s).resumable === true);
}

/** What the runner adds to every step's details. */
const stepFrame = { type: z.string(), input: z.string(), output: z.string() };

export type StepDetails =
  | ({ key: 'quantize:rtn' } & z.infer<typeof RtnDetails>)
  | ({ key: 'quantize:gptq' } & z.infer<typeof GptqDetails>)
  | ({ key: 'quantize:fp16' } & z.infer<typeof Fp16Details>)
  | ({ key: 'quantize:int8-dynamic' } & z.infer<typeof Int8DynamicDetails>)
  | ({ key: 'quantize:int8-static' } & z.infer<typeof Int8StaticDetails>)
  | ({ key: 'quantize:qat' } & z.infer<typeof QatDetailsSchema>)
  | ({ key: 'prune:magnitude' | 'prune:wanda' | 'prune:sparsegpt' } & z.infer<typeof UnstructuredPruneDetails>)
  | ({ key: 'prune:structured' } & z.infer<typeof StructuredPruneDetails>)
  | ({ key: 'sensitivity' } & z.infer<typeof SensitivityDetails>)
  | ({ key: 'train' } & z.infer<typeof TrainStepDetailsSchema>)
  | ({ key: 'distill' } & z.infer<typeof DistillDetailsSchema>);

/** Whether parsed step details are a quantization step's. */
export function isQuantizeDetails(s: StepDetails): s is Extract<StepDetails, { key: `quantize:${string}` }> {
  return s.key.startsWith('quantize:');
}

/**
 * The steps of a job's details (`details.steps`), each parsed with its description's schema and tagged
 * with its key; a step that does not match its schema (an older history entry) is left out.
 */
export function parseStepDetails(details: unknown): StepDetails[] {
  const steps = z.looseObject({ steps: z.array(z.looseObject({ ...stepFrame, method: z.unknown().optional() })) }).safeParse(details);
  if (!steps.success) return [];
  const out: StepDetails[] = [];
  for (const s of steps.data.steps) {
    const d = describeKey(`${s.type}:${String(s.method)}`) ?? describeKey(s.type);
    const parsed = d?.details.safeParse(s);
    if (d && parsed?.success) out.push({ ...(parsed.data as object), key: d.key } as StepDetails);
  }
  return out;
}
