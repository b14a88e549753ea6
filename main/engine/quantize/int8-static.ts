/**
 * INT8 static quantization in the QDQ format: QuantizeLinear → DequantizeLinear pairs on the activation
 * input of every MatMul/Gemm with a constant weight, and a DequantizeLinear on a pre-quantized int8 weight
 * (what onnxruntime's own QDQ quantizer writes). onnxruntime fuses the pattern into integer kernels
 * (MatMulIntegerToFloat / QLinearMatMul) where it can; anything it cannot fuse still runs, in float.
 *
 *   X ─ QuantizeLinear(s_x, z_x) ─ DequantizeLinear(s_x, z_x) ─┐
 *   W_q (int8) ─ DequantizeLinear(s_w, 0; axis) ───────────────┴─ MatMul / Gemm (unchanged) ─ Y
 *
 * Activations (one QDQ pair per distinct input tensor: q/k/v share one), range [a, b] from calibration
 * (minmax, percentile or entropy, calibrate/), widened to contain 0 so that 0 is exact:
 *   uint8 asymmetric:  s = (b − a) / 255,         z = clamp(round(−a / s), 0, 255)
 *   int8 symmetric:    s = max(|a|, |b|) / 127,   z = 0
 * Weights, int8 symmetric, per output channel (perChannel) or per tensor:
 *   s_c = max_k |W[k, c]| / 127,  q = clamp(round_half_even(W / s_c), −127, 127)
 * The channel axis is the weight's output dimension: 1 for MatMul's [K, N] (and Gemm transB = 0),
 * 0 for Gemm transB = 1's [N, K]. The range is kept symmetric at ±127 so that −W quantizes to −q.
 *
 * fp16 models need QuantizeLinear of float16 (opset 19); their opset is raised to 21 (qdq-opset.ts).
 * MatMuls of two activations (attention scores) and nodes whose name matches an `exclude` pattern stay
 * in float and are listed with the reason. Weights are read, quantized and spooled one at a time.
 */
import path from 'node:path';
import { INT8_STATIC } from '../../../preload/methods.ts';
import { QuantizeInt8StaticStep, type Recipe } from '../../../preload/recipe.ts';
import { activationInputsFor, collectCalibrationStats, rangeFromStats, validateCalibration } from '../calibrate/index.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import { initializerMap, intAttr, makeNode, NameScope, producerMap } from '../onnx/graph.ts';
import type { NodeProto, TensorProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { floatToHalf, halfToFloat } from '../onnx/tensor-data.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import type { ManifestWeight } from '../rewrite/manifest.ts';
import { transformWeights, type WeightEdit } from '../rewrite/weight-loop.ts';
import { writeOutputFolder, type WrittenFolder } from '../rewrite/write-folder.ts';
import { defaultOpset, prepareForBlockedDequantize } from './qdq-opset.ts';
import { folderStepOutput, stepOutputDir } from './step.ts';
import { planTargets, type QuantTarget, type SkippedWeight } from './targets.ts';
import { compilePatterns, nothingToQuantizeMessage, skippedManifestWeights, type QuantizeOptions } from './weight-only.ts';

export interface ActivationQuantization {
  /** The activation tensor (input 0 of its consumers). */
  tensor: string;
  /** Calibrated range, before widening to contain 0. */
  min: number;
  max: number;
  scale: number;
  zeroPoint: number;
  type: 'uint8' | 'int8';
  /** Weights of the MatMul/Gemm nodes reading it. */
  consumers: string[];
}

export interface SkippedNode {
  name: string;
  op: string;
  reason: string;
}

export interface Int8StaticResult extends WrittenFolder {
  quantized: ManifestWeight[];
  skipped: SkippedWeight[];
  /** Nodes left in float: excluded by pattern, or MatMuls of two activations. */
  skippedNodes: SkippedNode[];
  activations: ActivationQuantization[];
  /** Weight scales: per output channel, or per tensor (asked for, or forced by an opset below 13). */
  weightGranularity: 'per-channel' | 'per-tensor';
  /** Why per-channel was asked for but not used, or null. */
  weightGranularityNote: string | null;
  /** Σ (w − dequant(w))² over the quantized weights. */
  sqError: number;
}

/** Round half to even, as QuantizeLinear does. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scale and zero point of an activation range (see the header). */
export function activationParams(min: number, max: number, type: 'uint8' | 'int8'): { scale: number; zeroPoint: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new WhittleError('INVALID_INPUT', `The calibrated activation range [${min}, ${max}] is not finite; the model produced NaN or infinite activations on the calibration text.`, { min, max });
  }
  const a = Math.min(min, 0);
  const b = Math.max(max, 0);
  if (type === 'int8') {
    const absmax = Math.max(-a, b);
    return { scale: absmax > 0 ? absmax / 127 : 1, zeroPoint: 0 };
  }
  if (b - a === 0) return { scale: 1, zeroPoint: 0 };
  const scale = (b - a) / 255;
  return { scale, zeroPoint: Math.min(255, Math.max(0, roundHalfEven(-a / scale))) };
}

export interface Int8Weight {
  q: Int8Array;
  /** One scale per channel along `axis` (or one for per-tensor). */
  scales: Float32Array;
  sqError: number;
}

/**
 * Symmetric int8 quantization of a row-major [rows, cols] weight, per channel along `axis` (0: one scale
 * per row, 1: one per column) or per tensor (axis null). `roundScale` maps each scale to the value that
 * will be stored (fp16 rounding for fp16 models) before quantizing with it.
 */
export function quantizeInt8Symmetric(w: Float32Array, rows: number, cols: number, axis: 0 | 1 | null, roundScale: (s: number) => number = (s) => Math.fround(s)): Int8Weight {
  const channels = axis === null ? 1 : axis === 0 ? rows : cols;
  const absmax = new Float64Array(channels);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const ch = axis === null ? 0 : axis === 0 ? r : c;
      const v = Math.abs(w[r * cols + c]);
      if (!(v < Infinity)) throw new WhittleError('INVALID_INPUT', 'The weight holds NaN or infinite values; it cannot be quantized.');
      if (v > absmax[ch]) absmax[ch] = v;
    }
  }
  const scales = new Float32Array(channels);
  for (let ch = 0; ch < channels; ch++) {
    scales[ch] = absmax[ch] > 0 ? roundScale(absmax[ch] / 127) : 1;
  }
  const q = new Int8Array(rows * cols);
  let sqError = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const s = scales[axis === null ? 0 : axis === 0 ? r : c];
      const v = Math.min(127, Math.max(-127, roundHalfEven(w[i] / s)));
      q[i] = v;
      sqError += (w[i] - v * s) ** 2;
    }
  }
  return { q, scales, sqError };
}

/** float32 or float16 bytes → Float32Array. */
function toFloat32(bytes: Uint8Array, dtype: 'float32' | 'float16', count: number): Float32Array {
  if (dtype === 'float32') {
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    return new Float32Array(aligned.buffer, aligned.byteOffset, count).slice();
  }
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const h = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = halfToFloat(h[i]);
  return out;
}

const asBytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function tensor(name: string, dataType: number, dims: number[], bytes: Uint8Array): TensorProto {
  return { name, dataType, dims, data: { kind: 'bytes', bytes }, stringData: [], externalData: [], metadataProps: [] };
}

/** A float scalar / vector in the model's activation type. */
function floatTensor(name: string, values: Float32Array, dims: number[], fp16: boolean): TensorProto {
  return fp16
    ? tensor(name, DataType.float16, dims, asBytes(Uint16Array.from(values, floatToHalf)))
    : tensor(name, DataType.float32, dims, asBytes(values));
}

const isOnnxMatMul = (n: NodeProto): boolean => (n.opType === 'MatMul' || n.opType === 'Gemm') && (!n.domain || n.domain === 'ai.onnx');

export async function quantizeInt8Static(modelPath: string, stepInput: QuantizeInt8StaticStep, outDir: string, ctx: JobContext, options: QuantizeOptions = {}): Promise<Int8StaticResult> {
  const step = QuantizeInt8StaticStep.parse(stepInput);
  const keep = compilePatterns(step.keep, 'keep');
  const exclude = compilePatterns(step.exclude, 'exclude');
  const tokenizerPath = options.tokenizerPath ?? options.recipe?.tokenizer?.path;
  if (!tokenizerPath) {
    throw new WhittleError('INVALID_INPUT', "INT8 static quantization calibrates on text, which needs a tokenizer. Add the model's tokenizer.json to the recipe.");
  }
  const source = path.resolve(modelPath);
  await validateCalibration({ modelPath: source, tokenizerPath, calibration: step.calibration, what: 'INT8 static quantization' });
  throwIfAborted(ctx.signal);

  const model = await readModel(source);
  const graph = model.proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);
  const plan = planTargets(graph, { blockSize: 1, keep });
  const skippedNodes: SkippedNode[] = [];
  const targets: QuantTarget[] = [];
  for (const t of plan.targets) {
    const name = t.node.name ?? '';
    const hit = exclude.find((re) => re.test(name));
    if (hit) skippedNodes.push({ name, op: t.op, reason: `excluded: the node name matches an exclude pattern (${hit})` });
    else targets.push(t);
  }
  const planned = new Set(plan.targets.map((t) => t.node));
  const inits = initializerMap(graph);
  const producer = producerMap(graph);
  // A constant weight behind a Transpose, DequantizeLinear or Constant is already listed by planTargets.
  const constantLike = (name: string): boolean => {
    const p = producer.get(name);
    return inits.has(name) || (p !== undefined && (p.opType === 'Constant' || p.opType === 'DequantizeLinear' || (p.opType === 'Transpose' && inits.has(p.input[0]))));
  };
  for (const n of graph.node) {
    if (!isOnnxMatMul(n) || planned.has(n)) continue;
    if (!constantLike(n.input[1])) {
      skippedNodes.push({ name: n.name ?? '', op: n.opType ?? '', reason: 'both inputs are activations (e.g. attention scores); left in float' });
    }
  }
  for (const s of plan.skipped) ctx.log('info', `skip ${s.name}: ${s.reason}`);
  for (const s of skippedNodes) ctx.log('info', `skip node ${s.name}: ${s.reason}`);
  if (targets.length === 0) {
    throw new WhittleError('INVALID_INPUT', nothingToQuantizeMessage({ ...plan, skipped: [...plan.skipped, ...skippedNodes.map((s) => ({ ...s, shape: [], dtype: '' }))] }), { skipped: plan.skipped, skippedNodes });
  }

  // Calibration: activation ranges of every distinct input, in one pass over the original model.
  const inputs = activationInputsFor(model, targets);
  const accumulators: ('minmax' | 'histogram')[] = step.rangeMethod === 'minmax' ? ['minmax'] : ['minmax', 'histogram'];
  ctx.log('info', `calibrating ${inputs.length} activation input(s) (${step.rangeMethod}) on ${step.calibration.samples} × ${step.calibration.length} tokens`);
  const stats = await collectCalibrationStats({ modelPath: source, tensors: inputs.map((i) => i.tensor), accumulators, calibration: step.calibration, tokenizerPath }, ctx);
  throwIfAborted(ctx.signal);

  const fp16 = targets.some((t) => t.dtype === 'float16');
  const names = NameScope.fromModel(model.proto);
  const uniqueName = (base: string): string => names.fresh(base);
  if (fp16 && defaultOpset(model.proto) < 19) {
    const adapted = prepareForBlockedDequantize(model.proto, uniqueName);
    ctx.log('info', `opset raised to 21 for QuantizeLinear of float16${adapted ? `; ${adapted} Reduce node(s) now take axes as an input` : ''}`);
  }
  // DequantizeLinear has `axis` (per-channel) from opset 13; older graphs get per-tensor weight scales.
  const perChannel = step.perChannel && defaultOpset(model.proto) >= 13;
  const perChannelNote = step.perChannel && !perChannel
    ? `opset ${defaultOpset(model.proto)} has no per-axis DequantizeLinear (opset 13), so weights are quantized per tensor`
    : null;
  if (perChannelNote) ctx.log('warn', `int8 static: ${perChannelNote}`);
  const roundScale = fp16 ? (s: number): number => halfToFloat(floatToHalf(s)) : (s: number): number => Math.fround(s);

  // Activation QDQ pairs, inserted before the first node that reads the activation.
  const before = new Map<NodeProto, NodeProto[]>();
  const insertBefore = (node: NodeProto, nodes: NodeProto[]): void => { before.set(node, [...(before.get(node) ?? []), ...nodes]); };
  const activations: ActivationQuantization[] = [];
  const zpType = step.activationType === 'uint8' ? DataType.uint8 : DataType.int8;
  const nodeOrder = new Map(graph.node.map((n, i) => [n, i]));
  for (const input of inputs) {
    const s = stats.get(input.tensor);
    if (!s) throw new WhittleError('INTERNAL', `Calibration returned no statistics for ${input.tensor}.`);
    const range = rangeFromStats(s, step.rangeMethod, { percentile: step.percentile, bins: step.entropyBins });
    const p = activationParams(range.min, range.max, step.activationType);
    const scale = roundScale(p.scale);
    const consumers = targets.filter((t) => t.node.input[0] === input.tensor);
    const sName = uniqueName(`${input.tensor}_scale`);
    const zName = uniqueName(`${input.tensor}_zero_point`);
    const qOut = uniqueName(`${input.tensor}_quantized`);
    const dqOut = uniqueName(`${input.tensor}_dequantized`);
    graph.initializer.push(
      floatTensor(sName, Float32Array.of(scale), [], fp16),
      tensor(zName, zpType, [], zpType === DataType.uint8 ? Uint8Array.of(p.zeroPoint) : asBytes(Int8Array.of(p.zeroPoint))),
    );
    const first = consumers.reduce((a, b) => (nodeOrder.get(a.node)! < nodeOrder.get(b.node)! ? a : b)).node;
    insertBefore(first, [
      makeNode({ opType: 'QuantizeLinear', inputs: [input.tensor, sName, zName], outputs: [qOut], name: uniqueName(`${input.tensor}_QuantizeLinear`) }),
      makeNode({ opType: 'DequantizeLinear', inputs: [qOut, sName, zName], outputs: [dqOut], name: uniqueName(`${input.tensor}_DequantizeLinear`) }),
    ]);
    for (const t of consumers) t.node.input[0] = dqOut;
    activations.push({ tensor: input.tensor, min: range.min, max: range.max, scale, zeroPoint: p.zeroPoint, type: step.activationType, consumers: consumers.map((t) => t.weight) });
  }

  graph.node = graph.node.flatMap((n) => [...(before.get(n) ?? []), n]);

  const quantized: ManifestWeight[] = [];
  let sqError = 0;
  const out = await writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    rewrite: (_, io) => transformWeights(graph, targets, io, ctx, {
      phase: 'quantize',
      decode: (bytes, t) => toFloat32(bytes, t.dtype, t.shape[0] * t.shape[1]),
      async transform(t, w): Promise<WeightEdit> {
        const [rows, cols] = t.shape;
        // Output channels: columns of [K, N]; rows of Gemm transB = 1's [N, K].
        const axis = perChannel ? (t.transposed ? 0 : 1) : null;
        const q = quantizeInt8Symmetric(w, rows, cols, axis, roundScale);
        const qName = uniqueName(`${t.weight}_quantized`);
        const sName = uniqueName(`${t.weight}_scale`);
        const zName = uniqueName(`${t.weight}_zero_point`);
        const dqOut = uniqueName(`${t.weight}_dequantized`);
        const scaleDims = axis === null ? [] : [q.scales.length];
        const dq = makeNode({
          opType: 'DequantizeLinear', inputs: [qName, sName, zName], outputs: [dqOut], name: uniqueName(`${t.weight}_DequantizeLinear`),
          attributes: axis === null ? [] : [intAttr('axis', axis)],
        });
        t.node.input[1] = dqOut;
        sqError += q.sqError;
        quantized.push({ name: t.weight, shape: t.shape, bits: 8, blockSize: null, status: 'quantized', sqError: q.sqError });
        return {
          kind: 'replace-nodes',
          nodes: [dq, t.node],
          tensors: [
            { name: qName, dataType: DataType.int8, dims: [rows, cols], bytes: asBytes(q.q) },
            floatTensor(sName, q.scales, scaleDims, t.dtype === 'float16'),
            tensor(zName, DataType.int8, scaleDims, new Uint8Array(q.scales.length)),
          ],
        };
      },
    }),
    manifest: () => ({
      weights: [...quantized, ...skippedManifestWeights(plan.skipped)],
      extra: { activations, skippedNodes, calibration: step.calibration, weightGranularity: perChannel ? 'per-channel' : 'per-tensor', weightGranularityNote: perChannelNote },
    }),
  });
  ctx.log('info', `int8 static: ${quantized.length} weight(s), ${activations.length} activation QDQ pair(s) (${step.activationType}, ${step.rangeMethod}); ${skippedNodes.length} node(s) left in float`);
  return {
    outDir: out.outDir, modelPath: out.modelPath, pending: out.pending, quantized, skipped: plan.skipped, skippedNodes, activations,
    weightGranularity: perChannel ? 'per-channel' : 'per-tensor', weightGranularityNote: perChannelNote, bytes: out.bytes, files: out.files, sqError,
  };
}

/** The recipe step `{ type: 'quantize', method: 'int8-static' }`. */
export const quantizeInt8StaticStep: StepRunner<QuantizeInt8StaticStep> = {
  description: INT8_STATIC,
  async run(input: StepInput<QuantizeInt8StaticStep>, ctx: JobContext): Promise<StepOutput> {
    const { recipe, step } = input;
    const r = await quantizeInt8Static(input.modelPath, step, stepOutputDir(input, ctx), ctx, { recipe: recipe as Recipe, deliver: 'partial' });
    return folderStepOutput(r, {
      method: 'int8-static',
      format: 'qdq',
      bits: 8,
      rangeMethod: step.rangeMethod,
      percentile: step.rangeMethod === 'percentile' ? step.percentile : undefined,
      entropyBins: step.rangeMethod === 'entropy' ? step.entropyBins : undefined,
      activationType: step.activationType,
      perChannel: step.perChannel,
      weightGranularity: r.weightGranularity,
      weightGranularityNote: r.weightGranularityNote ?? undefined,
      calibration: step.calibration,
      quantized: r.quantized.length,
      quantizedWeights: r.quantized.map((w) => ({ name: w.name, shape: w.shape, bits: 8, sqError: w.sqError })),
      activations: r.activations,
      skipped: r.skipped.map((s) => ({ name: s.name, reason: s.reason })),
      skippedNodes: r.skippedNodes,
      sqError: r.sqError,
    });
  },
};
