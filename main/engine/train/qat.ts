/**
 * Quantization-aware training (TRAINING.md, "QAT"; arXiv 2403.18159 for ov-freeze): each chosen weight
 * W [K, N] of a training view is read through fake quantization on the grid of Whittle's RTN
 * MatMulNBits writer (native-kernels/src/blockwise_format.h), per column and block of `blockSize` along K:
 *
 *   Wb = W padded with zeros to ⌈K/bs⌉·bs rows, as [kb, bs, N]; mx, mn = max, min over bs  → [kb, N]
 *   symmetric:  m = (|mx| > |mn|) ? mx : mn,  s = −m / 2^(bits−1),  zp = 2^(bits−1)
 *   asymmetric: mn' = min(mn, 0), mx' = max(mx, 0),  s = (mx' − mn') / (2^bits − 1),
 *               zp = saturate(round(−mn' / s))
 *   Ŵ = DequantizeLinear(Clip(QuantizeLinear(W, s, zp), 0, 2^bits − 1), s, zp)   blocked along axis 0 (opset 21, uint8)
 *
 * (zero padding changes neither rule's min/max; a block of zeros has s = 0 and quantizes with s = 1 to
 * zp, dequantizing to 0, as the native writer does.) The scales are computed from the CURRENT weights in
 * the graph at every step, not fixed at the start: what the forward computes is then exactly what the RTN
 * writer makes of the trained weights at export (exportQuantized), whatever the training did to a block's
 * range. They get no gradient (the straight-through rule follows only the weight,
 * autodiff/rules/quantize.ts); the optimizer updates the float master weights.
 *
 * A float16 source weight is rounded to float16 first, and the scales too (the zero point is taken from
 * the unrounded scale), as the RTN writer quantizes a float16 model.
 *
 * Rounding: QuantizeLinear divides by s where the native writer multiplies by 1/s; the two round
 * differently only for values within an ulp of a rounding boundary.
 *
 * The fixed grid (FixedGridOptions) is the other mode: a MatMulNBits model's own scales and zero points,
 * constants of the graph, for recovering an RTN or GPTQ result on its grid (quantized-student.ts).
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import { intAttr, makeNode } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, OnnxModel, TensorProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { makeTensor } from '../onnx/tensor-data.ts';
import { prepareForBlockedDequantize } from '../quantize/qdq-opset.ts';
import { quantizeWeightOnly, type QuantizeResult } from '../quantize/weight-only.ts';
import { readManifest, writeManifest } from '../rewrite/manifest.ts';
import { sourceRecord, type OutputOptions } from '../rewrite/write-folder.ts';
import type { MetaMap, TensorMeta } from './autodiff/types.ts';
import type { ParameterRole, TrainableParameter } from './parameters.ts';
import type { WeightGrid } from './quantized-student.ts';
import type { TrainingView } from './view.ts';
import { writeTrainedModel } from './write-back.ts';

export type QatBits = 4 | 8;
/** The roles fake-quantized by default: every linear projection and an untied LM head, as RTN quantizes them. */
export const QAT_ROLES = ['q', 'k', 'v', 'o', 'qkv', 'gate', 'up', 'down', 'lm_head'] as const;

export interface FakeQuantOptions {
  bits: QatBits;
  /** Power of two from 16 to 256 (MatMulNBits' block along K). */
  blockSize: number;
  symmetric: boolean;
  /** Roles whose MatMul weights are fake-quantized (default QAT_ROLES). */
  roles?: readonly ParameterRole[];
  /** Or exactly these weights (initializer names); overrides `roles`. */
  weights?: readonly string[];
  /** Roles whose weights stay frozen at their float values (still fake-quantized, and quantized at export): ['o', 'v'] is ov-freeze. */
  freezeRoles?: readonly ParameterRole[];
  /** Scales and zero points computed from the current weights at every step (the default). */
  grid?: 'current';
}

/**
 * The fixed grid: each weight of `grids` (a MatMulNBits model's, quantized-student.ts) is fake-quantized on
 * the scales and zero points it came with, the same at every step, so the view at step 0 computes what
 * the quantized model computes and the export re-rounds the trained weights on that grid (writeOnGrid):
 *   Ŵ = DequantizeLinear(Clip(QuantizeLinear(W, s', zp), 0, 2^bits − 1), s, zp)   blocked along axis 0
 * with s, zp [kb, N] the grid's (constants), s' = s with 0 replaced by 1 (a block of zeros stays 0).
 */
export interface FixedGridOptions {
  grid: 'fixed';
  /** By the view's weight name; bits and block size per weight. */
  grids: ReadonlyMap<string, WeightGrid>;
  freezeRoles?: readonly ParameterRole[];
}

export interface FakeQuantView<O extends FakeQuantOptions | FixedGridOptions = FakeQuantOptions> {
  view: TrainingView;
  /** The fake-quantized weights (each exported as MatMulNBits). */
  weights: string[];
  options: O;
}

function checkOptions(o: FakeQuantOptions): void {
  const bad = (what: string): never => { throw new WhittleError('INVALID_INPUT', what); };
  if (o.bits !== 4 && o.bits !== 8) bad(`Quantization-aware training uses 4 or 8 bits (got ${String(o.bits)}).`);
  if (!Number.isInteger(o.blockSize) || o.blockSize < 16 || o.blockSize > 256 || (o.blockSize & (o.blockSize - 1)) !== 0) {
    bad(`The block size must be a power of two from 16 to 256 (got ${o.blockSize}).`);
  }
}

interface Emitted { nodes: NodeProto[]; initializers: TensorProto[]; meta: MetaMap }

/** Node and constant makers for the nodes of one weight, named `<prefix>/<name>`. */
function emitter(p: string, out: Emitted) {
  const node = (opType: string, inputs: string[], name: string, meta: TensorMeta, attributes: ReturnType<typeof intAttr>[] = []): string => {
    const output = `${p}/${name}`;
    out.nodes.push(makeNode({ opType, inputs, outputs: [output], name: output, attributes }));
    out.meta.set(output, meta);
    return output;
  };
  const constant = (name: string, t: (full: string) => TensorProto, meta: TensorMeta): string => {
    const full = `${p}/${name}`;
    out.initializers.push(t(full));
    out.meta.set(full, meta);
    return full;
  };
  return { node, constant };
}

/** Emits the fake-quantization nodes of W [K, N]; returns the name of Ŵ. */
function fakeQuantize(weight: string, k: number, n: number, half: boolean, o: FakeQuantOptions, out: Emitted): string {
  const w0 = weight;
  const p = `${w0}/fake_quant`;
  const bs = o.blockSize;
  const kb = Math.ceil(k / bs);
  // uint8 holds the 4-bit grid too, clipped to [0, 15] (onnxruntime 1.30's uint4 QuantizeLinear and
  // DequantizeLinear corrupted memory in training graphs).
  const qType = DataType.uint8;
  const qmax = 2 ** o.bits - 1;
  const f32 = (shape: number[]): TensorMeta => ({ dtype: DataType.float32, shape });
  const blocks = f32([kb, n]);
  const { node, constant } = emitter(p, out);
  const scalar = (name: string, v: number): string => constant(name, (f) => makeTensor(f, DataType.float32, [], Float32Array.of(v)), f32([]));
  const ints = (name: string, v: number[]): string => constant(name, (f) => makeTensor(f, DataType.int64, [v.length], BigInt64Array.from(v.map(BigInt))), { dtype: DataType.int64, shape: [v.length] });
  const zeroPoints = (name: string, value: number): string => {
    const count = kb * n;
    const bytes = new Uint8Array(count).fill(value);
    return constant(name, (f) => makeTensor(f, qType, [kb, n], bytes), { dtype: qType, shape: [kb, n] });
  };

  // A float16 weight is written back as float16 and quantized from there with float16 scales (the
  // RTN writer's rule for float16 models): the forward rounds the weight and the scales alike.
  const toHalfAndBack = (x: string, name: string, meta: TensorMeta): string => node('Cast', [node('Cast', [x], `${name}_fp16`, { dtype: DataType.float16, shape: meta.shape }, [intAttr('to', DataType.float16)])], `${name}_rounded`, meta, [intAttr('to', DataType.float32)]);
  const w = half ? toHalfAndBack(w0, 'weight', f32([k, n])) : w0;
  // [kb, bs, N] blocks (zero padding: neither rule's min/max changes).
  const padded = k % bs === 0 ? w : node('Pad', [w, ints('pads', [0, 0, kb * bs - k, 0])], 'padded', f32([kb * bs, n]));
  const b3 = node('Reshape', [padded, ints('blocks_shape', [kb, bs, n])], 'blocks', f32([kb, bs, n]));
  const axis1 = ints('axis1', [1]);
  const mx = node('ReduceMax', [b3, axis1], 'max', blocks, [intAttr('keepdims', 0)]);
  const mn = node('ReduceMin', [b3, axis1], 'min', blocks, [intAttr('keepdims', 0)]);
  let s: string;
  let lo: string | null = null;
  if (o.symmetric) {
    const pick = node('Greater', [node('Abs', [mx], 'abs_max', blocks), node('Abs', [mn], 'abs_min', blocks)], 'max_wins', { dtype: DataType.bool, shape: [kb, n] });
    const m = node('Where', [pick, mx, mn], 'extreme', blocks);
    s = node('Mul', [m, scalar('minus_inv_half', -1 / 2 ** (o.bits - 1))], 'scale', blocks);
  } else {
    const zero = scalar('zero', 0);
    lo = node('Min', [mn, zero], 'lo', blocks);
    const hi = node('Max', [mx, zero], 'hi', blocks);
    s = node('Div', [node('Sub', [hi, lo], 'range', blocks), scalar('qmax', qmax)], 'scale', blocks);
  }
  const safeOf = (scale: string, name: string): string => node('Where', [node('Equal', [scale, scalar(`${name}_zero`, 0)], `${name}_is_zero`, { dtype: DataType.bool, shape: [kb, n] }), scalar(`${name}_one`, 1), scale], `${name}_safe`, blocks);
  const safe = safeOf(s, 'scale');
  // Asymmetric: zp = saturate(round(−mn' / s)) with QuantizeLinear's own rounding (ties to even), one value per block.
  const zp = lo === null
    ? zeroPoints('zero_point', 2 ** (o.bits - 1))
    : node('QuantizeLinear', [node('Neg', [lo], 'neg_lo', blocks), safe, zeroPoints('zp_base', 0)], 'zero_point', { dtype: qType, shape: [kb, n] }, [intAttr('axis', 0), intAttr('block_size', 1)]);
  // The zero point comes from the unrounded scale; values are quantized with the float16-rounded one.
  const scale = half ? toHalfAndBack(s, 'scale', blocks) : s;
  const scaleSafe = half ? safeOf(scale, 'scale_fp16') : safe;
  const blocked = [intAttr('axis', 0), intAttr('block_size', bs)];
  const q8 = node('QuantizeLinear', [w, scaleSafe, zp], 'q', { dtype: qType, shape: [k, n] }, blocked);
  const u8 = (name: string, v: number): string => constant(name, (f) => makeTensor(f, DataType.uint8, [], Uint8Array.of(v)), { dtype: DataType.uint8, shape: [] });
  const q = o.bits === 8 ? q8 : node('Clip', [q8, u8('qmin', 0), u8('qmax_int', qmax)], 'q_clipped', { dtype: qType, shape: [k, n] });
  return node('DequantizeLinear', [q, scale, zp], 'dequantized', f32([k, n]), blocked);
}

/** Emits the fixed-grid fake quantization of W [K, N] on `g` (FixedGridOptions); returns the name of Ŵ. */
function fakeQuantizeFixed(weight: string, g: WeightGrid, out: Emitted): string {
  const { k, n, kBlocks: kb, bits } = g;
  const { node, constant } = emitter(`${weight}/fake_quant`, out);
  // The grid as DequantizeLinear wants it: [kb, N] (MatMulNBits stores [N, kb]).
  const scale = new Float32Array(kb * n), safe = new Float32Array(kb * n), zp = new Uint8Array(kb * n);
  for (let c = 0; c < n; c++) {
    for (let b = 0; b < kb; b++) {
      const s = g.scales[c * kb + b];
      scale[b * n + c] = s;
      safe[b * n + c] = s === 0 ? 1 : s;
      zp[b * n + c] = g.zeroPoints[c * kb + b];
    }
  }
  const blocks = { dtype: DataType.float32, shape: [kb, n] };
  const s = constant('scale', (f) => makeTensor(f, DataType.float32, [kb, n], scale), blocks);
  const sSafe = constant('scale_safe', (f) => makeTensor(f, DataType.float32, [kb, n], safe), blocks);
  const z = constant('zero_point', (f) => makeTensor(f, DataType.uint8, [kb, n], zp), { dtype: DataType.uint8, shape: [kb, n] });
  const blocked = [intAttr('axis', 0), intAttr('block_size', g.blockSize)];
  const codes = { dtype: DataType.uint8, shape: [k, n] };
  const q8 = node('QuantizeLinear', [weight, sSafe, z], 'q', codes, blocked);
  const u8 = (name: string, v: number): string => constant(name, (f) => makeTensor(f, DataType.uint8, [], Uint8Array.of(v)), { dtype: DataType.uint8, shape: [] });
  const q = bits === 8 ? q8 : node('Clip', [q8, u8('qmin', 0), u8('qmax_int', 2 ** bits - 1)], 'q_clipped', codes);
  return node('DequantizeLinear', [q, s, z], 'dequantized', { dtype: DataType.float32, shape: [k, n] }, blocked);
}

/**
 * The view with fake quantization on the chosen weights (the input view is left unchanged). Weights
 * of `freezeRoles` move from the trainable parameters to frozen initializers.
 */
export function applyFakeQuant(source: TrainingView, options: FakeQuantOptions): FakeQuantView;
export function applyFakeQuant(source: TrainingView, options: FixedGridOptions): FakeQuantView<FixedGridOptions>;
export function applyFakeQuant(source: TrainingView, options: FakeQuantOptions | FixedGridOptions): FakeQuantView<FakeQuantOptions | FixedGridOptions> {
  const fixed = options.grid === 'fixed' ? options.grids : null;
  const current = options.grid === 'fixed' ? null : options;
  if (current) checkOptions(current);
  const src = source.model.graph;
  if (!src) throw new WhittleError('INTERNAL', 'The training view has no graph.');
  const params = [...source.trainable, ...source.frozen];
  const byName = new Map(params.map((p) => [p.name, p]));
  const roles = new Set<ParameterRole>(current?.roles ?? QAT_ROLES);
  const wanted = current?.weights ? new Set(current.weights) : null;
  if (wanted) for (const w of wanted) if (!byName.has(w)) throw new WhittleError('INVALID_INPUT', `The model has no weight named ${w} to quantize.`, { weight: w });

  // Targets: 2-D weights read as a MatMul's second input with at least one block along K (as RTN's plan);
  // on a fixed grid, exactly the grid's weights.
  const targets = new Set<string>();
  for (const node of src.node) {
    if (node.opType !== 'MatMul' || (node.domain ?? '') !== '') continue;
    const p = byName.get(node.input[1]);
    if (!p || p.dims.length !== 2) continue;
    if (fixed) { if (fixed.has(p.name)) targets.add(p.name); continue; }
    if (current && p.dims[0] < current.blockSize) continue;
    if (wanted ? wanted.has(p.name) : roles.has(p.role)) targets.add(p.name);
  }
  if (fixed) {
    const missing = [...fixed.keys()].filter((w) => !targets.has(w));
    if (missing.length > 0) throw new WhittleError('INTERNAL', `The training view reads ${missing.join(', ')} through no MatMul; its grid cannot be kept.`, { missing });
  } else if (targets.size === 0) {
    throw new WhittleError('INVALID_INPUT', `No MatMul weight with at least ${current?.blockSize ?? 0} inputs matches the chosen ${wanted ? 'weights' : `roles (${[...roles].join(', ')})`}; nothing would be quantized.`);
  }

  const model: ModelProto = {
    ...source.model,
    opsetImport: source.model.opsetImport.map((o) => ({ ...o })),
    graph: { ...src, node: src.node.map((n) => ({ ...n, input: [...n.input], attribute: [...n.attribute] })), initializer: [...src.initializer], input: [...src.input] },
  };
  const graph = model.graph as GraphProto;
  const meta: MetaMap = new Map(source.meta);
  let serial = 0;
  const before = graph.initializer.length;
  prepareForBlockedDequantize(model, (base) => `${base}/opset21_${serial++}`);
  for (const t of graph.initializer.slice(before)) meta.set(t.name ?? '', { dtype: t.dataType ?? DataType.int64, shape: t.dims.map(Number) });

  // ov-freeze: those weights become initializers with their current values.
  const freeze = new Set<ParameterRole>(options.freezeRoles ?? []);
  const frozenNow = source.trainable.filter((p) => freeze.has(p.role));
  const frozenNames = new Set(frozenNow.map((p) => p.name));
  graph.input = graph.input.filter((v) => !frozenNames.has(v.name ?? ''));
  for (const p of frozenNow) {
    const w = source.initial.get(p.name);
    if (!w) throw new WhittleError('INTERNAL', `The training view holds no initial value for ${p.name}.`);
    graph.initializer.push(makeTensor(p.name, DataType.float32, p.dims, w.slice()));
  }

  // Each target's consumers read Ŵ; the fake-quant nodes go right before the first consumer.
  const emitted = { nodes: [] as NodeProto[], initializers: [] as TensorProto[], meta };
  const replacement = new Map<string, string>();
  for (const name of targets) {
    const p = byName.get(name) as TrainableParameter;
    const grid = fixed?.get(name);
    replacement.set(name, grid ? fakeQuantizeFixed(name, grid, emitted) : fakeQuantize(name, p.dims[0], p.dims[1], p.sourceDtype === DataType.float16, current as FakeQuantOptions, emitted));
  }
  const nodes: NodeProto[] = [...emitted.nodes];
  for (const n of graph.node) nodes.push({ ...n, input: n.input.map((i) => replacement.get(i) ?? i) });
  graph.node = nodes;
  graph.initializer.push(...emitted.initializers);

  const initial = new Map(source.initial);
  for (const p of frozenNow) initial.delete(p.name);
  const trainable = source.trainable.filter((p) => !frozenNames.has(p.name));
  if (trainable.length === 0) throw new WhittleError('INVALID_INPUT', 'Every weight of the model is frozen: nothing would be trained. Freeze fewer roles.');
  const view: TrainingView = { ...source, model, meta, trainable, frozen: [...source.frozen, ...frozenNow], initial };
  return { view, weights: [...targets], options };
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The step whittle.json records for a KD-QAT export: method 'qat' with the grid and the roles kept in
 * float while training; the recipe's own QAT step (when `given` is one) supplies its other settings.
 */
export function qatStepRecord(options: FakeQuantOptions, accuracyLevel: number, given?: unknown): Record<string, unknown> {
  const recipeStep = typeof given === 'object' && given !== null && (given as { method?: unknown }).method === 'qat' ? given as Record<string, unknown> : {};
  return {
    ...recipeStep,
    type: 'quantize',
    method: 'qat',
    bits: options.bits,
    blockSize: options.blockSize,
    symmetric: options.symmetric,
    accuracyLevel,
    freezeRoles: [...(options.freezeRoles ?? [])],
  };
}

/**
 * Writes the trained model quantized on the training grid: the trained float weights go into the
 * source (writeTrainedModel, in a scratch folder beside `outDir`), then RTN turns exactly the
 * fake-quantized weights into MatMulNBits (every other weight is kept in float). `accuracyLevel`
 * defaults to 0 (MatMulNBits computes in float, as the training forward did). The folder's whittle.json
 * names the step 'qat' (qatStepRecord) and the source `source`, not the scratch float model.
 */
export async function exportQuantized(
  source: OnnxModel,
  qat: FakeQuantView,
  trained: ReadonlyMap<string, Float32Array>,
  outDir: string,
  ctx: JobContext,
  options: OutputOptions & { accuracyLevel?: number; step?: unknown } = {},
): Promise<QuantizeResult> {
  const params = qat.view.trainable;
  const weights = params.map((p) => {
    const w = trained.get(p.name);
    if (!w) throw new WhittleError('INTERNAL', `No trained values for ${p.name}.`);
    return w;
  });
  const floatDir = path.join(path.dirname(path.resolve(outDir)), `.${path.basename(outDir)}.float-${randomBytes(4).toString('hex')}`);
  try {
    // A fresh copy of the source: the write-back replaces initializer bytes in the model it is given.
    await writeTrainedModel(await readModel(source.path), params, weights, floatDir, ctx, options.step ?? { type: 'train' }, { deliver: 'final', tokenizerPath: options.tokenizerPath });
    const chosen = new Set(qat.weights);
    const keep = [...(source.proto.graph?.initializer ?? [])].map((t) => t.name ?? '').filter((n) => n !== '' && !chosen.has(n)).map((n) => `^${escapeRegExp(n)}$`);
    const { step: _step, accuracyLevel, ...output } = options;
    const result = await quantizeWeightOnly(path.join(floatDir, 'model.onnx'), {
      type: 'quantize', method: 'rtn', bits: qat.options.bits, blockSize: qat.options.blockSize, symmetric: qat.options.symmetric,
      accuracyLevel: accuracyLevel ?? 0, format: 'matmulnbits', keep, overrides: [],
    }, outDir, ctx, output);
    const quantized = new Set(result.quantized.map((q) => q.name));
    const missing = qat.weights.filter((w) => !quantized.has(w));
    if (missing.length > 0 || quantized.size !== chosen.size) {
      throw new WhittleError('INTERNAL', `The export quantized other weights than training did (trained through fake quantization but not quantized: ${missing.join(', ') || 'none'}).`, { missing });
    }
    // RTN recorded itself and the scratch float model; the folder is KD-QAT's, made from the user's model.
    const manifest = await readManifest(result.outDir);
    await writeManifest(result.outDir, { ...manifest, step: qatStepRecord(qat.options, accuracyLevel ?? 0, options.step), source: await sourceRecord(source) });
    return result;
  } finally {
    await rm(floatDir, { recursive: true, force: true });
  }
}
