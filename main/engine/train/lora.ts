/**
 * LoRA adapters on a training view (TRAINING.md, "LoRA"): each chosen weight W [in, out] read by a MatMul
 * becomes a frozen initializer, and two trainable inputs are added beside it,
 *   A [in, r]   seeded Kaiming-uniform as peft initialises lora_A: U(−1/√in, 1/√in)
 *   B [r, out]  zeros, so the adapted model starts equal to the base model,
 * and the MatMul's output y = x·W [.., out] is replaced by
 *   y' = x·W + (α/r)·((x·A)·B)
 * which costs 2·r·(in + out) multiply-adds per row instead of in·out for forming W + (α/r)·A·B in the
 * graph (and its gradient). Only the adapters train: every other parameter of the view is frozen.
 * With dropout p > 0 the adapter reads x ⊙ m instead of x, m [.., in] a mask input fed every micro-batch
 * (lora-dropout.ts: Bernoulli(1 − p)/(1 − p) in training, ones in evaluation); with p = 0 the graph has
 * no mask (the view is the one built without dropout).
 *
 * `merge` gives W + (α/r)·A·B for the write-back, and `writeLoraModel` writes those merged weights into
 * the source graph in its own dtype.
 */
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import { makeNode } from '../onnx/graph.ts';
import type { GraphProto, NodeProto, OnnxModel } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { makeTensor, readTensorFloat32 } from '../onnx/tensor-data.ts';
import type { OutputOptions, WrittenFolder } from '../rewrite/write-folder.ts';
import type * as ort from 'onnxruntime-node';
import type { TensorMeta } from './autodiff/types.ts';
import { valueInfo } from './graph-io.ts';
import { checkDropout, dropoutFeeder, type DropoutDraw, type DropoutInput } from './lora-dropout.ts';
import type { ParameterRole, TrainableParameter } from './parameters.ts';
import type { TrainingView } from './view.ts';
import { writeTrainedModel } from './write-back.ts';

/** The roles LoRA can adapt: the linear projections of attention and MLP. */
export const LORA_ROLES = ['q', 'k', 'v', 'o', 'qkv', 'gate', 'up', 'down'] as const;
export type LoraRole = (typeof LORA_ROLES)[number];

export interface LoraOptions {
  /** Roles whose weights get adapters (e.g. ['q', 'v']). */
  roles: readonly LoraRole[];
  /** Rank r ≥ 1 (at most min(in, out)). */
  rank: number;
  /** Scale numerator α: the update is (α/r)·A·B. */
  alpha: number;
  /** Seed of A's initial values and of the dropout masks. */
  seed: number;
  /** Dropout probability on the adapters' input, 0 ≤ p < 1 (0 or unset: none). */
  dropout?: number;
}

export interface LoraAdapter {
  /** The adapted weight W [in, out] (a frozen initializer of the view). */
  weight: string;
  a: string;
  b: string;
  in: number;
  out: number;
}

export interface LoraView {
  /** The view with adapters: `trainable` holds exactly the A and B of every adapter, `initial` their start values. */
  view: TrainingView;
  adapters: LoraAdapter[];
  /** α / r. */
  scale: number;
  /** The dropout mask inputs of the view (empty without dropout), one per adapter. */
  dropoutInputs: DropoutInput[];
  /** Feeds of the mask inputs: fresh masks for a training draw, ones for an evaluation pass (null). */
  dropoutFeeds(draw: DropoutDraw | null): Record<string, ort.Tensor>;
  /** W + (α/r)·A·B for each adapted weight, from the trained adapter values (by name). */
  merge(weights: ReadonlyMap<string, Float32Array>): Map<string, Float32Array>;
}

/** Deterministic uniform(0, 1) stream (mulberry32). */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkOptions(o: LoraOptions): void {
  const bad = (what: string): never => { throw new WhittleError('INVALID_INPUT', what); };
  if (!Number.isInteger(o.rank) || o.rank < 1) bad(`The LoRA rank must be a whole number of at least 1 (got ${o.rank}). Typical ranks are 4 to 64.`);
  if (!(o.alpha > 0) || !Number.isFinite(o.alpha)) bad(`LoRA's alpha must be a number above 0 (got ${o.alpha}); a common choice is twice the rank.`);
  if (o.roles.length === 0) bad(`Choose at least one role for the LoRA adapters (${LORA_ROLES.join(', ')}).`);
  for (const r of o.roles) if (!(LORA_ROLES as readonly string[]).includes(r)) bad(`'${r}' is not a role LoRA adapts; use ${LORA_ROLES.join(', ')}.`);
  checkDropout(o.dropout ?? 0);
}

/** W + scale·A·B, W [in, out], A [in, r], B [r, out] (sums in double). */
export function mergeAdapter(w: Float32Array, a: Float32Array, b: Float32Array, dims: { in: number; out: number; rank: number }, scale: number): Float32Array {
  const { in: k, out: n, rank: r } = dims;
  const merged = new Float32Array(k * n);
  const row = new Float64Array(n);
  for (let i = 0; i < k; i++) {
    row.fill(0);
    for (let j = 0; j < r; j++) {
      const aij = a[i * r + j];
      if (aij === 0) continue;
      for (let c = 0; c < n; c++) row[c] += aij * b[j * n + c];
    }
    for (let c = 0; c < n; c++) merged[i * n + c] = w[i * n + c] + scale * row[c];
  }
  return merged;
}

/** Adds LoRA adapters to a training view (the input view is left unchanged). */
export async function applyLora(source: TrainingView, options: LoraOptions): Promise<LoraView> {
  checkOptions(options);
  const src = source.model.graph;
  if (!src) throw new WhittleError('INTERNAL', 'The training view has no graph.');
  const meta = new Map(source.meta);
  const graph: GraphProto = { ...src, node: [...src.node], initializer: [...src.initializer], input: [...src.input] };
  const roles = new Set<ParameterRole>(options.roles);
  const params = [...source.trainable, ...source.frozen];
  const chosen = new Map(params.filter((p) => roles.has(p.role) && p.dims.length === 2).map((p) => [p.name, p]));

  // Every trainable weight becomes a frozen initializer with its current (initial) value.
  const trainableNames = new Set(source.trainable.map((p) => p.name));
  graph.input = graph.input.filter((v) => !trainableNames.has(v.name ?? ''));
  for (const p of source.trainable) {
    const w = source.initial.get(p.name);
    if (!w) throw new WhittleError('INTERNAL', `The training view holds no initial value for ${p.name}.`);
    graph.initializer.push(makeTensor(p.name, DataType.float32, p.dims, w.slice()));
  }

  // Base values of the adapted weights (trainable ones from `initial`, frozen ones from their initializers).
  const base = new Map<string, Float32Array>();
  for (const t of src.initializer) if (chosen.has(t.name ?? '')) base.set(t.name ?? '', await readTensorFloat32(t));
  for (const name of chosen.keys()) { const w = source.initial.get(name); if (w) base.set(name, w); }

  const adapters: LoraAdapter[] = [];
  const trainable: TrainableParameter[] = [];
  const initial = new Map<string, Float32Array>();
  const scale = options.alpha / options.rank;
  const random = uniform(options.seed);
  const dropout = options.dropout ?? 0;
  const dropoutInputs: DropoutInput[] = [];
  const added: NodeProto[][] = graph.node.map(() => []);
  const rename = new Map<string, string>();
  graph.node.forEach((node, index) => {
    const wName = node.input[1];
    const p = node.opType === 'MatMul' && (node.domain ?? '') === '' ? chosen.get(wName) : undefined;
    if (!p) return;
    if (adapters.some((a) => a.weight === wName)) {
      throw new WhittleError('UNSUPPORTED_MODEL', `The weight ${wName} feeds more than one MatMul; LoRA adapts weights used once.`, { weight: wName });
    }
    const [k, n] = p.dims;
    const r = options.rank;
    if (r > Math.min(k, n)) throw new WhittleError('INVALID_INPUT', `The LoRA rank ${r} is larger than ${wName}'s smaller side (${Math.min(k, n)}); use a rank of at most ${Math.min(k, n)}.`);
    const x = node.input[0];
    const y = node.output[0];
    const xMeta = meta.get(x);
    const yMeta = meta.get(y);
    if (!xMeta || !yMeta) throw new WhittleError('INTERNAL', `No static shape for the MatMul of ${wName}.`);
    const a = `${wName}.lora_A`, b = `${wName}.lora_B`;
    const prefix = `${y}/lora`;
    const xa = `${prefix}/xa`, xab = `${prefix}/xab`, scaled = `${prefix}/scaled`, sum = `${prefix}/sum`, scaleName = `${prefix}/scale`;
    const rowsShape = xMeta.shape.slice(0, -1);
    const f32 = (shape: number[]): TensorMeta => ({ dtype: DataType.float32, shape });
    meta.set(a, f32([k, r])); meta.set(b, f32([r, n]));
    meta.set(xa, f32([...rowsShape, r])); meta.set(xab, f32(yMeta.shape)); meta.set(scaled, f32(yMeta.shape)); meta.set(sum, f32(yMeta.shape));
    meta.set(scaleName, f32([]));
    graph.initializer.push(makeTensor(scaleName, DataType.float32, [], Float32Array.of(scale)));
    // With dropout the adapter reads x ⊙ m [.., in], m the mask input fed per micro-batch.
    let adapterIn = x;
    if (dropout > 0) {
      const mask = `${wName}.lora_dropout`, dropped = `${prefix}/dropout`;
      meta.set(mask, f32(xMeta.shape)); meta.set(dropped, f32(xMeta.shape));
      dropoutInputs.push({ name: mask, shape: [...xMeta.shape] });
      added[index].push(makeNode({ opType: 'Mul', inputs: [x, mask], outputs: [dropped], name: `${prefix}/Dropout` }));
      adapterIn = dropped;
    }
    // y' = x·W + (α/r)·((x·A)·B)
    added[index].push(
      makeNode({ opType: 'MatMul', inputs: [adapterIn, a], outputs: [xa], name: `${prefix}/MatMul_A` }),
      makeNode({ opType: 'MatMul', inputs: [xa, b], outputs: [xab], name: `${prefix}/MatMul_B` }),
      makeNode({ opType: 'Mul', inputs: [xab, scaleName], outputs: [scaled], name: `${prefix}/Mul` }),
      makeNode({ opType: 'Add', inputs: [y, scaled], outputs: [sum], name: `${prefix}/Add` }),
    );
    rename.set(y, sum);
    const bound = 1 / Math.sqrt(k);
    initial.set(a, Float32Array.from({ length: k * r }, () => (2 * random() - 1) * bound));
    initial.set(b, new Float32Array(r * n));
    const adapterParam = (name: string, dims: number[]): TrainableParameter => ({ name, dims, role: 'other', block: p.block, sourceDtype: DataType.float32, decay: true });
    trainable.push(adapterParam(a, [k, r]), adapterParam(b, [r, n]));
    adapters.push({ weight: wName, a, b, in: k, out: n });
  });
  if (adapters.length === 0) {
    throw new WhittleError('INVALID_INPUT', `No weight of the roles ${options.roles.join(', ')} is read by a MatMul in this model, so there is nothing to adapt. Choose other roles.`, { roles: options.roles });
  }
  // Consumers of an adapted MatMul read y' (the adapter's own Add keeps reading y).
  const adapterNodes = new Set(added.flat());
  const nodes: NodeProto[] = [];
  graph.node.forEach((node, index) => {
    nodes.push(node, ...added[index]);
  });
  graph.node = nodes.map((node) => (adapterNodes.has(node) ? node : { ...node, input: node.input.map((i) => rename.get(i) ?? i) }));
  graph.output = graph.output.map((o) => (rename.has(o.name ?? '') ? { ...o, name: rename.get(o.name ?? '') } : o));
  const logits = rename.get(source.logits) ?? source.logits;
  for (const p of trainable) graph.input.push(valueInfo(p.name, { dtype: DataType.float32, shape: p.dims }));
  for (const m of dropoutInputs) graph.input.push(valueInfo(m.name, { dtype: DataType.float32, shape: [...m.shape] }));

  const view: TrainingView = {
    ...source,
    model: { ...source.model, graph },
    meta,
    logits,
    trainable,
    frozen: params,
    initial,
  };
  return {
    view,
    adapters,
    scale,
    dropoutInputs,
    dropoutFeeds: dropoutFeeder(dropoutInputs, dropout, options.seed),
    merge(weights) {
      const out = new Map<string, Float32Array>();
      for (const ad of adapters) {
        const a = weights.get(ad.a), b = weights.get(ad.b);
        const w = base.get(ad.weight);
        if (!a || !b || !w) throw new WhittleError('INTERNAL', `No trained values for the adapter of ${ad.weight}.`);
        out.set(ad.weight, mergeAdapter(w, a, b, { in: ad.in, out: ad.out, rank: options.rank }, scale));
      }
      return out;
    },
  };
}

/**
 * Writes the source model with every adapted weight replaced by its merged value W + (α/r)·A·B (in the
 * source's dtype and layout); `weights` are the trained adapters by name.
 */
export async function writeLoraModel(
  source: OnnxModel,
  lora: LoraView,
  weights: ReadonlyMap<string, Float32Array>,
  outDir: string,
  ctx: JobContext,
  step: unknown,
  options: OutputOptions,
): Promise<WrittenFolder> {
  const merged = lora.merge(weights);
  const params = lora.view.frozen.filter((p) => merged.has(p.name));
  // A fresh copy of the source: the write-back replaces initializer bytes in the model it is given.
  return writeTrainedModel(await readModel(source.path), params, params.map((p) => merged.get(p.name) ?? new Float32Array(0)), outDir, ctx, step, options);
}
