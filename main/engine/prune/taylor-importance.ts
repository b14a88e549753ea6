/**
 * First-order Taylor importance for structured pruning (LLM-Pruner, arXiv 2305.11627 §3.2). Zeroing a
 * group of weights W_k changes the calibration loss L by, to first order,
 *   L(W with W_k = 0) − L(W) ≈ −Σ_{i∈k} w_i·g_i,      g = ∂L/∂W
 * so the group's importance is
 *   group   (vector-wise):  I_k = |Σ_{i∈k} w_i·g_i|
 *   element (element-wise): I_k = Σ_{i∈k} |w_i·g_i|
 * with L the mean next-token cross-entropy over every counted token of the calibration samples.
 *
 * Groups, weights [in, out] (rows = inputs), as the magnitude scores form them (structured-importance.ts):
 *   heads, KV group g (G query heads per KV head, head size d):
 *     q columns and o rows [g·G·d, (g+1)·G·d); k and v columns [g·d, (g+1)·d); the same entries of q/k/v biases
 *   neurons, unit j: gate and up column j (and bias entry j), down row j
 *   layers, block b: every entry of its q, k, v, o, gate, up, down and their biases
 *
 * The gradients come from the training engine (TRAINING.md): a training view of the model in which only
 * the weights above are trainable (embeddings, norms and the LM head stay frozen initializers), its
 * train-step graph (cross-entropy head), run on the calibration samples B at a time. The graph returns
 * ∂(Σ token losses)/∂w per batch; the sums over batches, divided by the counted tokens, are ∂L/∂w.
 * Scores are then formed one block at a time from the view's weights and those sums: no copy of the
 * model is kept beyond the training view and one gradient accumulator per trainable weight.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TaylorAggregate } from '../../../preload/recipe.ts';
import { sampleCalibration } from '../calibrate/sampling.ts';
import { validateCalibration } from '../calibrate/validate.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { addInto } from '../native/optimizer.ts';
import { readModel } from '../onnx/reader.ts';
import type { ArchitectureBlock, ArchitectureMap } from '../rewrite/architecture.ts';
import { crossEntropyHead } from '../train/loss-head.ts';
import { availableMemory, suggestShape } from '../train/memory.ts';
import { StepSession, type Batch } from '../train/session.ts';
import { compileTrainStep } from '../train/step-graph.ts';
import { buildTrainingView, profileActivations } from '../train/view.ts';
import type { CalibrationSource } from './structured-importance.ts';
import type { StructuredTarget } from './structured-plan.ts';

/** A weight as the score needs it: its values and dims ([rows, cols], or [n] for a bias). */
export interface WeightValues {
  dims: readonly number[];
  data: Float32Array;
}

/** How a group's terms are read from one weight: per column, per row, or every entry as one. */
type Axis = 'cols' | 'rows' | 'all';

/** One weight's part in the groups of a block: its name, the axis along which groups run, the run width. */
interface GroupSlice {
  name: string;
  axis: Axis;
  /** Consecutive columns / rows (or bias entries) that form one group. */
  width: number;
}

/**
 * Σ f(scale · w_i · g_i) per column (axis 'cols'), per row ('rows') or over everything ('all', one value),
 * for w, g row-major [rows, cols]; a 1-D weight is one row. f = identity ('group') or |·| ('element').
 */
export function taylorTerms(w: WeightValues, grad: Float32Array, axis: Axis, aggregate: TaylorAggregate, scale: number): Float64Array {
  const rows = w.dims.length >= 2 ? w.dims[0] : 1;
  const cols = w.dims.length >= 2 ? w.data.length / rows : w.data.length;
  if (grad.length !== w.data.length) throw new WhittleError('INTERNAL', `A gradient of ${grad.length} values for a weight of ${w.data.length}.`);
  const out = new Float64Array(axis === 'cols' ? cols : axis === 'rows' ? rows : 1);
  const abs = aggregate === 'element';
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const t = scale * w.data[i] * grad[i];
      out[axis === 'cols' ? c : axis === 'rows' ? r : 0] += abs ? Math.abs(t) : t;
    }
  }
  return out;
}

/** Sums of `v` over consecutive runs of `width`: the groups. */
function runs(v: Float64Array, width: number): Float64Array {
  const out = new Float64Array(Math.floor(v.length / width));
  for (let g = 0; g < out.length; g++) for (let i = g * width; i < (g + 1) * width; i++) out[g] += v[i];
  return out;
}

/** The weights of block `b` that form its groups for `target` (see the header); biases where present. */
function groupSlices(b: ArchitectureBlock, target: StructuredTarget): GroupSlice[] {
  const a = b.attention, m = b.mlp;
  const slices: GroupSlice[] = [];
  const add = (name: string | null, axis: Axis, width: number): void => { if (name) slices.push({ name, axis, width }); };
  if (target === 'heads') {
    const d = a.headSize!, G = a.heads! / a.kvHeads!;
    add(a.q, 'cols', G * d); add(a.k, 'cols', d); add(a.v, 'cols', d); add(a.o, 'rows', G * d);
    add(a.biases.q, 'cols', G * d); add(a.biases.k, 'cols', d); add(a.biases.v, 'cols', d);
  } else if (target === 'neurons') {
    add(m.gate, 'cols', 1); add(m.up, 'cols', 1); add(m.down, 'rows', 1);
    add(m.biases.gate, 'cols', 1); add(m.biases.up, 'cols', 1);
  } else {
    for (const name of [a.q, a.k, a.v, a.o, a.qkv, m.gate, m.up, m.down, ...Object.values(a.biases), ...Object.values(m.biases)]) add(name, 'all', 1);
  }
  return slices;
}

/** The weights whose gradients `target`'s scores need, with whether each must be present (matrices) or may be absent (biases). */
export function taylorWeights(map: ArchitectureMap, target: StructuredTarget): Map<string, { required: boolean }> {
  const out = new Map<string, { required: boolean }>();
  for (const b of map.blocks) {
    const a = b.attention, m = b.mlp;
    const matrices = new Set([a.q, a.k, a.v, a.o, a.qkv, m.gate, m.up, m.down].filter((n): n is string => n !== null));
    for (const s of groupSlices(b, target)) out.set(s.name, { required: matrices.has(s.name) });
  }
  return out;
}

/**
 * Scores[block][part] from weights and summed gradients (pure; see the header). `gradOf(name)` is
 * ∂(Σ token losses)/∂w summed over the batches, `tokens` the counted tokens, so g = gradOf / tokens.
 * A weight without a gradient (`gradOf` undefined: an absent bias) adds nothing.
 */
export function taylorScoresFrom(
  map: ArchitectureMap, target: StructuredTarget, aggregate: TaylorAggregate, tokens: number,
  weightOf: (name: string) => WeightValues | undefined, gradOf: (name: string) => Float32Array | undefined,
): number[][] {
  const scale = tokens > 0 ? 1 / tokens : 0;
  return map.blocks.map((b) => {
    const parts = target === 'heads' ? b.attention.kvHeads! : target === 'neurons' ? b.mlp.intermediate! : 1;
    const sum = new Float64Array(parts);
    for (const s of groupSlices(b, target)) {
      const w = weightOf(s.name), g = gradOf(s.name);
      if (!w || !g) continue;
      const terms = runs(taylorTerms(w, g, s.axis, aggregate, scale), s.width);
      if (terms.length !== parts) throw new WhittleError('INTERNAL', `${s.name} forms ${terms.length} groups where block ${b.index} has ${parts}.`, { weight: s.name });
      terms.forEach((t, k) => { sum[k] += t; });
    }
    return Array.from(sum, Math.abs);
  });
}

export interface TaylorOptions {
  aggregate?: TaylorAggregate;
  /** At most this many calibration samples per run (default 8; fewer where memory asks). */
  batch?: number;
  /** onnxruntime intra-op threads; 0 = its default. */
  threads?: number;
}

const DEFAULT_BATCH = 8;
const MEMORY_PROBE_LENGTH = 16;
/** Share of the available memory the gradient runs may plan to use. */
const MEMORY_HEADROOM = 0.8;

/** Calibration samples as next-token batches of B rows and T = L − 1 positions; rows past the samples are padding (labels −1). */
export function calibrationBatches(samples: readonly number[][], batch: number): Batch[] {
  const T = samples[0].length - 1;
  const out: Batch[] = [];
  for (let first = 0; first < samples.length; first += batch) {
    const inputIds = new BigInt64Array(batch * T);
    const labels = new BigInt64Array(batch * T).fill(-1n);
    for (let row = 0; row < batch && first + row < samples.length; row++) {
      const ids = samples[first + row];
      for (let t = 0; t < T; t++) {
        inputIds[row * T + t] = BigInt(ids[t]);
        labels[row * T + t] = BigInt(ids[t + 1]);
      }
    }
    out.push({ inputIds, labels });
  }
  return out;
}

/**
 * Taylor importance (see the header) of `target`'s parts of the model at `src.modelPath`, measured on
 * its calibration text: scores[block][part], lower = less important.
 */
export async function taylorScores(map: ArchitectureMap, target: StructuredTarget, src: CalibrationSource, ctx: JobContext, options: TaylorOptions = {}): Promise<number[][]> {
  const aggregate = options.aggregate ?? 'group';
  const source = await readModel(src.modelPath);
  const prepared = await validateCalibration({ model: source, tokenizerPath: src.tokenizerPath, calibration: src.calibration, what: 'Taylor importance' });
  const L = prepared.calibration.length;
  const T = L - 1;
  const wanted = taylorWeights(map, target);
  const scratch = path.join(ctx.workDir, `.taylor-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch, { recursive: true });
  let session: StepSession | null = null;
  try {
    // Rows per run: as many as asked that fit in memory (every weight counted as trainable: an upper bound).
    const { profile, weights: weightCount } = await profileActivations(source, Math.min(MEMORY_PROBE_LENGTH, T), { scratchDir: scratch, threads: options.threads });
    const budget = (await availableMemory()) * MEMORY_HEADROOM;
    const fit = suggestShape(profile, Math.min(options.batch ?? DEFAULT_BATCH, prepared.calibration.samples), T, weightCount, 0, budget);
    if (!fit || fit.length < T) {
      throw new WhittleError('OUT_OF_MEMORY', `The Taylor importance's gradients over ${L}-token calibration samples do not fit in the memory free now. Use a shorter calibration length${fit ? ` (${fit.length + 1} tokens would fit)` : ''} or free memory.`, { length: L, suggestion: fit });
    }
    const B = fit.batch;

    ctx.progress({ phase: 'calibrate', done: 0, total: prepared.calibration.samples, message: 'taylor importance: building the gradient graph' });
    const view = await buildTrainingView(source, map, { batch: B, length: T, frozen: (p) => !wanted.has(p.name), scratchDir: scratch, threads: options.threads });
    const trainable = new Set(view.trainable.map((p) => p.name));
    const missing = [...wanted].filter(([name, w]) => w.required && !trainable.has(name)).map(([name]) => name);
    if (missing.length) {
      throw new WhittleError('UNSUPPORTED_MODEL', `The Taylor importance needs the gradients of float weights, but ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''} `
        + 'did not become trainable weights of the training view (quantized or shared weights). Use the magnitude or activation importance.', { weights: missing });
    }
    const weights = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
    const step = compileTrainStep(view, crossEntropyHead(B, T, view.vocab));
    session = await StepSession.open(step, view.trainable, weights, [B, T], path.join(scratch, 'step'), options.threads);

    const samples = sampleCalibration(prepared.text, prepared.tokenizer, prepared.options);
    const sums = weights.map((w) => new Float32Array(w.length));
    let tokens = 0;
    let done = 0;
    for (const batch of calibrationBatches(samples, B)) {
      throwIfAborted(ctx.signal);
      const r = await session.run(batch);
      await addInto(sums, r.grads);
      tokens += r.tokenCount;
      done = Math.min(samples.length, done + B);
      ctx.progress({ phase: 'calibrate', done, total: samples.length, message: 'taylor importance' });
    }
    await session.close();
    session = null;

    const index = new Map(view.trainable.map((p, i) => [p.name, i]));
    const at = <V>(list: V[]) => (name: string): V | undefined => { const i = index.get(name); return i === undefined ? undefined : list[i]; };
    const values = view.trainable.map((p, i) => ({ dims: p.dims, data: weights[i] }));
    return taylorScoresFrom(map, target, aggregate, tokens, at(values), at(sums));
  } finally {
    await session?.close().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}
