/**
 * Per-layer quantization sensitivity: how much the model's predictions move when only one weight (or one
 * transformer block) is quantized. An analysis: the model is not changed.
 *
 * Every eligible weight W [K, N] is quantized once with the step's `quantize` settings (RTN: the block-wise
 * quantizer; GPTQ: with the Hessians of one calibration pass over the original model) and dequantized
 * back to float, Ŵ, in the weight's own layout and type. For each candidate c (a weight, or the weights
 * of one block) a model is written that differs from the original only in c's initializers (Ŵ instead of
 * W); every other tensor is shared with the original by hard link (calibrate/capture-plan.ts), so a
 * candidate costs a small .onnx, not a copy of the weights. On `samples` calibration sequences x of L tokens:
 *
 *   KL_c = mean over predicted positions t of KL( p(· | x≤t) ‖ p_c(· | x≤t) )   (nats per token)
 *
 * with p the original's next-token distribution and p_c the candidate's (agreement.ts compareRow). The
 * ranking sorts candidates by KL_c, largest first; the baseline is the KL with every weight quantized.
 * The original's logits are computed once and kept when they fit in `logitsBudgetBytes`, else recomputed
 * beside each candidate. The scored sequences are `samples` sequences drawn from `calibration` (its text,
 * length and seed); a GPTQ `quantize` calibrates its Hessians on its own `calibration`.
 * Memory: one float weight at a time while quantizing (Ŵ goes straight to a scratch file), then two
 * onnxruntime sessions (original and candidate) and one batch of logits each.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { SENSITIVITY } from '../../../preload/methods.ts';
import { SensitivityStep, type CalibrationConfig } from '../../../preload/recipe.ts';
import { sampleCalibration, validateCalibration, writeCaptureModel } from '../calibrate/index.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { compareSequence } from '../evaluate/agreement.ts';
import { openDecoder, type Decoder } from '../evaluate/decoder-session.ts';
import type { JobContext } from '../job-context.ts';
import { dequantizeBlockwise, f32ToF16 } from '../native/index.ts';
import { initializerMap } from '../onnx/graph.ts';
import type { OnnxModel, TensorProto, TensorSource } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { collectHessians, gptqQuantizer, type GptqSettings } from './gptq.ts';
import { transpose2d } from './layout.ts';
import type { SensitivityEntry } from './mixed-precision.ts';
import { TensorSpool } from '../rewrite/spool.ts';
import type { QuantTarget } from './targets.ts';
import { WeightReader } from '../rewrite/weight-reader.ts';
import { asKernelWeight, nothingToQuantizeMessage, planWeightOnly, rtnQuantizer, type WeightQuantizer } from './weight-only.ts';

export interface SensitivityOptions {
  tokenizerPath?: string;
  /** GPTQ: refuse above this many bytes of Hessians (see gptq.ts). */
  hessianBudgetBytes?: number;
  /** Keep the original's logits in memory up to this size (default 256 MiB); beyond, recompute them. */
  logitsBudgetBytes?: number;
  /** Intra-op threads for onnxruntime (0 = its default). */
  threads?: number;
}

export interface SensitivityResult {
  /** Candidates sorted by KL, largest first. */
  sensitivity: SensitivityEntry[];
  /** Every candidate quantized at once. */
  baseline: { kl: number; params: number };
  granularity: 'weight' | 'block';
  method: 'rtn' | 'gptq';
  /** Sequences scored and predicted tokens per candidate. */
  samples: number;
  tokens: number;
  calibration: CalibrationConfig;
  skipped: { name: string; reason: string }[];
}

export interface Candidate {
  name: string;
  weights: string[];
}

/** The transformer block a weight belongs to, from its name ('model.layers.3.…', 'h.3.…', 'blocks.3.…'), else null. */
export function blockIndexOf(name: string): number | null {
  const named = /(?:^|[._/])(?:layers?|blocks?|h|decoder[._/]layers?|transformer[._/]h)[._/](\d+)(?=[._/]|$)/i.exec(name);
  if (named) return Number(named[1]);
  const any = /(\d+)/.exec(name);
  return any ? Number(any[1]) : null;
}

/**
 * Candidates of the analysis: one per weight, or one per block. Weights whose name carries no number
 * are grouped by graph position instead: each joins the block of the nearest numbered weight before it
 * (or 'block 0' at the start).
 */
export function candidatesFor(targets: readonly Pick<QuantTarget, 'weight'>[], granularity: 'weight' | 'block'): Candidate[] {
  if (granularity === 'weight') return targets.map((t) => ({ name: t.weight, weights: [t.weight] }));
  const blocks = new Map<number, string[]>();
  let current = 0;
  for (const t of targets) {
    const index = blockIndexOf(t.weight);
    if (index !== null) current = index;
    const list = blocks.get(current);
    if (list) list.push(t.weight);
    else blocks.set(current, [t.weight]);
  }
  return [...blocks.entries()].sort((a, b) => a[0] - b[0]).map(([i, weights]) => ({ name: `block ${i}`, weights }));
}

// ── the original's logits and KL ─────────────────────────────────────────────────────────────────────

const BATCH_LOGITS_BYTES = 64 * 2 ** 20;

/** Batches of sample indices whose logits fit in about 64 MiB each. */
function batchesOf(samples: readonly number[][], vocab: number): number[][] {
  const longest = Math.max(...samples.map((s) => s.length));
  const rows = Math.max(1, Math.min(16, Math.floor(BATCH_LOGITS_BYTES / (longest * vocab * 4))));
  const out: number[][] = [];
  for (let i = 0; i < samples.length; i += rows) out.push(samples.slice(i, i + rows).map((_, j) => i + j));
  return out;
}

/** The original model's logits per batch: kept in memory when they fit the budget, else recomputed. */
export class ReferenceLogits {
  readonly decoder: Decoder;
  readonly samples: number[][];
  readonly batches: number[][];
  private readonly cache: ({ logits: Float32Array; seqLen: number } | null)[];
  private readonly keep: boolean;

  constructor(decoder: Decoder, samples: number[][], budgetBytes = 256 * 2 ** 20) {
    this.decoder = decoder;
    this.samples = samples;
    this.batches = batchesOf(samples, decoder.vocabSize);
    const bytes = samples.reduce((a, s) => a + s.length * decoder.vocabSize * 4, 0);
    this.keep = bytes <= budgetBytes;
    this.cache = this.batches.map(() => null);
  }

  async batch(i: number): Promise<{ logits: Float32Array; seqLen: number }> {
    const cached = this.cache[i];
    if (cached) return cached;
    const r = await this.decoder.forwardBatch(this.batches[i].map((j) => this.samples[j]));
    if (this.keep) this.cache[i] = r;
    return r;
  }

  /** Mean KL(original ‖ candidate) per predicted token over all samples, and the token count. */
  async klOf(candidate: Decoder, signal?: AbortSignal): Promise<{ kl: number; tokens: number }> {
    const vocab = this.decoder.vocabSize;
    if (candidate.vocabSize !== vocab) throw new WhittleError('INTERNAL', `A candidate predicts ${candidate.vocabSize} tokens, the original ${vocab}.`);
    let kl = 0;
    let tokens = 0;
    for (let b = 0; b < this.batches.length; b++) {
      throwIfAborted(signal);
      const p = await this.batch(b);
      const rows = this.batches[b].map((j) => this.samples[j]);
      const q = await candidate.forwardBatch(rows);
      rows.forEach((ids, r) => {
        const c = compareSequence(p.logits, r * p.seqLen * vocab, q.logits, r * q.seqLen * vocab, vocab, ids);
        kl += c.klSum;
        tokens += c.positions;
      });
    }
    if (!Number.isFinite(kl)) throw new WhittleError('UNSUPPORTED_MODEL', 'The KL divergence is not finite: a quantized candidate produced NaN or infinite logits.');
    return { kl: kl / Math.max(1, tokens), tokens };
  }
}

/** Mean KL(original ‖ candidate) per token of two model files on the given token sequences. */
export async function measureKl(originalPath: string, candidatePath: string, samples: number[][], threads = 0): Promise<{ kl: number; tokens: number }> {
  const p = await openDecoder(originalPath, { threads });
  try {
    const q = await openDecoder(candidatePath, { threads });
    try {
      return await new ReferenceLogits(p, samples, 0).klOf(q);
    } finally {
      await q.release();
    }
  } finally {
    await p.release();
  }
}

// ── quantize → dequantize ────────────────────────────────────────────────────────────────────────────

/** Ŵ in the stored layout and type of the initializer ([N, K] again for Gemm transB = 1; fp16 bits for fp16). */
async function storedBytes(w: Float32Array, target: QuantTarget): Promise<Uint8Array> {
  const stored = target.transposed ? transpose2d(w, target.k, target.n) : w;
  const out = target.dtype === 'float16' ? await f32ToF16(stored) : stored;
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function withData(t: TensorProto, data: TensorSource): TensorProto {
  return { ...t, data };
}

/** A copy of `model` whose initializers named in `replace` take the given data (the rest shared). */
function substituted(model: OnnxModel, replace: ReadonlyMap<string, TensorSource>): OnnxModel {
  const graph = model.proto.graph!;
  return {
    ...model,
    proto: { ...model.proto, graph: { ...graph, initializer: graph.initializer.map((t) => (t.name !== undefined && replace.has(t.name) ? withData(t, replace.get(t.name)!) : t)) } },
  };
}

function tokenizerOf(options: SensitivityOptions, recipeTokenizer?: string): string {
  const t = options.tokenizerPath ?? recipeTokenizer;
  if (!t) throw new WhittleError('INVALID_INPUT', "The sensitivity analysis scores calibration text, which needs a tokenizer. Add the model's tokenizer.json to the recipe.");
  return t;
}

export async function analyzeSensitivity(modelPath: string, stepInput: SensitivityStep, ctx: JobContext, options: SensitivityOptions = {}): Promise<SensitivityResult> {
  const step = SensitivityStep.parse(stepInput);
  const q = step.quantize;
  const source = path.resolve(modelPath);
  const tokenizerPath = tokenizerOf(options);
  // Everything the analysis reads is checked before any work.
  const what = 'The sensitivity analysis';
  const scoring = await validateCalibration({ modelPath: source, tokenizerPath, calibration: { ...step.calibration, samples: step.samples }, what });
  if (q.method === 'gptq') await validateCalibration({ modelPath: source, tokenizer: scoring.tokenizer, calibration: q.calibration, what: `${what} (GPTQ)` });
  throwIfAborted(ctx.signal);

  const model = await readModel(source);
  const { plan, bitsOf } = planWeightOnly(model, q);
  if (plan.targets.length === 0) throw new WhittleError('INVALID_INPUT', nothingToQuantizeMessage(plan), { skipped: plan.skipped });
  const candidates = candidatesFor(plan.targets, step.granularity);
  const byWeight = new Map(plan.targets.map((t) => [t.weight, t]));

  const work = await mkdtemp(path.join(await ensureDir(ctx.workDir), 'sensitivity-'));
  const spool = new TensorSpool(path.join(work, 'dequantized.bin'), 0);
  const reader = new WeightReader();
  let reference: ReferenceLogits | null = null;
  try {
    // 1. Quantize every weight once and keep Ŵ in a scratch file.
    let quantizer: WeightQuantizer = rtnQuantizer(q);
    if (q.method === 'gptq') {
      ctx.progress({ phase: 'calibrate', done: 0, total: 1 });
      const hessians = await collectHessians(model, plan.targets, q.calibration, tokenizerPath, ctx, options.hessianBudgetBytes);
      const settings: GptqSettings = { blockSize: q.blockSize, symmetric: q.symmetric, percdamp: q.percdamp, actOrder: q.actOrder, columnBlock: q.columnBlock };
      quantizer = gptqQuantizer(hessians, settings);
      ctx.progress({ phase: 'calibrate', done: 1, total: 1 });
    }
    const inits = initializerMap(model.proto.graph!);
    const dequantized = new Map<string, TensorSource>();
    ctx.progress({ phase: 'quantize', done: 0, total: plan.targets.length });
    for (const [i, target] of plan.targets.entries()) {
      throwIfAborted(ctx.signal);
      const weight = asKernelWeight(await reader.read(inits.get(target.weight)!), target);
      const { q: quantized } = await quantizer.quantize(target, weight, bitsOf(target.weight));
      dequantized.set(target.weight, await spool.append(await storedBytes(await dequantizeBlockwise(quantized), target)));
      ctx.progress({ phase: 'quantize', done: i + 1, total: plan.targets.length, message: target.weight });
    }
    await reader.close();
    await spool.close();

    // 2. The original's logits on the scoring samples.
    const samples = sampleCalibration(scoring.text, scoring.tokenizer, scoring.options);
    const original = await openDecoder(source, { threads: options.threads ?? 0 });
    reference = new ReferenceLogits(original, samples, options.logitsBudgetBytes);

    // 3. One model per candidate (+ the baseline with every weight quantized).
    const score = async (weights: readonly string[]): Promise<{ kl: number; tokens: number }> => {
      const files = await writeCaptureModel(substituted(model, new Map(weights.map((w) => [w, dequantized.get(w)!]))), work, ctx.signal);
      try {
        const d = await openDecoder(files.modelPath, { threads: options.threads ?? 0 });
        try {
          return await reference!.klOf(d, ctx.signal);
        } finally {
          await d.release();
        }
      } finally {
        await files.remove();
      }
    };
    const total = candidates.length + 1;
    const entries: SensitivityEntry[] = [];
    let tokens = 0;
    ctx.progress({ phase: 'sensitivity', done: 0, total });
    for (const [i, c] of candidates.entries()) {
      const r = await score(c.weights);
      tokens = r.tokens;
      const bits = [...new Set(c.weights.map(bitsOf))];
      entries.push({
        name: c.name, kl: r.kl, bits: bits.length === 1 ? bits[0] : q.bits, params: c.weights.reduce((a, w) => a + byWeight.get(w)!.k * byWeight.get(w)!.n, 0), weights: c.weights,
      });
      ctx.progress({ phase: 'sensitivity', done: i + 1, total, message: c.name });
    }
    const baseline = await score(plan.targets.map((t) => t.weight));
    ctx.progress({ phase: 'sensitivity', done: total, total, message: 'all weights' });
    entries.sort((a, b) => b.kl - a.kl || a.name.localeCompare(b.name));
    ctx.log('info', `sensitivity: ${entries.length} candidate(s); most sensitive ${entries[0].name} (KL ${entries[0].kl.toExponential(3)}); all quantized: KL ${baseline.kl.toExponential(3)} nats/token`);
    return {
      sensitivity: entries,
      baseline: { kl: baseline.kl, params: plan.targets.reduce((a, t) => a + t.k * t.n, 0) },
      granularity: step.granularity,
      method: q.method,
      samples: samples.length,
      tokens,
      calibration: step.calibration,
      skipped: plan.skipped.map((s) => ({ name: s.name, reason: s.reason })),
    };
  } finally {
    await reference?.decoder.release();
    await reader.close();
    await spool.remove().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The recipe step `{ type: 'sensitivity' }`: an analysis, so the model passes through unchanged. */
export const sensitivityStep: StepRunner<SensitivityStep> = {
  description: SENSITIVITY,
  async run(input: StepInput<SensitivityStep>, ctx: JobContext): Promise<StepOutput> {
    const r = await analyzeSensitivity(input.modelPath, input.step, ctx, { tokenizerPath: input.recipe.tokenizer?.path, threads: input.recipe.evaluation.speed?.threads ?? 0 });
    const q = input.step.quantize;
    return {
      modelPath: input.modelPath,
      artefacts: [],
      details: {
        analysis: 'sensitivity',
        granularity: r.granularity,
        method: r.method,
        quantize: { method: q.method, bits: q.bits, blockSize: q.blockSize, symmetric: q.symmetric, overrides: q.overrides },
        metric: 'mean KL(original ‖ only this candidate quantized) per predicted token, nats',
        samples: r.samples,
        tokens: r.tokens,
        calibration: r.calibration,
        sensitivity: r.sensitivity,
        baseline: r.baseline,
        skipped: r.skipped,
      },
    };
  },
};
