/**
 * Recipes: the one model of a job (ARCHITECTURE seam 5). A wizard writes one, the CLI reads one from a
 * file, the history stores it verbatim. Every object is strict: unknown keys are rejected.
 * This file only depends on zod so that main, preload and renderer can all share it.
 */
import { z } from 'zod';

/** A file or folder path: not empty, and without a NUL character (no file system accepts one). */
const path = z.string().min(1, 'a path is required').refine((s) => !s.includes('\0'), 'contains a NUL character, which no file path can hold');

export const PerplexityConfig = z.strictObject({
  /** A UTF-8 text file. `documents`: blank-line separated paragraphs; `stream`: one long text. */
  text: path,
  protocol: z.enum(['documents', 'stream']).default('documents'),
  /** Window length L in tokens (documents are truncated to L; stream windows are L long). */
  window: z.int().min(8).max(1 << 16).default(256),
  /** Number of documents (or windows) evaluated, N. */
  maxSamples: z.int().min(1).max(1_000_000).default(400),
  /** Documents shorter than this many tokens are skipped (documents protocol). */
  minTokens: z.int().min(2).default(16),
});
export type PerplexityConfig = z.infer<typeof PerplexityConfig>;

export const SpeedConfig = z.strictObject({
  /** Prompt length P for the prefill timing. */
  promptTokens: z.int().min(1).max(8192).default(64),
  /** Tokens generated through the KV cache for the decode timing. */
  decodeTokens: z.int().min(1).max(4096).default(64),
  /** Timed runs of each model after one warm-up of each (models compared are timed interleaved, A B A B …). */
  repeats: z.int().min(1).max(50).default(5),
  /** Intra-op threads for onnxruntime; 0 = its default. */
  threads: z.int().min(0).max(256).default(0),
});
export type SpeedConfig = z.infer<typeof SpeedConfig>;

/**
 * Prompts for the greedy generations shown beside each other when a recipe compresses a model and names
 * no prompts of its own (TinyStories-style: the bundled sample is a TinyStories model).
 */
export const DEFAULT_SAMPLE_PROMPTS: readonly string[] = ['Once upon a time', 'The little dog', 'One day, a girl named Lily'];
export const DEFAULT_MAX_NEW_TOKENS = 48;

export const DEFAULT_HELD_OUT = 0.2;

/** A held-out share of the examples: a fraction in (0, 1) or a count of at least 1. */
const heldOutField = z.number().gt(0, 'the held-out share must be above 0 (a fraction below 1 or a count)')
  .refine((h) => h < 1 || Number.isInteger(h), 'the held-out share is a fraction below 1 or a whole count of examples');

/**
 * Labelled text for classification (TSV, CSV or JSONL with a text and a label column, see
 * main/engine/data/labelled.ts): columns found by name unless given; `heldOut` of the examples, drawn
 * with `seed`, are kept out of training and evaluated on.
 */
export const LabelledConfig = z.strictObject({
  file: path,
  textColumn: z.string().min(1).optional(),
  labelColumn: z.string().min(1).optional(),
  heldOut: heldOutField.default(DEFAULT_HELD_OUT),
  seed: z.int().min(0).max(2 ** 31 - 1).default(0),
});
export type LabelledConfig = z.infer<typeof LabelledConfig>;

/** How a decoder reads a labelled example: the prompt it continues; `{text}` stands for the example's text. */
export const DEFAULT_PROMPT_TEMPLATE = '{text}\nAnswer:';

/**
 * Accuracy and macro-F1 of a classifier on labelled data: on the held-out split of `file` (the same
 * `heldOut` and `seed` as a classification fine-tune on it leaves out), or on a separate `testFile` (its
 * labels mapped with `file`'s classes). An encoder with class logits is scored by them; a decoder by
 * labelled prompts (main/engine/evaluate/prompt-accuracy.ts): each example's text filled into `template`,
 * each class's verbalizer scored as its continuation, the class with the highest log-probability predicted.
 */
export const AccuracyConfig = z.strictObject({
  file: path,
  textColumn: z.string().min(1).optional(),
  labelColumn: z.string().min(1).optional(),
  /** Unset: 0.2 of `file` (without a `testFile`). */
  heldOut: heldOutField.optional(),
  testFile: path.optional(),
  seed: z.int().min(0).max(2 ** 31 - 1).default(0),
  /** Tokens per example at most: [CLS] and [SEP] included (encoder); prompt and verbalizer (decoder, the text's start cut first). */
  maxLength: z.int().min(2).max(1 << 16).default(128),
  /** Decoder only: the prompt, with `{text}` where the example goes (default DEFAULT_PROMPT_TEMPLATE). */
  template: z.string().min(1).optional(),
  /**
   * Decoder only: the words scored for each class, one per class in class order (numeric order for
   * integer labels, else order of first appearance) or by label ({"0": "negative", "1": "positive"}).
   * Unset: the labels as written.
   */
  verbalizers: z.union([z.array(z.string()), z.record(z.string(), z.string())]).optional(),
  /** Decoder only: compare classes by mean log-probability per verbalizer token instead of the total. */
  lengthNormalize: z.boolean().optional(),
}).superRefine((a, ctx) => {
  if (a.testFile !== undefined && a.heldOut !== undefined) ctx.addIssue({ code: 'custom', path: ['heldOut'], message: 'give a held-out share of the file or a separate test file, not both' });
  if (a.template !== undefined && !a.template.includes('{text}')) ctx.addIssue({ code: 'custom', path: ['template'], message: 'the prompt template needs {text} where the example\'s text goes' });
});
export type AccuracyConfig = z.infer<typeof AccuracyConfig>;

export const EvaluationConfig = z.strictObject({
  perplexity: PerplexityConfig.optional(),
  /** Accuracy and macro-F1 of a classifier on labelled data (original beside result when there is a comparison). */
  accuracy: AccuracyConfig.optional(),
  speed: SpeedConfig.optional(),
  /** Bytes on disk, parameters, bits per weight. Cheap; on unless turned off. */
  footprint: z.boolean().default(true),
  /** Greedy generations from these prompts (original beside compressed when there is a comparison). */
  samples: z.strictObject({
    prompts: z.array(z.string().min(1)).min(1).max(16),
    maxNewTokens: z.int().min(1).max(512).default(DEFAULT_MAX_NEW_TOKENS),
  }).optional(),
  /**
   * false: measure everything again, even where an earlier evaluation of the same model with the same
   * settings could answer (the new figures still refresh the evaluation cache). Unset means true.
   */
  cache: z.boolean().optional(),
});
export type EvaluationConfig = z.infer<typeof EvaluationConfig>;

const regexList = z.array(z.string().min(1)).default([]);
const bitsOf = z.union([z.literal(2), z.literal(4), z.literal(8)]);
const blockSize = z.int().refine((b) => b >= 16 && b <= 256 && (b & (b - 1)) === 0, 'block size must be a power of two from 16 to 256');

/** Calibration data: N samples of L tokens drawn reproducibly (seed) from a user text file. */
export const CalibrationConfig = z.strictObject({
  text: path,
  samples: z.int().min(1).max(4096).default(128),
  length: z.int().min(8).max(8192).default(256),
  seed: z.int().min(0).max(2 ** 31 - 1).default(0),
});
export type CalibrationConfig = z.infer<typeof CalibrationConfig>;

/** Mixed precision: weights whose names match `pattern` get other bits (e.g. the most sensitive at 8). */
export const BitsOverride = z.strictObject({ pattern: z.string().min(1), bits: bitsOf });
export type BitsOverride = z.infer<typeof BitsOverride>;

const weightOnlyFields = {
  type: z.literal('quantize'),
  bits: bitsOf.default(4),
  blockSize: blockSize.default(32),
  symmetric: z.boolean().default(false),
  /** MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 (the fast CPU kernel). */
  accuracyLevel: z.int().min(0).max(4).default(4),
  format: z.enum(['matmulnbits', 'qdq']).default('matmulnbits'),
  /** Regular expressions on weight (initializer) names to keep in full precision, e.g. the LM head. */
  keep: regexList,
  /** Per-weight bit widths that differ from `bits` (first matching pattern wins). */
  overrides: z.array(BitsOverride).default([]),
};

export const QuantizeRtnStep = z.strictObject({ ...weightOnlyFields, method: z.literal('rtn') });
export type QuantizeRtnStep = z.infer<typeof QuantizeRtnStep>;

/** GPTQ (arXiv 2210.17323): weight-only, error-compensating, needs calibration activations. */
export const QuantizeGptqStep = z.strictObject({
  ...weightOnlyFields,
  method: z.literal('gptq'),
  calibration: CalibrationConfig,
  /** Dampening added to the Hessian diagonal, as a fraction of its mean. */
  percdamp: z.number().min(0).max(1).default(0.01),
  /** Quantize columns in order of decreasing Hessian diagonal (static groups, no g_idx). */
  actOrder: z.boolean().default(false),
  /** Columns swept together before the lazy batch update. */
  columnBlock: z.int().min(1).max(4096).default(128),
  /**
   * Calibrate level by level on the already-quantized model (GPTQ's "true-sequential"; default), or
   * false: one pass over the original model for every layer at once (faster, less accurate).
   */
  sequential: z.boolean().default(true),
});
export type QuantizeGptqStep = z.infer<typeof QuantizeGptqStep>;

export const DEFAULT_FP16_BLOCK_OPS = [
  'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'RMSNormalization', 'GroupNormalization', 'InstanceNormalization', 'BatchNormalization',
  'ReduceMean', 'ReduceSum', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'Softmax', 'LogSoftmax', 'Pow', 'Sqrt', 'Reciprocal',
];

/** All float tensors to fp16; ops in `blockOps` keep computing in fp32 behind Casts. */
export const QuantizeFp16Step = z.strictObject({
  type: z.literal('quantize'),
  method: z.literal('fp16'),
  /** Keep float32 graph inputs and outputs (Casts at the boundary). */
  keepIoTypes: z.boolean().default(true),
  blockOps: z.array(z.string().min(1)).default(DEFAULT_FP16_BLOCK_OPS),
  /** Regular expressions on node or initializer names kept in float32. */
  keep: regexList,
});
export type QuantizeFp16Step = z.infer<typeof QuantizeFp16Step>;

/** Weights int8 per output channel; activations quantized at run time (uint8). */
export const QuantizeInt8DynamicStep = z.strictObject({
  type: z.literal('quantize'),
  method: z.literal('int8-dynamic'),
  format: z.enum(['matmulinteger', 'dynamic-quantize-matmul']).default('matmulinteger'),
  perChannel: z.boolean().default(true),
  keep: regexList,
});
export type QuantizeInt8DynamicStep = z.infer<typeof QuantizeInt8DynamicStep>;

/** QDQ around MatMul/Gemm inputs and weights, activation ranges from calibration. */
export const QuantizeInt8StaticStep = z.strictObject({
  type: z.literal('quantize'),
  method: z.literal('int8-static'),
  calibration: CalibrationConfig,
  rangeMethod: z.enum(['minmax', 'percentile', 'entropy']).default('minmax'),
  percentile: z.number().min(90).max(100).default(99.999),
  /** Entropy (KL) calibration: quantized bins. */
  entropyBins: z.int().min(16).max(2048).default(128),
  perChannel: z.boolean().default(true),
  activationType: z.enum(['uint8', 'int8']).default('uint8'),
  /** Regular expressions on node names left unquantized. */
  exclude: regexList,
  keep: regexList,
});
export type QuantizeInt8StaticStep = z.infer<typeof QuantizeInt8StaticStep>;

/**
 * Per-layer sensitivity: for each quantizable weight (or transformer block), the mean KL against the
 * original when only it is quantized with `quantize`. An analysis: the model is not changed.
 */
export const SensitivityStep = z.strictObject({
  type: z.literal('sensitivity'),
  quantize: z.discriminatedUnion('method', [QuantizeRtnStep, QuantizeGptqStep]),
  granularity: z.enum(['weight', 'block']).default('weight'),
  /** Sequences of the calibration text scored per candidate. */
  samples: z.int().min(1).max(256).default(8),
  calibration: CalibrationConfig,
});
export type SensitivityStep = z.infer<typeof SensitivityStep>;

// ── pruning (TECHNIQUES.md §2) ──────────────────────────────────────────────────────────────────────

const NM_PATTERN = /^(\d+):(\d+)$/;

/** An N:M pattern 'N:M': in every M consecutive inputs (along K) of every output channel, N weights are kept (2:4 keeps 2 of 4). */
export function parseNmPattern(pattern: string): { n: number; m: number } | null {
  const m = NM_PATTERN.exec(pattern);
  if (!m) return null;
  const keep = Number(m[1]);
  const group = Number(m[2]);
  return keep >= 1 && group >= 2 && keep < group && group <= 256 ? { n: keep, m: group } : null;
}

const nmPattern = z.string().refine((p) => parseNmPattern(p) !== null, 'an N:M pattern is two integers N:M with 1 ≤ N < M ≤ 256, e.g. 2:4 (keep 2 of every 4)');
/** The fraction of the weights pruned, strictly between 0 and 1. */
const sparsity = z.number().gt(0, 'sparsity must be above 0').lt(1, 'sparsity must be below 1 (pruning every weight leaves nothing)');

const unstructuredFields = {
  type: z.literal('prune'),
  /**
   * The fraction of each weight's entries set to zero (0 < s < 1); unset means 0.5, or with `pattern` the
   * pattern's 1 − N/M (when both are given they must agree).
   */
  sparsity: sparsity.optional(),
  /** N:M semi-structured sparsity, e.g. '2:4' (keep N of every M consecutive inputs). */
  pattern: nmPattern.optional(),
  /**
   * How the overall sparsity is spread over the transformer blocks: 'uniform' (every weight the same) or
   * 'owl' (outlier-weighted layerwise sparsity, arXiv 2310.05175: blocks with more activation outliers
   * pruned less, at the same overall sparsity). Unstructured only.
   */
  allocation: z.enum(['uniform', 'owl']).default('uniform'),
  /** Regular expressions on weight (initializer) names left dense. */
  keep: regexList,
  /** Prune the LM head too (it stays dense by default: it is the most sensitive weight). */
  pruneLmHead: z.boolean().default(false),
};

/** The sparsity a pruning step asks for: the pattern's 1 − N/M, else `sparsity`, else 0.5. */
export function effectiveSparsity(step: { sparsity?: number | undefined; pattern?: string | undefined }): number {
  const nm = step.pattern === undefined ? null : parseNmPattern(step.pattern);
  return nm ? 1 - nm.n / nm.m : (step.sparsity ?? 0.5);
}

/** Checks shared by the unstructured pruning steps: sparsity and pattern consistent; OWL only without a pattern. */
function checkUnstructured(step: { sparsity?: number | undefined; pattern?: string | undefined; allocation: string }, ctx: z.core.$RefinementCtx): void {
  const nm = step.pattern === undefined ? null : parseNmPattern(step.pattern);
  if (nm && step.sparsity !== undefined && Math.abs(step.sparsity - (1 - nm.n / nm.m)) > 1e-9) {
    ctx.addIssue({ code: 'custom', path: ['sparsity'], message: `the pattern ${step.pattern} prunes ${1 - nm.n / nm.m} of the weights; leave sparsity out or set it to that` });
  }
  if (step.pattern !== undefined && step.allocation !== 'uniform') {
    ctx.addIssue({ code: 'custom', path: ['allocation'], message: 'an N:M pattern fixes the sparsity of every weight; per-block allocation needs unstructured pruning' });
  }
}

/** Magnitude pruning: the smallest |w| of each weight (scope 'layer') or of all weights together ('global'). No calibration. */
export const PruneMagnitudeStep = z.strictObject({
  ...unstructuredFields,
  method: z.literal('magnitude'),
  scope: z.enum(['layer', 'global']).default('layer'),
  /** Needed only by the OWL allocation (its outlier ratios come from calibration activations). */
  calibration: CalibrationConfig.optional(),
}).superRefine((s, ctx) => {
  checkUnstructured(s, ctx);
  if (s.scope === 'global' && s.pattern !== undefined) ctx.addIssue({ code: 'custom', path: ['scope'], message: 'global scope ranks all weights together; it cannot be combined with an N:M pattern' });
  if (s.scope === 'global' && s.allocation !== 'uniform') ctx.addIssue({ code: 'custom', path: ['scope'], message: 'global scope already decides each weight\'s sparsity; use allocation uniform' });
  if (s.allocation === 'owl' && s.calibration === undefined) ctx.addIssue({ code: 'custom', path: ['calibration'], message: 'the OWL allocation measures activation outliers: add calibration text' });
});
export type PruneMagnitudeStep = z.infer<typeof PruneMagnitudeStep>;

const calibratedPruneFields = {
  ...unstructuredFields,
  calibration: CalibrationConfig,
  /** Calibrate level by level on the already-pruned model (default), or false: one pass over the original model. */
  sequential: z.boolean().default(true),
};

/** Wanda (arXiv 2306.11695): score |w_ij|·‖x_i‖₂ from calibration activations, pruned per output channel; no weight update. */
export const PruneWandaStep = z.strictObject({ ...calibratedPruneFields, method: z.literal('wanda') }).superRefine(checkUnstructured);
export type PruneWandaStep = z.infer<typeof PruneWandaStep>;

/** SparseGPT (arXiv 2301.00774): OBS sweep with an adaptive mask, the kept weights updated; optionally quantized in the same sweep. */
export const PruneSparseGptStep = z.strictObject({
  ...calibratedPruneFields,
  method: z.literal('sparsegpt'),
  /** Dampening added to the Hessian diagonal, as a fraction of its mean. */
  percdamp: z.number().min(0).max(1).default(0.01),
  /** Columns swept together before the lazy batch update (a multiple of M for N:M). */
  columnBlock: z.int().min(1).max(4096).default(128),
  /** Inputs per adaptive mask block (unstructured). */
  maskBlock: z.int().min(1).max(4096).default(128),
  /** Joint pruning and quantization: the kept weights GPTQ-quantized in the same sweep, written as MatMulNBits. */
  quantize: z.strictObject({
    bits: bitsOf.default(4),
    blockSize: blockSize.default(32),
    symmetric: z.boolean().default(false),
    accuracyLevel: z.int().min(0).max(4).default(4),
  }).optional(),
}).superRefine((s, ctx) => {
  checkUnstructured(s, ctx);
  const nm = s.pattern === undefined ? null : parseNmPattern(s.pattern);
  if (nm && s.columnBlock % nm.m !== 0) ctx.addIssue({ code: 'custom', path: ['columnBlock'], message: `N:M pruning needs columnBlock to be a multiple of M (${nm.m})` });
});
export type PruneSparseGptStep = z.infer<typeof PruneSparseGptStep>;

/**
 * How a structured prune ranks the parts it may remove (structured-importance.ts, taylor-importance.ts):
 *   magnitude        weight norms (no calibration);
 *   activation       calibration activation statistics times the weights they multiply;
 *   block-influence  1 − cos(block input, block output) on calibration text (ShortGPT; target layers only);
 *   taylor           |Σ w·∂L/∂w| over the part's weights, gradients of the calibration loss (LLM-Pruner).
 */
export const STRUCTURED_IMPORTANCES = ['magnitude', 'activation', 'block-influence', 'taylor'] as const;
export const StructuredImportance = z.enum(STRUCTURED_IMPORTANCES);
export type StructuredImportance = z.infer<typeof StructuredImportance>;

/** Whether an importance is measured on calibration text (every one but magnitude). */
export const importanceNeedsCalibration = (importance: StructuredImportance): boolean => importance !== 'magnitude';

/**
 * Taylor importance of a group: 'group' |Σ_i w_i g_i| (the first-order loss change when the whole group is
 * zeroed; LLM-Pruner's vector-wise) or 'element' Σ_i |w_i g_i| (element-wise, summed over the group).
 */
export const TAYLOR_AGGREGATES = ['group', 'element'] as const;
export const TaylorAggregate = z.enum(TAYLOR_AGGREGATES);
export type TaylorAggregate = z.infer<typeof TaylorAggregate>;

/**
 * Structured pruning with graph surgery: whole attention heads, MLP neurons or transformer blocks are
 * removed, so the model really gets smaller and faster.
 */
export const PruneStructuredStep = z.strictObject({
  type: z.literal('prune'),
  method: z.literal('structured'),
  target: z.enum(['heads', 'neurons', 'layers']),
  /** The fraction of heads (per block), neurons (per block) or blocks removed, 0 < r < 1. */
  ratio: z.number().gt(0, 'ratio must be above 0').lt(1, 'ratio must be below 1 (removing everything leaves no model)').optional(),
  /** How many heads (per block), neurons (per block) or blocks are removed. */
  count: z.int().min(1).optional(),
  /** How parts are ranked (STRUCTURED_IMPORTANCES). */
  importance: StructuredImportance.default('magnitude'),
  /** With importance taylor: how a group's w·g terms combine (default group). */
  taylorAggregate: TaylorAggregate.optional(),
  /** Needed by every importance but magnitude. */
  calibration: CalibrationConfig.optional(),
  /** Regular expressions on weight (initializer) names whose heads, neurons or blocks are kept. */
  keep: regexList,
}).superRefine((s, ctx) => {
  if ((s.ratio === undefined) === (s.count === undefined)) ctx.addIssue({ code: 'custom', path: ['ratio'], message: 'give exactly one of ratio (a fraction) or count (how many)' });
  if (importanceNeedsCalibration(s.importance) && s.calibration === undefined) ctx.addIssue({ code: 'custom', path: ['calibration'], message: `the ${s.importance} importance is measured on calibration text: add calibration` });
  if (s.importance === 'block-influence' && s.target !== 'layers') ctx.addIssue({ code: 'custom', path: ['importance'], message: 'block influence ranks whole blocks: use it with target layers' });
  if (s.taylorAggregate !== undefined && s.importance !== 'taylor') ctx.addIssue({ code: 'custom', path: ['taylorAggregate'], message: 'taylorAggregate applies to the taylor importance only' });
});
export type PruneStructuredStep = z.infer<typeof PruneStructuredStep>;

export const PruneStep = z.discriminatedUnion('method', [PruneMagnitudeStep, PruneWandaStep, PruneSparseGptStep, PruneStructuredStep]);
export type PruneStep = z.infer<typeof PruneStep>;
export type PruneMethod = PruneStep['method'];

// ── training (TRAINING.md) ─────────────────────────────────────────────────────────────────────────

/**
 * Architecture roles a fine-tune can freeze (the architecture map says which weight is which): the
 * attention projections, the MLP, the norms, the embedding and the LM head. "o and v" is ov-freeze
 * (arXiv 2403.18159).
 */
export const FREEZE_ROLES = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'norm', 'embedding', 'lm_head'] as const;
export type FreezeRole = (typeof FREEZE_ROLES)[number];

/**
 * A freeze entry is a role when it is a bare word (letters and underscores only); anything else
 * (`*`, `?`, `.`, `/`, digits) is a glob pattern on initializer names, e.g. `*.layers.0.*`.
 */
export function isFreezeRoleWord(entry: string): boolean {
  return /^[a-z_]+$/i.test(entry);
}

/** The steps of the default warmup: about a tenth of the run, at most 100 steps. */
export function defaultWarmupSteps(totalSteps: number): number {
  return Math.min(100, Math.round(0.1 * totalSteps));
}

/**
 * Where a resumable step (a training run) continues from: the checkpoint folder an earlier run of the
 * same recipe wrote (its experiment records it). The run continues the same curve from the newest
 * checkpoint there, and keeps writing its checkpoints to that folder.
 */
export const ResumeFrom = z.strictObject({
  checkpoints: path,
  /** The experiment that wrote them, for the history's "continued from". */
  experiment: z.int().positive().optional(),
});
export type ResumeFrom = z.infer<typeof ResumeFrom>;

/**
 * How long and how a training run steps: shared by the train step (its fields at the step's top level)
 * and the distill step (its `schedule`), so both read and check them the same way.
 * Exactly one of `steps` (optimizer steps) or `epochs` (passes over the text).
 */
const scheduleFields = {
  steps: z.int().min(1).max(10_000_000).optional(),
  epochs: z.number().gt(0, 'epochs must be above 0').max(10_000).optional(),
  /** Micro-batches whose gradients are summed into one optimizer step. */
  accumulate: z.int().min(1).max(4096).default(1),
  /** Peak learning rate. */
  lr: z.number().gt(0, 'the learning rate must be above 0').max(10, 'a learning rate above 10 diverges at once; typical values are 1e-5 to 1e-3').default(3e-4),
  /** Linear warmup steps; unset: about a tenth of the run, at most 100 (defaultWarmupSteps). */
  warmup: z.int().min(0).optional(),
  /** The cosine decay ends at lr · minLrRatio. */
  minLrRatio: z.number().min(0).max(1).default(0.1),
  /** AdamW's decoupled weight decay (not on biases, norms or embeddings). */
  weightDecay: z.number().min(0).max(10).default(0.01),
  /** Global gradient norm clip; 0 = no clipping. */
  clipNorm: z.number().min(0).default(1),
  /** Held-out loss measured every this many steps (with a held-out text), and at the start and the end. */
  evalEvery: z.int().min(1).default(20),
  /** Seed of the data order. */
  seed: z.int().min(0).max(2 ** 31 - 1).default(0),
  /** A checkpoint (weights, optimizer moments, step, RNG, data position) every this many steps and at cancel. */
  checkpointEvery: z.int().min(1).default(25),
};

/** The schedule checks shared by train and distill: one of steps or epochs; a warmup within the run. `at` prefixes the issue paths. */
function checkSchedule(s: { steps?: number | undefined; epochs?: number | undefined; warmup?: number | undefined }, ctx: z.core.$RefinementCtx, at: string[] = []): void {
  if ((s.steps === undefined) === (s.epochs === undefined)) {
    ctx.addIssue({ code: 'custom', path: [...at, 'steps'], message: 'give exactly one of steps (optimizer steps) or epochs (passes over the text)' });
  }
  if (s.steps !== undefined && s.warmup !== undefined && s.warmup > s.steps) {
    ctx.addIssue({ code: 'custom', path: [...at, 'warmup'], message: `the warmup (${s.warmup} steps) is longer than the run (${s.steps} steps)` });
  }
}

/** A distill step's schedule (the train step has the same fields at its top level). */
export const TrainSchedule = z.strictObject(scheduleFields).superRefine((s, ctx) => checkSchedule(s, ctx));
export type TrainSchedule = z.infer<typeof TrainSchedule>;

/** Sequences per micro-batch B and tokens per sequence T. */
const batchField = z.int().min(1).max(4096).default(4);
const lengthField = z.int().min(8).max(1 << 16).default(128);

/** Classification distillation: the teacher's class logits (softened by T) join the labels with weight α. */
export const ClassifierTeacher = z.strictObject({
  /** An encoder classifier over the same classes and tokenizer. */
  model: path,
  temperature: z.number().gt(0, 'the temperature must be above 0').max(100).default(2),
  alpha: z.number().min(0, 'alpha is a weight from 0 to 1').max(1, 'alpha is a weight from 0 to 1').default(0.5),
});
export type ClassifierTeacher = z.infer<typeof ClassifierTeacher>;

export const TRAIN_OBJECTIVES = ['lm', 'classify'] as const;
export type TrainObjective = (typeof TRAIN_OBJECTIVES)[number];

/**
 * Fine-tuning on next-token prediction ('lm'): the model's float weights trained with AdamW on a text
 * (paragraphs packed into sequences of `length` + 1 tokens), warmup then cosine decay, the result written
 * in the input's own layout. Exactly one of `steps` (optimizer steps) or `epochs` (passes over the text).
 *
 * 'classify': an encoder classifier fine-tuned on labelled data (`labels` instead of `text`; its
 * held-out split is never trained on), optionally distilled from a `teacher` classifier.
 */
export const TrainStep = z.strictObject({
  type: z.literal('train'),
  objective: z.enum(TRAIN_OBJECTIVES).default('lm'),
  /** The training text (UTF-8; paragraphs separated by blank lines). Best not the evaluation text. Objective 'lm'. */
  text: path.optional(),
  /** Labelled data (objective 'classify'): trained on all but its held-out split. */
  labels: LabelledConfig.optional(),
  /** Objective 'classify': distil from this classifier's class logits as well as the labels. */
  teacher: ClassifierTeacher.optional(),
  ...scheduleFields,
  /** Sequences per micro-batch B and tokens per sequence T. */
  batch: batchField,
  length: lengthField,
  /** Frozen weights: roles (FREEZE_ROLES) or glob patterns on initializer names. */
  freeze: z.array(z.string().min(1)).default([]),
  /** Weights that are exactly zero at the start (a pruned model) stay exactly zero. */
  keepSparsity: z.boolean().default(true),
  /** Held-out text whose loss is measured every `evalEvery` steps, and at the start and the end. */
  evalText: path.optional(),
  /** Continue an interrupted or cancelled run from its checkpoints. */
  resume: ResumeFrom.optional(),
}).superRefine((s, ctx) => {
  checkSchedule(s, ctx);
  if (s.objective === 'lm') {
    if (s.text === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'next-token fine-tuning needs the training text' });
    if (s.labels !== undefined) ctx.addIssue({ code: 'custom', path: ['labels'], message: "labelled data trains a classifier: set objective 'classify'" });
    if (s.teacher !== undefined) ctx.addIssue({ code: 'custom', path: ['teacher'], message: "a teacher here distils a classifier (objective 'classify'); a decoder is distilled by a distill step" });
  } else {
    if (s.labels === undefined) ctx.addIssue({ code: 'custom', path: ['labels'], message: 'classification fine-tuning needs labelled data (a file with a text and a label column)' });
    if (s.text !== undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'classification fine-tuning reads labelled data (labels), not a plain text' });
    if (s.evalText !== undefined) ctx.addIssue({ code: 'custom', path: ['evalText'], message: "classification fine-tuning holds out a share of the labelled data (labels.heldOut) instead of a held-out text" });
  }
  s.freeze.forEach((entry, i) => {
    if (isFreezeRoleWord(entry) && !(FREEZE_ROLES as readonly string[]).includes(entry)) {
      ctx.addIssue({ code: 'custom', path: ['freeze', i], message: `"${entry}" is not a role Whittle knows (${FREEZE_ROLES.join(', ')}); a pattern on weight names needs a * or a dot, e.g. "*${entry}*"` });
    }
  });
});
export type TrainStep = z.infer<typeof TrainStep>;

// ── distillation (TECHNIQUES.md §3, TRAINING.md) ───────────────────────────────────────────────────

/**
 * The student of a distillation: some of the teacher's blocks (DistilBERT initialisation; block indices
 * in increasing order), a model the user brings (same tokenizer, the vocabulary is checked), or the model
 * the step receives (`{ from: 'input' }`: the previous step's output, recovery after pruning or
 * quantization with the original as teacher).
 */
export const DistillStudent = z.union([
  z.strictObject({
    blocks: z.array(z.int().min(0, 'block indices start at 0')).min(1, 'keep at least one block').max(4096)
      .refine((b) => b.every((x, i) => i === 0 || x > b[i - 1]), 'list each block once, in increasing order (e.g. 0,2,4)'),
  }),
  z.strictObject({ model: path }),
  z.strictObject({ from: z.literal('input') }),
]);
export type DistillStudent = z.infer<typeof DistillStudent>;

/** The training and held-out text of a distillation, and its micro-batch shape. */
export const DistillData = z.strictObject({
  /** The training text (UTF-8; paragraphs separated by blank lines). Must not hold the evaluation text. */
  text: path,
  /** Held-out text: its loss and the teacher–student agreement are measured during training. */
  evalText: path.optional(),
  batch: batchField,
  length: lengthField,
});
export type DistillData = z.infer<typeof DistillData>;

/** α · KL(teacher_T ‖ student_T) · T² + (1 − α) · cross-entropy; reverse: KL(student ‖ teacher); hidden: MSE weight on block outputs. */
export const DistillLossConfig = z.strictObject({
  temperature: z.number().gt(0, 'the temperature must be above 0').max(100).default(2),
  alpha: z.number().min(0, 'alpha is a weight from 0 to 1').max(1, 'alpha is a weight from 0 to 1').default(0.5),
  reverse: z.boolean().default(false),
  hidden: z.number().min(0).max(1000).default(0),
});
export type DistillLossConfig = z.infer<typeof DistillLossConfig>;

/** Teacher logits computed in the same step, or cached once on disk as the top k (with the rest's log-mass). */
export const TeacherSignalConfig = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('logits') }),
  z.strictObject({ kind: z.literal('topk'), k: z.int().min(1).max(65_536).default(32) }),
]);
export type TeacherSignalConfig = z.infer<typeof TeacherSignalConfig>;

/** Low-rank adapters on these roles instead of training every weight; merged into the weights at export. */
/** The linear projections LoRA adapters can sit on (main/engine/train/lora.ts LORA_ROLES; qkv: a fused projection). */
export const LORA_ROLES = ['q', 'k', 'v', 'o', 'qkv', 'gate', 'up', 'down'] as const;

export const LoraConfig = z.strictObject({
  rank: z.int().min(1).max(4096),
  alpha: z.number().gt(0).max(1e6).default(16),
  roles: z.array(z.enum(LORA_ROLES)).min(1).default(['q', 'k', 'v', 'o']),
  /** Dropout probability on the adapters' input during training (inverted dropout; none in evaluation or at export). */
  dropout: z.number().min(0, 'LoRA dropout is a probability from 0 (off) to below 1').lt(1, 'LoRA dropout is a probability below 1; common values are 0.05 to 0.1').default(0),
});
export type LoraConfig = z.infer<typeof LoraConfig>;

/**
 * Knowledge distillation: a student trained on a text to match the teacher's next-token distribution
 * (and the text's next tokens), written in the teacher's layout. The teacher defaults to the recipe's model.
 */
export const DistillStep = z.strictObject({
  type: z.literal('distill'),
  /** The teacher model; unset: the recipe's model (the original, before any step). */
  teacher: path.optional(),
  student: DistillStudent,
  data: DistillData,
  loss: DistillLossConfig.prefault({}),
  teacherSignal: TeacherSignalConfig.prefault({ kind: 'logits' }),
  schedule: TrainSchedule,
  /**
   * Weights kept at their values: roles (FREEZE_ROLES) or glob patterns on initializer names, as the
   * train step's `freeze`; unset: every float weight trains (recovery of RTN/GPTQ freezes norm and embedding).
   */
  freeze: z.array(z.string().min(1)).optional(),
  lora: LoraConfig.optional(),
  /**
   * With `lora` on a MatMulNBits student (the output of an RTN or GPTQ step): how the merged weights are
   * quantized again, with the source's bits, block size and symmetry. RTN (the default) needs nothing more;
   * GPTQ calibrates on its own text.
   */
  requantize: z.discriminatedUnion('method', [
    z.strictObject({ method: z.literal('rtn') }),
    z.strictObject({ method: z.literal('gptq'), calibration: CalibrationConfig }),
  ]).optional(),
  /** Continue an interrupted or cancelled run from its checkpoints. */
  resume: ResumeFrom.optional(),
}).superRefine((s, ctx) => {
  (s.freeze ?? []).forEach((entry, i) => {
    if (isFreezeRoleWord(entry) && !(FREEZE_ROLES as readonly string[]).includes(entry)) {
      ctx.addIssue({ code: 'custom', path: ['freeze', i], message: `"${entry}" is not a role Whittle knows (${FREEZE_ROLES.join(', ')}); a pattern on weight names needs a * or a dot, e.g. "*${entry}*"` });
    }
  });
});
export type DistillStep = z.infer<typeof DistillStep>;

// ── quantization-aware training (TECHNIQUES.md, TRAINING.md) ───────────────────────────────────────

/**
 * KD-QAT (arXiv 2403.18159): the step's input model trained through fake quantization on MatMulNBits'
 * grid, distilled from its own float weights (teacher and student start as the same model), and exported
 * as MatMulNBits. `freezeRoles` ['o', 'v'] is ov-freeze: those projections keep their float values in
 * training and are quantized only at export. The schedule is the train and distill steps' own.
 */
export const QuantizeQatStep = z.strictObject({
  type: z.literal('quantize'),
  method: z.literal('qat'),
  bits: z.union([z.literal(4), z.literal(8)], { error: 'KD-QAT exports 4 or 8 bits (MatMulNBits): choose 4 or 8' }).default(4),
  blockSize: blockSize.default(32),
  symmetric: z.boolean().default(false),
  /** Roles (FREEZE_ROLES) kept in float during training; ['o', 'v'] is ov-freeze. */
  freezeRoles: z.array(z.string().min(1)).default([]),
  /** The training text (UTF-8; paragraphs separated by blank lines). Must not hold the evaluation text. */
  text: path,
  /** Held-out text: its loss and the teacher–student agreement are measured during training. */
  evalText: path.optional(),
  ...scheduleFields,
  lr: scheduleFields.lr.default(2e-4),
  batch: z.int().min(1).max(4096).default(8),
  length: lengthField.default(64),
  temperature: z.number().gt(0, 'the temperature must be above 0').max(100).default(2),
  alpha: z.number().min(0, 'alpha is a weight from 0 to 1').max(1, 'alpha is a weight from 0 to 1').default(0.5),
  /** Continue an interrupted or cancelled run from its checkpoints. */
  resume: ResumeFrom.optional(),
}).superRefine((s, ctx) => {
  checkSchedule(s, ctx);
  s.freezeRoles.forEach((role, i) => {
    if (!(FREEZE_ROLES as readonly string[]).includes(role)) {
      ctx.addIssue({ code: 'custom', path: ['freezeRoles', i], message: `"${role}" is not a role Whittle knows (${FREEZE_ROLES.join(', ')}); ov-freeze is o,v` });
    }
  });
});
export type QuantizeQatStep = z.infer<typeof QuantizeQatStep>;

export const QuantizeStep = z.discriminatedUnion('method', [
  QuantizeRtnStep, QuantizeGptqStep, QuantizeFp16Step, QuantizeInt8DynamicStep, QuantizeInt8StaticStep, QuantizeQatStep,
]);
export type QuantizeStep = z.infer<typeof QuantizeStep>;
export type QuantizeMethod = QuantizeStep['method'];

export const Step = z.discriminatedUnion('type', [QuantizeStep, PruneStep, SensitivityStep, TrainStep, DistillStep]);
export type Step = z.infer<typeof Step>;

/**
 * How an output folder is laid out. 'plain': model.onnx (+ model.onnx.data) with its tokenizer and configs.
 * 'transformers-js': also config.json, generation_config.json and onnx/model<dtype suffix>.onnx, as
 * Transformers.js loads a folder. 'genai': also genai_config.json (ONNX Runtime GenAI), written when the
 * source had none.
 */
export const OUTPUT_LAYOUTS = ['plain', 'transformers-js', 'genai'] as const;
export const OutputLayout = z.enum(OUTPUT_LAYOUTS, { error: () => `the output layout is one of ${OUTPUT_LAYOUTS.join(', ')}` });
export type OutputLayout = z.infer<typeof OutputLayout>;

export const Recipe = z.strictObject({
  version: z.literal(1).default(1),
  name: z.string().max(200).optional(),
  model: z.strictObject({ path }),
  /** A Hugging Face tokenizer.json (tokenizer_config.json beside it is read for BOS/EOS). */
  tokenizer: z.strictObject({ path }).optional(),
  steps: z.array(Step).default([]),
  evaluation: EvaluationConfig.default({ footprint: true }),
  output: z.strictObject({ dir: path.optional(), layout: OutputLayout.optional() }).optional(),
});
export type Recipe = z.infer<typeof Recipe>;
export type RecipeInput = z.input<typeof Recipe>;
