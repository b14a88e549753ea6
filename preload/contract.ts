/**
 * The one contract between the renderer and the main process (ARCHITECTURE seam 1).
 * Every call is `method(params) → result`; every event is `channel(payload)`. Main parses every incoming
 * message with these schemas before a handler runs. Only zod is imported here, so the renderer can
 * `import type` from this file and the transports can validate with it.
 */
import { z } from 'zod';
import { PruneStep, QuantizeStep, type Recipe } from './recipe.ts';
import { SeriesPoint } from './series.ts';
import { SweepGrid, type GridValue } from './sweep.ts';
import type { Comparison } from './comparison.ts';
import type { ParetoSet } from './pareto.ts';

export { Recipe } from './recipe.ts';
export type { RecipeInput } from './recipe.ts';

// ── shared shapes ─────────────────────────────────────────────────────────────────────────────────────

export const ErrorCode = z.enum([
  'MODEL_PARSE', 'UNSUPPORTED_MODEL', 'INVALID_INPUT', 'NOT_FOUND', 'IO', 'OUT_OF_MEMORY', 'CANCELLED',
  'UNAUTHORIZED', 'INTERNAL',
]);
export const ErrorShape = z.strictObject({
  code: ErrorCode,
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ErrorShape = z.infer<typeof ErrorShape>;

export const ExperimentStatus = z.enum(['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted']);
export type ExperimentStatus = z.infer<typeof ExperimentStatus>;

/** Any JS number, NaN and ±Infinity included: a measurement can be undefined (e.g. perplexity of nothing). */
const AnyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

/** One measured number. `subject` says which model it belongs to: the evaluated model, or in a
 *  comparison the 'original' or the 'result'. */
export const Metric = z.strictObject({
  name: z.string().min(1),   // 'perplexity', 'prefill_ms', 'decode_tokens_per_s', 'bytes_on_disk', ...
  value: AnyNumber,
  unit: z.string(),          // '', 'ms', 'tokens/s', 'bytes', 'bits', '%'
  subject: z.string().min(1), // 'model' | 'original' | 'result'
});
export type Metric = z.infer<typeof Metric>;

export const Artefact = z.strictObject({
  kind: z.string().min(1),   // 'model', 'folder', 'report', 'log'
  path: z.string().min(1),
  bytes: z.number().nonnegative().nullable(),
});
export type Artefact = z.infer<typeof Artefact>;

export type GraphKind = 'decoder' | 'decoder-hf-cache' | 'decoder-genai-cache' | 'decoder-unsupported-cache' | 'encoder' | 'unknown';

export interface TensorInfo {
  name: string;
  dtype: string;                      // ONNX names: 'float32', 'float16', 'int64', 'uint8', ...
  shape: (number | string | null)[];  // symbolic dims as strings, unknown as null
}

export const WeightRole = z.enum(['q', 'k', 'v', 'o', 'qkv', 'gate', 'up', 'down', 'fc1', 'fc2', 'lm_head', 'other']);
export type WeightRole = z.infer<typeof WeightRole>;

export interface QuantizableWeight {
  name: string;                       // initializer name
  node: string;                       // consuming node name
  op: 'MatMul' | 'Gemm' | 'Gather';
  shape: number[];
  dtype: string;
  /** MatMul/Gemm: input features K and output features N (Gemm transB taken into account). */
  k?: number;
  n?: number;
  /** Where the architecture map puts it: block index (null outside the blocks) and role. */
  block?: number | null;
  role?: WeightRole;
  /** When set, Whittle will not quantize it and says why. */
  skipReason?: string;
}

/** The architecture map as inspection reports it (main/engine/rewrite/architecture.ts has the full map). */
const Weight = z.string().nullable();
const Count = z.int().positive().nullable();
export const ArchitectureBlockSummary = z.strictObject({
  index: z.int().nonnegative(),
  attention: z.strictObject({ q: Weight, k: Weight, v: Weight, o: Weight, qkv: Weight, heads: Count, kvHeads: Count, headSize: Count }),
  mlp: z.strictObject({ gate: Weight, up: Weight, down: Weight, activation: z.string().nullable(), intermediate: Count }),
  norms: z.array(z.strictObject({ kind: z.enum(['rms', 'layer']), at: z.enum(['attention', 'mlp']), weight: Weight })),
  weights: z.array(z.string()),
});
export const ArchitectureSummary = z.strictObject({
  family: z.enum(['llama', 'gpt2', 'bert', 'unknown']),
  blocks: z.array(ArchitectureBlockSummary),
  embedding: Weight,
  lmHead: Weight,
  tiedEmbedding: z.boolean(),
  finalNorm: Weight,
  normPlacement: z.enum(['pre', 'post']).nullable(),
  issues: z.array(z.string()),
});
export type ArchitectureSummary = z.infer<typeof ArchitectureSummary>;

export interface ModelInspection {
  path: string;
  bytesOnDisk: number;                // model file + external data
  irVersion: number;
  producer: string;
  opsets: { domain: string; version: number }[];
  parameters: number;
  bytesByDtype: Record<string, number>;
  opHistogram: Record<string, number>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  kind: GraphKind;
  /** Decoder facts when detectable: layers, kv heads, head size, vocabulary. */
  decoder?: { layers?: number; kvHeads?: number; headSize?: number; vocabSize?: number };
  /** What Whittle cannot run in this graph (a state input that is not a key/value cache), one line each;
   *  every job refuses such a model. Absent when nothing stands in the way. */
  unsupported?: string[];
  quantizable: QuantizableWeight[];
  externalDataFiles: string[];
  /** Which weight is which: blocks, attention q/k/v/o with head counts, MLP, embedding and LM head. */
  architecture?: ArchitectureSummary;
}

export interface Sample {
  id: string;
  name: string;
  description: string;
  modelPath: string;
  tokenizerPath: string;
  textPath: string;
  /** Text for calibration (GPTQ, static INT8, sensitivity) that does not overlap the evaluation text. */
  calibrationTextPath: string;
}

export interface RecentModel { path: string; lastOpened: string; exists: boolean }

export interface ExperimentSummary {
  id: number;
  name: string;
  kind: string;                        // 'evaluate' | 'quantize' | ...
  status: ExperimentStatus;
  created: string;                     // ISO time
  finished: string | null;
  modelPath: string;
  modelBytes: number | null;
  headline: Metric[];                  // a few key metrics for the list
  starred: boolean;
  pinned: boolean;                     // pinned experiments come first in the list
  tags: string[];                      // sorted
}

/** How many experiments of one kind the history holds. */
export interface KindCount { kind: string; count: number }
/** How many experiments carry one tag. */
export interface TagCount { tag: string; count: number }

export const LogLevel = z.enum(['debug', 'info', 'warn', 'error']);
export interface LogLine { seq: number; time: string; level: z.infer<typeof LogLevel>; text: string }

export interface ExperimentDetail extends ExperimentSummary {
  recipe: unknown;                     // verbatim as submitted
  modelSha256: string | null;
  durationMs: number | null;
  error: ErrorShape | null;
  metrics: Metric[];
  artefacts: Artefact[];
  log: LogLine[];
  tags: string[];
  notes: string;
  /** Extra structured results (e.g. per-document NLL, generations, skipped weights). */
  details: Record<string, unknown>;
  /** The sweep this experiment is a member of (sweeps.get), when it is one. */
  groupId?: number;
}

/** One experiment in a lineage tree (history.lineage); the root is the original model (kind 'model'). */
export interface LineageNode {
  /** The experiment; for the root, the latest evaluation of the original (null when it was never evaluated alone). */
  id: number | null;
  kind: string;
  name: string;
  /** null for the root (a model, not an experiment). */
  status: ExperimentStatus | null;
  modelPath: string;
  headline: Metric[];
  children: LineageNode[];
}

export interface LineageTree {
  root: LineageNode;
  /** The experiment asked about. */
  current: number;
  /** Experiments of the tree left out (a tree holds at most 500). */
  truncated: number;
}

/** A report written (`path`) or returned as text (`content`, for a download). */
export interface ExportedReport {
  path: string | null;
  /** The name a download should get (whittle-12.html). */
  fileName: string;
  format: 'html' | 'md' | 'csv';
  bytes: number;
  content: string | null;
}

/** What `models.importHf` wrote: an ONNX decoder folder made from a Hugging Face model folder. */
export interface ImportedModel {
  outDir: string;
  modelPath: string;
  modelType: string;
  parameters: number;
  dtype: 'fp32' | 'fp16';
  cache: boolean;
  tiedEmbeddings: boolean;
  bytes: number;
  seconds: number;
}

/** GGUF weight types llama.cpp reads that Whittle writes (history.evaluateGguf, `whittle export --type`). */
export const GgufType = z.enum(['f32', 'f16', 'q8_0', 'q4_0', 'q4_1']);
export type GgufType = z.infer<typeof GgufType>;

/** One side of the GGUF comparison: the ONNX result in onnxruntime, or the GGUF file in llama.cpp. */
export interface GgufSide {
  /** Perplexity on the experiment's evaluation text and protocol (null where the experiment has none). */
  perplexity: number | null;
  /** Greedy decoding speed, new tokens per second (onnxruntime: the experiment's speed measurement, when it made one). */
  decodeTokensPerS: number | null;
  generations: { prompt: string; completion: string }[];
}

/** What `history.evaluateGguf` measured: the experiment's result exported as GGUF and run in llama.cpp, beside the ONNX result. */
export interface GgufComparison {
  experimentId: number;
  path: string;
  bytes: number;
  type: GgufType;
  /** Whether the Q4_1 matrices are the result's MatMulNBits codes, carried over without requantizing. */
  exactFromNBits: boolean;
  notes: string[];
  /** The evaluation both sides were measured on. */
  protocol: { text: string; protocol: 'documents' | 'stream'; window: number; maxSamples: number; samples: number; predictedTokens: number };
  onnx: GgufSide;
  llamaCpp: GgufSide;
  seconds: number;
}

/** A bundle written by `history.export`. */
export interface BundleExported {
  path: string;
  bytes: number;
  experiments: number;
  /** Files of output folders packed (0 without outputs). */
  outputFiles: number;
}

/** What `history.import` added: the new ids in the bundle's order, by their ids in the exporting history. */
export interface BundleImported {
  experiments: number;
  ids: { from: number; to: number }[];
  groups: number;
  /** Output folders unpacked, where they went. */
  outputs: string[];
}

// ── calls ────────────────────────────────────────────────────────────────────────────────────────────

const Id = z.int().positive();
const FilePath = z.string().min(1).max(4096);

export const calls = {
  'app.info': { params: z.strictObject({}) },
  'models.inspect': { params: z.strictObject({ path: FilePath }) },
  'models.recent': { params: z.strictObject({}) },
  /** Imports a Hugging Face folder (config.json, safetensors, tokenizer) as an ONNX decoder; `out` defaults to <outputRoot>/imported/<folder name>. */
  'models.importHf': {
    params: z.strictObject({ folder: FilePath, out: FilePath.optional(), dtype: z.enum(['fp32', 'fp16']).default('fp32'), cache: z.boolean().default(true) }),
  },
  /** Opens a native file dialog (desktop). In serve mode answers { path: null, reason }. */
  'models.pickFile': { params: z.strictObject({ purpose: z.enum(['model', 'tokenizer', 'text', 'folder', 'bundle']) }) },
  'samples.list': { params: z.strictObject({}) },
  'jobs.start': { params: z.strictObject({ recipe: z.unknown(), name: z.string().max(200).optional() }) },
  'jobs.cancel': { params: z.strictObject({ jobId: z.string().min(1).max(64) }) },
  'jobs.list': { params: z.strictObject({}) },
  'history.list': {
    params: z.strictObject({
      search: z.string().max(200).optional(),
      status: ExperimentStatus.optional(),
      kind: z.string().max(40).optional(),
      /** Experiments carrying every one of these tags. */
      tags: z.array(z.string().min(1).max(40)).max(20).optional(),
      starred: z.boolean().optional(),
      /** 'relevance': search matches ranked by bm25 (pinned first, as always); without a search it is 'created'. */
      sort: z.enum(['relevance', 'created', 'name', 'status', 'kind']).default('created'),
      order: z.enum(['asc', 'desc']).default('desc'),
      limit: z.int().min(1).max(500).default(100),
      offset: z.int().min(0).default(0),
    }),
  },
  'history.get': { params: z.strictObject({ id: Id }) },
  /** The lineage tree that holds the experiment: the original model, what was made from it, and from that, recursively. */
  'history.lineage': { params: z.strictObject({ id: Id }) },
  'history.delete': { params: z.strictObject({ id: Id }) },
  'history.update': {
    params: z.strictObject({
      id: Id, name: z.string().min(1).max(200).optional(), notes: z.string().max(20_000).optional(), tags: z.array(z.string().min(1).max(40)).max(20).optional(),
      starred: z.boolean().optional(), pinned: z.boolean().optional(),
    }),
  },
  /** Every kind of job Whittle writes, with how many experiments of each the history holds (for filters). */
  'history.kinds': { params: z.strictObject({}) },
  /** The tags in use, most used first. */
  'history.tags': { params: z.strictObject({ limit: z.int().min(1).max(500).default(100) }) },
  /** 2–8 experiments side by side: metrics with changes against the baseline (default the first), recipes diffed, generations, per-weight series, comparability notes. */
  'history.compare': { params: z.strictObject({ ids: z.array(Id).min(2).max(8), baseline: Id.optional() }) },
  /** Every done experiment of one original model (by its sha256 or the path of its file; a derived model leads to its original) as Pareto points. */
  'history.pareto': {
    params: z.strictObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 is 64 lowercase hex digits').optional(), path: FilePath.optional() })
      .refine((p) => (p.sha256 === undefined) !== (p.path === undefined), 'give the model\'s sha256 or its path, one of the two'),
  },
  'recipes.validate': { params: z.strictObject({ recipe: z.unknown() }) },
  /** What a quantize step (any method) would do to a model, weight by weight, and the size it would write (no work done). */
  'quantize.plan': { params: z.strictObject({ path: FilePath, step: QuantizeStep }) },
  /** What a prune step would do to a model: the weights and per-block sparsity or removals, and the size after (no calibration, no work done). */
  'prune.plan': { params: z.strictObject({ path: FilePath, step: PruneStep }) },
  /**
   * What a distillation would start from, before anything runs: the student's size (some of the teacher's
   * blocks) or its check against the teacher (a model brought), and the overlap of the evaluation text
   * with the training text (a warning, not an error).
   */
  'distill.plan': {
    params: z.strictObject({
      teacher: FilePath,
      /** Kept teacher blocks (a student of the teacher's blocks), or… */
      blocks: z.array(z.int().min(0)).min(1).max(4096).optional(),
      /** …a student model the user brings. */
      student: FilePath.optional(),
      tokenizer: FilePath.optional(),
      text: FilePath.optional(),
      evalText: FilePath.optional(),
    }),
  },
  /** A report of one experiment, or of 2–8 compared against `baseline`: written to `path`, or returned as text when no path is given. */
  'reports.export': {
    params: z.strictObject({ ids: z.array(Id).min(1).max(8), format: z.enum(['html', 'md', 'csv']).default('html'), path: FilePath.optional(), baseline: Id.optional() }),
  },
  /** Experiments (rows, metrics, logs, notes, tags, lineage, groups; optionally output folders) to one bundle file. */
  'history.export': { params: z.strictObject({ ids: z.array(Id).min(1).max(10_000), path: FilePath, withOutputs: z.boolean().default(false) }) },
  /**
   * Exports a done experiment's result (a Llama-family ONNX) as GGUF beside it and runs it in llama.cpp on
   * the experiment's evaluation text, protocol and prompts. `type` unset: q4_1 for a 4-bit, block-32,
   * asymmetric GPTQ/RTN result (exact), else f16.
   */
  'history.evaluateGguf': { params: z.strictObject({ id: Id, type: GgufType.optional() }) },
  /** A bundle from `history.export` into this history: checked in full first, then added in one transaction. */
  'history.import': { params: z.strictObject({ path: FilePath }) },
  /** Shows a file or folder in the OS file manager (desktop). In serve mode answers { opened: false, reason }. */
  'files.reveal': { params: z.strictObject({ path: FilePath }) },
  /**
   * A sweep: the recipe with every combination of the grid's values (`steps.0.bits: [4, 8]`) written in,
   * each checked before anything runs, then one group and one queued experiment per combination.
   */
  'sweeps.start': { params: z.strictObject({ recipe: z.unknown(), grid: SweepGrid, name: z.string().max(200).optional() }) },
  'sweeps.get': { params: z.strictObject({ id: Id }) },
  /** Queues again the combinations of a sweep that are not done, queued or running (after a restart, a cancel, a failure). */
  'sweeps.resume': { params: z.strictObject({ id: Id }) },
  /** The newest sweeps with their member counts. */
  'sweeps.list': { params: z.strictObject({ limit: z.int().min(1).max(500).default(50) }) },
} as const;

export interface AppInfo {
  version: string;
  transport: 'electron' | 'serve' | 'memory';
  platform: string;
  home: string;                         // where the history lives
  node: string;
  onnxruntime: string;
  nativeKernels: boolean;
}

export interface JobInfo {
  jobId: string;
  experimentId: number;
  name: string;
  status: 'queued' | 'running';
  progress: JobProgress | null;
  /** The points of the series the job has streamed so far (a training curve), in order. */
  points?: SeriesPoint[];
}

/** One weight in a quantize plan: what the step would do with it and the bytes before and after. */
export interface QuantizePlanWeight {
  name: string;
  node: string;
  op: QuantizableWeight['op'];
  shape: number[];
  dtype: string;
  /** 'keep': left in full precision by a keep pattern; 'skip': Whittle cannot or will not quantize it. */
  action: 'quantize' | 'keep' | 'skip';
  reason?: string;
  /** Bits per stored value after the step, for 'quantize' rows (16 for FP16; an override's bits where one matches). */
  bits?: number;
  /** The `overrides` pattern that gives this weight other bits than the step's. */
  override?: string;
  bytesBefore: number;
  bytesAfter: number;
}

export interface QuantizePlan {
  path: string;
  weights: QuantizePlanWeight[];
  /** Whole model on disk before, and the estimate after (model file + external data). */
  bytesBefore: number;
  bytesAfter: number;
  modelBytes: number;
  counts: { quantize: number; keep: number; skip: number };
  /** The step's method, and the model's parameter count (for rough time estimates). */
  method?: QuantizeStep['method'];
  parameters?: number;
  /** What the estimate leaves out, in words (e.g. FP16: tensors feeding float32-only ops stay float32). */
  note?: string;
}

/** One weight an unstructured prune step would prune, where it sits and the sparsity it gets. */
export interface PrunePlanWeight {
  name: string;
  block: number | null;
  role: string;
  shape: number[];
  /** Input features K (N:M groups run along K). */
  k: number;
  params: number;
  /** The weight's sparsity under uniform allocation; null under OWL (set by calibration). */
  sparsity: number | null;
}

/** One row of the preview's per-block table. */
export interface PrunePlanBlock {
  /** null: weights outside the transformer blocks. */
  block: number | null;
  /** Unstructured: the weights pruned in the block and their parameters. */
  weights: number;
  params: number;
  /** Unstructured: the block's sparsity (uniform), or null with `note` (OWL: set by calibration). */
  sparsity: number | null;
  note?: string;
  /** Structured: the block's shape and what the step removes from it. */
  heads?: number | null;
  kvHeads?: number | null;
  intermediate?: number | null;
  /** Structured: heads, neurons or (layers) 1 removed from this block; kept: true when a keep pattern saves it. */
  removed?: number;
  kept?: boolean;
  removedParams?: number;
}

/** `distill.plan`: the student before it is built, and the overlap of the texts. */
export interface DistillPlan {
  /** A student of the teacher's blocks: the kept blocks, its parameters and model bytes, and the teacher's. */
  student: { blocks: number[]; params: number; bytes: number; teacherParams: number; teacherBytes: number } | null;
  /** A student the user brings: the vocabulary both share and their block counts. */
  check: { vocab: number; teacherBlocks: number; studentBlocks: number } | null;
  /** The held-out paragraphs the training text also holds (with both texts given). */
  overlap: { evalParagraphs: number; shared: number; fraction: number; examples: string[]; sameFile: boolean } | null;
  /** What the result will list as warnings (evaluation text inside the training text). */
  warnings: string[];
}

export interface PrunePlan {
  path: string;
  method: PruneStep['method'];
  /** Unstructured: the overall sparsity asked for and the allocation; structured: null. */
  sparsity: number | null;
  allocation: 'uniform' | 'owl' | null;
  weights: PrunePlanWeight[];
  /** Weights left dense, with why (tied embedding, LM head, keep patterns, …). */
  skipped: { name: string; reason: string }[];
  blocks: PrunePlanBlock[];
  /** N:M only: whether every pruned weight's K divides by M, and the weights that do not. */
  nm: { pattern: string; ok: boolean; failing: { name: string; k: number }[] } | null;
  /** Structured only: the target, how many parts per block (or blocks) go, query heads per KV group. */
  structured: { target: 'heads' | 'neurons' | 'layers'; perBlock: number; groupSize: number; removedHeads?: number } | null;
  parametersBefore: number;
  /** Entries set to zero (unstructured) or removed from the graph (structured). */
  parametersZeroed: number;
  parametersRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
  /** One line: the estimate, honest about what it does not change. */
  note: string;
}

/** An experiment group (a sweep) as the history keeps it: its base recipe and grid, verbatim. */
export interface ExperimentGroup {
  id: number;
  created: string;
  name: string;
  kind: string;
  recipe: unknown;
  grid: SweepGrid;
}

/** A sweep (sweeps.get): its recipe and grid, its members with the grid values each ran, and their statuses. */
export interface SweepView extends ExperimentGroup {
  /** Combinations in the grid. */
  size: number;
  /** Combinations with no member done, queued or running: what "Resume sweep" would queue. */
  remaining: number;
  counts: Partial<Record<ExperimentStatus, number>>;
  /** Oldest first (a resumed combination appears again, later). */
  members: (ExperimentSummary & { assignment: Record<string, GridValue> })[];
}

/** Result types of the calls, by method. */
export interface CallResults {
  'app.info': AppInfo;
  'models.inspect': ModelInspection;
  'models.recent': RecentModel[];
  'models.importHf': ImportedModel;
  'models.pickFile': { path: string | null; reason?: string };
  'samples.list': Sample[];
  'jobs.start': { jobId: string; experimentId: number };
  'jobs.cancel': { cancelled: boolean };
  'jobs.list': JobInfo[];
  'history.list': { items: ExperimentSummary[]; total: number };
  'history.get': ExperimentDetail;
  'history.lineage': LineageTree;
  'history.delete': { deleted: boolean };
  'history.update': ExperimentDetail;
  'history.kinds': KindCount[];
  'history.tags': TagCount[];
  'history.compare': Comparison;
  'history.pareto': ParetoSet;
  'recipes.validate': { ok: true; recipe: Recipe } | { ok: false; issues: { path: string; message: string }[] };
  'quantize.plan': QuantizePlan;
  'prune.plan': PrunePlan;
  'distill.plan': DistillPlan;
  'reports.export': ExportedReport;
  'history.export': BundleExported;
  'history.evaluateGguf': GgufComparison;
  'history.import': BundleImported;
  'files.reveal': { opened: boolean; reason?: string };
  'sweeps.start': { groupId: number; jobs: { jobId: string; experimentId: number }[] };
  'sweeps.get': SweepView;
  'sweeps.resume': { groupId: number; jobs: { jobId: string; experimentId: number }[] };
  'sweeps.list': { id: number; created: string; name: string; members: number }[];
}

export type CallName = keyof typeof calls;
export type CallParams<M extends CallName> = z.input<(typeof calls)[M]['params']>;
export type ParsedParams<M extends CallName> = z.output<(typeof calls)[M]['params']>;

// ── events ───────────────────────────────────────────────────────────────────────────────────────────

const JobRef = { jobId: z.string().min(1), experimentId: z.int().positive(), seq: z.int().positive() };

/** One phase of a job as a segment of its progress bar: its expected share of the whole job (shares add up to 1). */
export const ProgressSegment = z.strictObject({ phase: z.string().min(1), share: z.number().nonnegative() });
export type ProgressSegment = z.infer<typeof ProgressSegment>;

export const JobProgress = z.strictObject({
  ...JobRef,
  /** The current phase and its own count. */
  phase: z.string().min(1),
  done: z.number().nonnegative(),
  total: z.number().nonnegative(),
  /** Seconds left for the whole job. */
  etaSeconds: z.number().nonnegative().nullable(),
  message: z.string(),
  /** The whole job's progress, 0 … 1 (never decreasing), over the planned phases in `segments`. */
  overall: z.number().min(0).max(1).optional(),
  segments: z.array(ProgressSegment).optional(),
});
export type JobProgress = z.infer<typeof JobProgress>;

export const JobLog = z.strictObject({ ...JobRef, time: z.string().min(1), level: LogLevel, text: z.string() });
export type JobLog = z.infer<typeof JobLog>;

/**
 * Points of the named series the job streams (a training curve: series 'train'; preload/series.ts), in the
 * order they happened. A step can take milliseconds, so points are sent in batches a few times a second.
 */
export const JobPoints = z.strictObject({ ...JobRef, points: z.array(SeriesPoint).min(1).max(100_000) });
export type JobPoints = z.infer<typeof JobPoints>;

export const JobResult = z.strictObject({
  ...JobRef,
  metrics: z.array(Metric),
  artefacts: z.array(Artefact),
  details: z.record(z.string(), z.unknown()),
});
export type JobResult = z.infer<typeof JobResult>;

export const JobFinished = z.strictObject({
  ...JobRef,
  status: z.enum(['done', 'failed', 'cancelled']),
  error: ErrorShape.nullable(),
});
export type JobFinished = z.infer<typeof JobFinished>;

/** Every event main sends, by channel. Clients validate what they receive against these. */
export const events = {
  'job.progress': JobProgress,
  'job.log': JobLog,
  'job.points': JobPoints,
  'job.result': JobResult,
  'job.finished': JobFinished,
  'history.changed': z.strictObject({ experimentId: z.int().positive().nullable() }),
} as const;

export type EventPayloads = { [E in keyof typeof events]: z.infer<(typeof events)[E]> };
export type EventName = keyof EventPayloads;
export const eventNames = ['job.progress', 'job.log', 'job.points', 'job.result', 'job.finished', 'history.changed'] as const satisfies readonly EventName[];

// ── wire format (both transports) ────────────────────────────────────────────────────────────────────

export const CallMessage = z.strictObject({
  type: z.literal('call'),
  id: z.int().nonnegative(),
  method: z.string().max(64),
  params: z.unknown(),
});
export type CallMessage = z.infer<typeof CallMessage>;

export type ReplyMessage =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: ErrorShape };

export interface EventMessage<E extends EventName = EventName> { type: 'event'; channel: E; payload: EventPayloads[E] }

/** What the renderer sees as `window.whittle` (both transports provide the same shape). */
export interface WhittleApi {
  call<M extends CallName>(method: M, params: CallParams<M>): Promise<CallResults[M]>;
  on<E extends EventName>(channel: E, listener: (payload: EventPayloads[E]) => void): () => void;
}

export function isCallName(name: string): name is CallName {
  return Object.prototype.hasOwnProperty.call(calls, name);
}
