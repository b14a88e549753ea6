/**
 * GPTQ weight-only quantization (Frantar et al., arXiv 2210.17323) to com.microsoft.MatMulNBits (or QDQ),
 * through the same streaming loop and rewrite as RTN (weight-only.ts); only the per-weight quantizer differs.
 *
 * For a linear layer Y = X·W with W [K, N] and calibration inputs X [rows, K]:
 *   H = 2/rows · XᵀX  [K, K]   (accumulated natively as Σ xᵀx over the calibration tokens)
 * GPTQ quantizes W's rows (input features) one at a time and spreads each row's rounding error over the
 * rows not yet quantized, weighted by H⁻¹ — minimising ‖X·W − X·Ŵ‖² rather than ‖W − Ŵ‖². The kernel
 * (native/index.ts gptqQuantize) dampens H (percdamp · mean diag), zeroes dead inputs (diag 0), optionally
 * sweeps in act-order (decreasing diag H, static groups: no g_idx), and writes the MatMulNBits layout.
 *
 * Calibration is sequential by default (`sequential: true`, calibrate/sequential.ts): the weights are
 * quantized level by level (q/k/v, then o, then gate/up, then down, block after block), each level
 * calibrated on what the already-quantized levels before it produce, as in the paper's "true-sequential"
 * mode; memory = one level's Hessians + the activations at one level boundary. With `sequential: false`
 * it is one pass over the ORIGINAL model: the Hessians of every distinct activation input (q/k/v share
 * one) are accumulated at once; memory = the session + all Hessians (Σ K² floats) + one batch. Either way
 * the Hessian memory is logged and refused above `hessianBudgetBytes` (OUT_OF_MEMORY).
 * fp16 weights are converted to float32 for the math; their scales are written in fp16.
 */
import os from 'node:os';
import { GPTQ } from '../../../preload/methods.ts';
import { QuantizeGptqStep, type CalibrationConfig, type Recipe } from '../../../preload/recipe.ts';
import { activationInputsFor, collectCalibrationStats, validateCalibration, type TensorStats } from '../calibrate/index.ts';
import { planSegments } from '../calibrate/segments.ts';
import { calibrateSequentially, type WeightValue } from '../calibrate/sequential.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { detectDecoderLayout } from '../model/layout.ts';
import { dequantizeBlockwise, f16ToF32, f32ToF16, gptqQuantize, type BlockwiseQuantized, type QuantBits } from '../native/index.ts';
import { initializerMap } from '../onnx/graph.ts';
import type { GraphProto, OnnxModel, TensorProto } from '../onnx/proto-types.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { folderStepOutput, stepOutputDir } from './step.ts';
import { transpose2d } from './layout.ts';
import type { QuantTarget } from './targets.ts';
import { WeightReader } from '../rewrite/weight-reader.ts';
import {
  asKernelWeight, checkWeightOnlySettings, quantizeWeightsInto, type QuantizeOptions, type QuantizeResult, type WeightOnlyPipeline, type WeightQuantization,
  type WeightQuantizer,
} from './weight-only.ts';

export interface GptqOptions extends QuantizeOptions {
  /** Refuse when all Hessians together would take more bytes than this (default: half the physical memory). */
  hessianBudgetBytes?: number;
}

/** Hessian statistics of one activation input, shared by the weights that read it. */
export interface HessianStats {
  /** The activation tensor. */
  tensor: string;
  /** K: features of the input. */
  d: number;
  /** Calibration tokens accumulated (rows of X). */
  rows: number;
  /** Σ xᵀx, [d, d] row-major. */
  hessian: Float32Array;
  /** The target weights reading it. */
  weights: string[];
}

export interface GptqSettings {
  blockSize: number;
  symmetric: boolean;
  percdamp: number;
  actOrder: boolean;
  columnBlock: number;
}

const HESSIAN_FLOAT_BYTES = 4;

/** Bytes of all Hessians of the given inputs (Σ d² floats). */
export function hessianBytes(inputs: readonly { d: number }[]): number {
  return inputs.reduce((a, i) => a + i.d * i.d * HESSIAN_FLOAT_BYTES, 0);
}

export function defaultHessianBudget(): number {
  return Math.floor(os.totalmem() / 2);
}

const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * One calibration pass over the original model collecting XᵀX of every distinct activation input of
 * `targets`. Checks the Hessian memory against `budget` first.
 */
export async function collectHessians(
  model: OnnxModel,
  targets: readonly QuantTarget[],
  calibration: CalibrationConfig,
  tokenizerPath: string,
  ctx: JobContext,
  budget = defaultHessianBudget(),
): Promise<Map<string, HessianStats>> {
  const inputs = activationInputsFor(model, targets);
  const bytes = hessianBytes(inputs);
  ctx.log('info', `GPTQ: ${inputs.length} distinct activation input(s) for ${targets.length} weight(s); Hessians take ${gib(bytes)} (${bytes} bytes)`);
  if (bytes > budget) {
    throw new WhittleError(
      'OUT_OF_MEMORY',
      `GPTQ needs ${gib(bytes)} for the Hessians of ${inputs.length} layer inputs (all collected in one calibration pass), more than the ${gib(budget)} allowed. ` +
        'Quantize fewer weights at a time (keep patterns), use RTN, or run on a machine with more memory.',
      { hessianBytes: bytes, budget, inputs: inputs.length },
    );
  }
  ctx.log('info', `GPTQ: calibrating on ${calibration.samples} × ${calibration.length} tokens (seed ${calibration.seed}), one pass over the original model`);
  const stats = await collectCalibrationStats({ modelPath: model.path, tensors: inputs.map((i) => i.tensor), accumulators: ['hessian'], calibration, tokenizerPath }, ctx);
  const out = new Map<string, HessianStats>();
  for (const input of inputs) {
    const s = stats.get(input.tensor);
    if (!s?.hessian) throw new WhittleError('INTERNAL', `Calibration returned no Hessian for ${input.tensor}.`);
    const h: HessianStats = { tensor: input.tensor, d: s.d, rows: s.rows, hessian: s.hessian, weights: input.weights };
    for (const w of input.weights) out.set(w, h);
  }
  return out;
}

/** A weight as float32 [K, N] for the GPTQ math (fp16 bits converted). */
async function asFloat32(weight: Float32Array | Uint16Array): Promise<Float32Array> {
  return weight instanceof Float32Array ? weight : f16ToF32(weight);
}

/** The per-weight GPTQ quantizer over collected Hessians. */
export function gptqQuantizer(hessians: ReadonlyMap<string, HessianStats>, settings: GptqSettings): WeightQuantizer {
  return {
    async quantize(target, weight, bits) {
      const h = hessians.get(target.weight);
      if (!h) throw new WhittleError('INTERNAL', `No Hessian was collected for ${target.weight}.`);
      if (h.d !== target.k) throw new WhittleError('INTERNAL', `The Hessian of ${target.weight}'s input has ${h.d} features; the weight has K = ${target.k}.`);
      const w = await asFloat32(weight);
      const q = await gptqQuantize(w, h.hessian, h.rows, {
        k: target.k, n: target.n, bits, blockSize: settings.blockSize, symmetric: settings.symmetric,
        percdamp: settings.percdamp, actOrder: settings.actOrder, columnBlock: settings.columnBlock,
        scalesFp16: target.dtype === 'float16', label: target.weight,
      });
      return { q, facts: { loss: q.loss, deadInputs: q.dead } };
    },
  };
}

/**
 * Sequential GPTQ (calibrate/sequential.ts): the weights are quantized level by level while calibrating,
 * each level from the inputs the already-quantized levels before it produce; the dequantized weights are
 * what later levels see. The returned quantizer hands the loop the results made here. Memory: one level's
 * Hessians (refused above `budget`) + the quantized weights until they are written (≈ bits/32 of the
 * float weights).
 */
export async function quantizeGptqSequentially(
  model: OnnxModel,
  targets: readonly QuantTarget[],
  bitsOf: (weight: string) => QuantBits,
  settings: GptqSettings,
  calibration: CalibrationConfig,
  tokenizerPath: string,
  ctx: JobContext,
  budget = defaultHessianBudget(),
): Promise<{ quantizer: WeightQuantizer; hessians: Map<string, HessianStats> }> {
  const graph = model.proto.graph as GraphProto;
  const { levels, activations } = planSegments(graph, targets, [detectDecoderLayout(model).inputIds.name]);
  const levelBytes = levels.map((level) => hessianBytes(activationInputsFor(model, level)));
  const peak = Math.max(0, ...levelBytes);
  ctx.log('info', `GPTQ: ${targets.length} weight(s) in ${levels.length} level(s); the largest level's Hessians take ${gib(peak)} (${peak} bytes)`);
  if (peak > budget) {
    throw new WhittleError(
      'OUT_OF_MEMORY',
      `GPTQ needs ${gib(peak)} for the Hessians of one level of weights, more than the ${gib(budget)} allowed. Quantize fewer weights (keep patterns), use RTN, or run on a machine with more memory.`,
      { hessianBytes: peak, budget },
    );
  }
  const inits = initializerMap(graph);
  const results = new Map<string, WeightQuantization>();
  const hessians = new Map<string, HessianStats>();
  const reader = new WeightReader();
  try {
    await calibrateSequentially({
      model, targets, accumulators: ['hessian'], calibration, tokenizerPath, what: 'GPTQ',
      compress: async (level) => {
        const values = new Map<string, WeightValue>();
        const byTensor = new Map<string, HessianStats>();
        for (const target of level.targets) {
          const s = level.stats.get(target.weight) as TensorStats;
          const tensor = activations.get(target.weight) as string;
          let h = byTensor.get(tensor);
          if (!h) {
            h = { tensor, d: s.d, rows: s.rows, hessian: s.hessian as Float32Array, weights: [] };
            byTensor.set(tensor, h);
          }
          h.weights.push(target.weight);
          hessians.set(target.weight, h);
          const weight = asKernelWeight(await reader.read(inits.get(target.weight) as TensorProto), target);
          const r = await gptqQuantizer(hessians, settings).quantize(target, weight, bitsOf(target.weight));
          results.set(target.weight, r);
          values.set(target.weight, await storedValue(r.q, target));
        }
        // The Hessians are not needed any more once the level is quantized; keep only their facts.
        for (const h of byTensor.values()) h.hessian = EMPTY;
        ctx.log('info', `GPTQ: level ${level.index + 1}/${level.count} quantized: ${describeLevel(level.targets)}`);
        return values;
      },
    }, ctx);
  } finally {
    await reader.close();
  }
  return {
    hessians,
    quantizer: {
      async quantize(target) {
        const r = results.get(target.weight);
        if (!r) throw new WhittleError('INTERNAL', `GPTQ: ${target.weight} was not quantized during sequential calibration.`);
        results.delete(target.weight);
        return r;
      },
    },
  };
}

const EMPTY = new Float32Array(0);

/** "block 2: q, k, v" from the architecture map's roles (the weight names where a weight has none). */
function describeLevel(targets: readonly QuantTarget[]): string {
  const byBlock = new Map<string, string[]>();
  for (const t of targets) {
    const where = t.block === null || t.block === undefined ? 'outside the blocks' : `block ${t.block}`;
    const what = t.role && t.role !== 'other' ? t.role : t.weight;
    byBlock.set(where, [...(byBlock.get(where) ?? []), what]);
  }
  return [...byBlock].map(([where, roles]) => `${where}: ${roles.join(', ')}`).join('; ');
}

/** The dequantized weight in the layout and type it is stored in (what onnxruntime sees in the next levels). */
async function storedValue(q: BlockwiseQuantized, target: QuantTarget): Promise<WeightValue> {
  const w = await dequantizeBlockwise(q); // [K, N]
  const stored = target.transposed ? transpose2d(w, target.k, target.n) : w;
  return target.dtype === 'float16' ? await f32ToF16(stored) : stored;
}

function tokenizerOf(options: QuantizeOptions, what: string): string {
  const tokenizerPath = options.tokenizerPath ?? options.recipe?.tokenizer?.path;
  if (!tokenizerPath) {
    throw new WhittleError('INVALID_INPUT', `${what} needs calibration text, which needs a tokenizer. Add the model's tokenizer.json to the recipe.`);
  }
  return tokenizerPath;
}

export interface GptqResult extends QuantizeResult {
  calibration: CalibrationConfig;
  /** Calibration tokens (rows) behind each distinct activation input. */
  hessians: { tensor: string; d: number; rows: number; weights: string[] }[];
}

/**
 * GPTQ-quantizes every eligible MatMul/Gemm weight of `modelPath` into the output folder `outDir`.
 * The calibration settings are checked before any work; nothing is left at `outDir` unless it succeeds.
 */
export async function quantizeGptq(modelPath: string, stepInput: QuantizeGptqStep, outDir: string, ctx: JobContext, options: GptqOptions = {}): Promise<GptqResult> {
  const step = QuantizeGptqStep.parse(stepInput);
  checkWeightOnlySettings(step);
  const tokenizerPath = tokenizerOf(options, 'GPTQ');
  await validateCalibration({ modelPath, tokenizerPath, calibration: step.calibration, what: 'GPTQ' });
  throwIfAborted(ctx.signal);

  let hessians = new Map<string, HessianStats>();
  const settings: GptqSettings = { blockSize: step.blockSize, symmetric: step.symmetric, percdamp: step.percdamp, actOrder: step.actOrder, columnBlock: step.columnBlock };
  const pipeline: WeightOnlyPipeline = {
    async prepare(model, plan, bitsOf) {
      if (step.sequential) {
        const r = await quantizeGptqSequentially(model, plan.targets, bitsOf, settings, step.calibration, tokenizerPath, ctx, options.hessianBudgetBytes);
        hessians = r.hessians;
        return r.quantizer;
      }
      hessians = await collectHessians(model, plan.targets, step.calibration, tokenizerPath, ctx, options.hessianBudgetBytes);
      return gptqQuantizer(hessians, settings);
    },
    manifestExtra: () => ({ gptq: { percdamp: step.percdamp, actOrder: step.actOrder, columnBlock: step.columnBlock, calibration: step.calibration, sequential: step.sequential } }),
  };
  const r = await quantizeWeightsInto(modelPath, step, outDir, ctx, options, pipeline);
  const distinct = [...new Set(hessians.values())].map((h) => ({ tensor: h.tensor, d: h.d, rows: h.rows, weights: h.weights }));
  return { ...r, calibration: step.calibration, hessians: distinct };
}

/** The recipe step `{ type: 'quantize', method: 'gptq' }`. */
export const quantizeGptqStep: StepRunner<QuantizeGptqStep> = {
  description: GPTQ,
  async run(input: StepInput<QuantizeGptqStep>, ctx: JobContext): Promise<StepOutput> {
    const { recipe, step } = input;
    const r = await quantizeGptq(input.modelPath, step, stepOutputDir(input, ctx), ctx, { recipe: recipe as Recipe, deliver: 'partial' });
    return folderStepOutput(r, {
      method: 'gptq',
      format: r.format,
      bits: r.bits,
      blockSize: r.blockSize,
      symmetric: step.symmetric,
      accuracyLevel: step.accuracyLevel,
      percdamp: step.percdamp,
      actOrder: step.actOrder,
      columnBlock: step.columnBlock,
      calibration: r.calibration,
      sequential: step.sequential,
      calibrationPass: step.sequential ? 'sequential: level by level on the already-quantized model' : 'one pass over the original model',
      hessians: r.hessians,
      quantized: r.quantized.length,
      quantizedWeights: r.quantized.map((w) => ({ name: w.name, shape: w.shape, bits: w.bits, sqError: w.sqError, loss: w.loss, deadInputs: w.deadInputs })),
      overrides: step.overrides,
      skipped: r.skipped.map((s) => ({ name: s.name, reason: s.reason })),
      warnings: r.warnings,
      sqError: r.sqError,
    });
  },
};
