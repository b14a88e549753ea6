/**
 * Weight-only round-to-nearest (RTN) quantization of MatMul/Gemm weights to com.microsoft.MatMulNBits
 * (or blocked DequantizeLinear → MatMul), written as a complete output folder.
 *
 * Per weight W [K, N], one at a time (read into a reused buffer → quantize → spool → drop; the next
 * weight is read while the current one is quantized):
 *   kBlocks = ceil(K / blockSize); per column n and block b of W's column, a scale (and for asymmetric
 *   a zero point) from the block's min/max, q = clamp(round(w / scale) + zp) — ONNX Runtime's rule, in
 *   native-kernels/src/blockwise_format.h.
 * The rewrite is "node in → nodes out" (rewrite.ts) inside the shared weight loop (rewrite/weight-loop.ts);
 * unused float initializers are swept afterwards and everything else is copied through by reference by
 * the model writer. Memory: two float weights plus a bounded spool of quantized bytes (rewrite/spool.ts),
 * whatever the model's size.
 *
 * Mixed precision: `overrides` [{ pattern, bits }] give a weight other bits than `bits` (the first pattern
 * matching its initializer name wins); each weight's bits are recorded in whittle.json.
 * `quantizeWeightsInto` is shared with GPTQ (gptq.ts), which plugs in its own
 * per-weight quantizer after a calibration pass; RTN's quantizer is `quantizeBlockwise`.
 */
import path from 'node:path';
import { QuantizeRtnStep, type BitsOverride, type QuantizeGptqStep } from '../../../preload/recipe.ts';
import { isWhittleError, WhittleError, throwIfAborted } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { readModel } from '../onnx/reader.ts';
import { ensureOpset, NameScope } from '../onnx/graph.ts';
import { floatToHalf } from '../onnx/tensor-data.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import { quantizeBlockwise, type BlockwiseQuantized as NativeQuantized, type QuantBits } from '../native/index.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import { transformWeights, type WeightEdit } from '../rewrite/weight-loop.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';
import { scaleInPlace, transpose2d, type BlockwiseQuantized } from './layout.ts';
import { planTargets, type QuantTarget, type SkippedWeight, type TargetPlan } from './targets.ts';
import { toDequantizeMatMul, toMatMulNBits, type RewriteOptions } from './rewrite.ts';
import { prepareForBlockedDequantize } from './qdq-opset.ts';

/** Where the output goes and what travels with it (the output-folder lifecycle's options). */
export type QuantizeOptions = OutputOptions;

/** A quantized weight as recorded in whittle.json, with the facts its quantizer adds (GPTQ: loss, dead inputs). */
export type QuantizedWeight = ManifestWeight & Record<string, unknown>;

export interface QuantizeResult extends WrittenFolder {
  quantized: QuantizedWeight[];
  skipped: SkippedWeight[];
  /** Warnings for the step summary (skipWarnings: many weights skipped for a reason the user can change). */
  warnings: string[];
  /** The step's default bits (overrides may give single weights others; see `quantized[i].bits`). */
  bits: number;
  blockSize: number;
  format: 'matmulnbits' | 'qdq';
  /** Σ over quantized weights of Σ (w − dequant(w))². */
  sqError: number;
}

/** The settings of a weight-only step that the shared loop reads (RTN and GPTQ). */
export type WeightOnlyStep = QuantizeRtnStep | QuantizeGptqStep;

/** One weight quantized by a pipeline's quantizer. */
export interface WeightQuantization {
  q: NativeQuantized;
  /** Extra facts recorded with the weight in whittle.json and the step details. */
  facts?: Record<string, unknown>;
}

export interface WeightQuantizer {
  /** Quantizes one target's weight W [K, N] (row-major; float32, or float16 bits for fp16 models). */
  quantize(target: QuantTarget, weight: Float32Array | Uint16Array, bits: QuantBits): Promise<WeightQuantization>;
}

/** How a weight-only method plugs into the shared loop. */
export interface WeightOnlyPipeline {
  /**
   * Runs after the targets are planned and before the output folder is created (GPTQ calibrates here).
   * `bitsOf` gives each target's bits (step.bits or an override).
   */
  prepare(model: OnnxModel, plan: TargetPlan, bitsOf: (weight: string) => QuantBits): Promise<WeightQuantizer>;
  /** Extra top-level entries of whittle.json (e.g. the calibration settings). */
  manifestExtra?(): Record<string, unknown>;
}

export function compilePatterns(patterns: string[], what: string): RegExp[] {
  return patterns.map((p) => {
    try {
      return new RegExp(p);
    } catch (e) {
      throw new WhittleError('INVALID_INPUT', `The ${what} pattern '${p}' is not a valid regular expression: ${(e as Error).message}`, { pattern: p });
    }
  });
}

/**
 * Each weight's bits: the first override whose pattern matches the initializer name, else `bits`.
 * Bad patterns are INVALID_INPUT errors (before any work).
 */
export function bitsResolver(bits: QuantBits, overrides: BitsOverride[]): (weight: string) => QuantBits {
  const compiled = compilePatterns(overrides.map((o) => o.pattern), 'override').map((re, i) => ({ re, bits: overrides[i].bits as QuantBits }));
  return (weight) => compiled.find((o) => o.re.test(weight))?.bits ?? bits;
}

/** The pinned message for a model with nothing left to quantize. */
export function nothingToQuantizeMessage(plan: TargetPlan): string {
  const reasons: string[] = [];
  if (plan.alreadyQuantized > 0) reasons.push(`${plan.alreadyQuantized} node(s) are already quantized`);
  const shown = plan.skipped.slice(0, 6).map((s) => `${s.name}: ${s.reason}`);
  if (plan.skipped.length > shown.length) shown.push(`and ${plan.skipped.length - shown.length} more`);
  reasons.push(...shown);
  if (reasons.length === 0) reasons.push('the model has no MatMul or Gemm with a constant float weight');
  return `Nothing to quantize: ${reasons.join('; ')}.`;
}

const KEEP_REASON = /^kept in full precision: the name matches a keep pattern/;
const BLOCK_REASON = /^K = (\d+) is smaller than one block \((\d+)\)$/;

/** The largest power of two from 16 to 256 that is at most `k` (the recipe's block sizes), or null when none is. */
function blockSizeFor(k: number): number | null {
  let b = 256;
  while (b > k && b > 16) b /= 2;
  return b <= k ? b : null;
}

/**
 * A warning when more than a quarter of the MatMul weights the step could quantize were skipped for a
 * reason the user can change: K below one block (a smaller block size fits them) or a keep pattern.
 * "Could quantize" = quantized + skipped for those reasons; reasons that are the graph's own (shared,
 * 3-D, already quantized, …) count in neither.
 */
export function skipWarnings(plan: Pick<TargetPlan, 'targets' | 'skipped'>, step: Pick<WeightOnlyStep, 'blockSize'>): string[] {
  const blockKs = plan.skipped.map((s) => BLOCK_REASON.exec(s.reason)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1]));
  const kept = plan.skipped.filter((s) => KEEP_REASON.test(s.reason)).length;
  const changeable = blockKs.length + kept;
  const eligible = plan.targets.length + changeable;
  if (changeable === 0 || changeable * 4 <= eligible) return [];
  const causes: string[] = [];
  if (blockKs.length > 0) {
    const smallest = Math.min(...blockKs);
    const fits = blockSizeFor(smallest);
    const ks = [...new Set(blockKs)].sort((a, b) => a - b).join(', ');
    causes.push(`${blockKs.length} because K = ${ks} is smaller than one block (${step.blockSize})`
      + (fits !== null ? `; use a block size of ${fits} (--block-size ${fits}) to quantize them` : '; no block size fits them'));
  }
  if (kept > 0) causes.push(`${kept} because they match a keep pattern; remove the pattern to quantize them`);
  return [`${changeable} of ${eligible} weights were skipped and stay in full precision: ${causes.join('. ')}.`];
}

/** The weight as the kernel wants it: row-major [K, N], float32 or fp16 bits. */
export function asKernelWeight(bytes: Uint8Array, target: QuantTarget): Float32Array | Uint16Array {
  const width = target.dtype === 'float16' ? 2 : 4;
  const elements = target.k * target.n;
  if (bytes.length !== elements * width) {
    throw new WhittleError('MODEL_PARSE', `Weight '${target.weight}' holds ${bytes.length} bytes; its shape [${target.shape.join(', ')}] needs ${elements * width}.`);
  }
  if (bytes.byteOffset % width !== 0) bytes = bytes.slice();
  const w = target.dtype === 'float16'
    ? new Uint16Array(bytes.buffer, bytes.byteOffset, elements)
    : new Float32Array(bytes.buffer, bytes.byteOffset, elements);
  // Gemm transB = 1 stores [N, K].
  return target.transposed ? transpose2d(w, target.n, target.k) : w;
}

/** Round-to-nearest: each weight on its own with the block-wise quantizer (no calibration). */
export function rtnQuantizer(step: Pick<WeightOnlyStep, 'blockSize' | 'symmetric'>): WeightQuantizer {
  return {
    quantize: async (target, weight, bits) => ({
      q: await quantizeBlockwise(weight, {
        k: target.k, n: target.n, bits, blockSize: step.blockSize, symmetric: step.symmetric,
        weightIsFp16: target.dtype === 'float16',
      }),
    }),
  };
}

export function rtnPipeline(step: Pick<WeightOnlyStep, 'blockSize' | 'symmetric'>): WeightOnlyPipeline {
  return { prepare: async () => rtnQuantizer(step) };
}

/**
 * Quantizes every eligible MatMul/Gemm weight of `modelPath` and writes the output folder `outDir`
 * (model.onnx + model.onnx.data, tokenizer/config companions, genai_config.json, whittle.json).
 * Nothing is left at `outDir` unless the whole job succeeds.
 */
export async function quantizeWeightOnly(modelPath: string, stepInput: QuantizeRtnStep, outDir: string, ctx: JobContext, options: QuantizeOptions = {}): Promise<QuantizeResult> {
  const step = QuantizeRtnStep.parse(stepInput);
  return quantizeWeightsInto(modelPath, step, outDir, ctx, options, rtnPipeline(step));
}

/** Checks a weight-only step's patterns and format before any work; returns the keep patterns and each weight's bits. */
export function checkWeightOnlySettings(step: WeightOnlyStep): { keep: RegExp[]; bitsOf: (weight: string) => QuantBits } {
  const keep = compilePatterns(step.keep, 'keep');
  const bitsOf = bitsResolver(step.bits, step.overrides);
  if (step.format === 'qdq' && (step.bits === 2 || step.overrides.some((o) => o.bits === 2))) {
    throw new WhittleError('INVALID_INPUT', 'The QDQ format has no 2-bit type that onnxruntime runs; use the MatMulNBits format for 2-bit weights, or 4/8 bits.', { bits: 2 });
  }
  return { keep, bitsOf };
}

/** Plans the targets of a weight-only step (keep patterns, skip reasons). */
export function planWeightOnly(model: OnnxModel, step: WeightOnlyStep): { plan: TargetPlan; bitsOf: (weight: string) => QuantBits } {
  const { keep, bitsOf } = checkWeightOnlySettings(step);
  const graph = model.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', `${model.path} has no graph.`);
  return { plan: planTargets(graph, { blockSize: step.blockSize, keep }), bitsOf };
}

/**
 * The weight-only method over the shared weight loop (rewrite/weight-loop.ts) and output-folder lifecycle
 * (rewrite/write-folder.ts); `pipeline` supplies the per-weight quantizer. Each weight's transform is
 * quantize → fold a Gemm alpha into the scales → node in, nodes out (MatMulNBits or DequantizeLinear → MatMul).
 */
export async function quantizeWeightsInto(
  modelPath: string,
  step: WeightOnlyStep,
  outDir: string,
  ctx: JobContext,
  options: QuantizeOptions,
  pipeline: WeightOnlyPipeline,
): Promise<QuantizeResult> {
  const { keep, bitsOf } = checkWeightOnlySettings(step);
  throwIfAborted(ctx.signal);
  const source = path.resolve(modelPath);
  const model = await readModel(source);
  const graph = model.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);

  const plan = planTargets(graph, { blockSize: step.blockSize, keep });
  for (const s of plan.skipped) ctx.log('info', `skip ${s.name}: ${s.reason}`);
  if (plan.targets.length === 0) {
    throw new WhittleError('INVALID_INPUT', nothingToQuantizeMessage(plan), { skipped: plan.skipped, alreadyQuantized: plan.alreadyQuantized });
  }
  const warnings = skipWarnings(plan, step);
  for (const w of warnings) ctx.log('warn', w);
  const quantizer = await pipeline.prepare(model, plan, bitsOf);
  throwIfAborted(ctx.signal);

  const names = NameScope.fromModel(model.proto);
  const uniqueName = (base: string): string => names.fresh(base);
  if (step.format === 'qdq') {
    const adapted = prepareForBlockedDequantize(model.proto, uniqueName);
    if (adapted) ctx.log('info', `opset raised to 21 for blocked DequantizeLinear; ${adapted} Reduce node(s) now take axes as an input`);
  }
  // Scales of fp16 weights are rounded to fp16 by the quantizer, so this conversion is exact (unless a
  // Gemm alpha was folded into them).
  const f32ToF16 = (x: Float32Array): Uint16Array => Uint16Array.from(x, floatToHalf);
  const rewriteOptions: RewriteOptions = { bits: step.bits, blockSize: step.blockSize, accuracyLevel: step.accuracyLevel, uniqueName, f32ToF16 };

  const quantized: QuantizedWeight[] = [];
  let sqError = 0;
  const out = await writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    async rewrite(m, io) {
      await transformWeights(graph, plan.targets, io, ctx, {
        phase: 'quantize',
        decode: asKernelWeight,
        async transform(target, weight): Promise<WeightEdit> {
          const bits = bitsOf(target.weight);
          const { q, facts } = await quantizer.quantize(target, weight, bits).catch((e: unknown) => { throw namingWeight(e, target.weight); });
          if (target.alpha !== 1) scaleInPlace(q.scales, target.alpha);
          const blockwise: BlockwiseQuantized = q;
          const rep = step.format === 'qdq' ? toDequantizeMatMul(target, blockwise, rewriteOptions) : toMatMulNBits(target, blockwise, rewriteOptions);
          sqError += q.sqError;
          quantized.push({ name: target.weight, shape: target.shape, bits, blockSize: step.blockSize, status: 'quantized', sqError: q.sqError, ...facts });
          return { kind: 'replace-nodes', nodes: rep.nodes, tensors: rep.tensors };
        },
      });
      if (step.format === 'matmulnbits') ensureOpset(m.proto, 'com.microsoft', 1);
    },
    manifest: () => ({
      weights: [...quantized, ...skippedManifestWeights(plan.skipped)],
      extra: pipeline.manifestExtra?.() ?? {},
    }),
  });
  const overridden = quantized.filter((w) => w.bits !== step.bits).length;
  ctx.log('info', `quantized ${quantized.length} weight(s) to ${step.bits} bits (block ${step.blockSize})${overridden ? `, ${overridden} with other bits by override` : ''}; skipped ${plan.skipped.length}`);
  return {
    outDir: out.outDir,
    modelPath: out.modelPath,
    pending: out.pending,
    quantized,
    skipped: plan.skipped,
    warnings,
    bits: step.bits,
    blockSize: step.blockSize,
    format: step.format,
    bytes: out.bytes,
    files: out.files,
    sqError,
  };
}

/**
 * A quantizer's INVALID_INPUT about "the weight" (NaN / infinite values, a scale that does not fit) with
 * the weight's name put in, so the user knows which tensor of the model is wrong.
 */
export function namingWeight(e: unknown, weight: string): unknown {
  if (!isWhittleError(e) || e.code !== 'INVALID_INPUT' || e.message.includes(`'${weight}'`)) return e;
  const message = e.message.startsWith('The weight ') ? `Weight '${weight}' ${e.message.slice('The weight '.length)}` : `Weight '${weight}': ${e.message}`;
  return new WhittleError(e.code, message, { ...e.details, weight }, { cause: e });
}

/** The planner's skipped weights as whittle.json records them. */
export function skippedManifestWeights(skipped: readonly SkippedWeight[]): ManifestWeight[] {
  return skipped.map((s) => ({ name: s.name, shape: s.shape, bits: null, blockSize: null, status: 'skipped', reason: s.reason }));
}
