/**
 * Gradient checks: a small forward graph is differentiated by Whittle's autodiff, the backward is run
 * in a real onnxruntime-node session (float32 or float64), and the result is compared with central
 * finite differences of the float64 reference evaluator (tests/helpers/reference-ops.ts).
 *
 * The loss is L = Σ_o Σ (o ⊙ R_o) over the checked outputs o, with fixed random R_o: the backward is
 * seeded with ∂L/∂o = R_o, fed as a graph input.
 */
import * as ort from 'onnxruntime-node';
import { differentiate } from '../../../main/engine/train/autodiff/differentiate.ts';
import type { MetaMap } from '../../../main/engine/train/autodiff/types.ts';
import { encodeModel } from '../../../main/engine/onnx/encode.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { evaluateGraph, loadInitializers, refTensor, size, type RefTensor } from '../../helpers/reference-ops.ts';
import { valueInfo } from '../quantize/build-model.ts';

export interface InputSpec {
  name: string;
  dims: number[];
  /** float32 (default), float64, int64 or bool. */
  dtype?: number;
  /** Values; default uniform(−1, 1) for floats. */
  values?: number[];
  /** 'positive': uniform(0.5, 1.5), for Log/Sqrt/Div denominators. */
  range?: 'uniform' | 'positive';
  /** Differentiate with respect to it (default: every float input). */
  trainable?: boolean;
}

export interface GradCase {
  nodes: NodeProto[];
  inputs: InputSpec[];
  /** Outputs the loss reads (default: the last node's first output). */
  outputs?: string[];
  initializers?: TensorProto[];
  opset?: number;
  seed?: number;
}

export interface GradReport {
  /** Norm-wise relative error per trainable input: ‖onnx − fd‖ / ‖fd‖. */
  errors: Map<string, number>;
  grads: Map<string, Float64Array>;
  fd: Map<string, Float64Array>;
  unreached: string[];
  backwardOps: string[];
}

/** Deterministic uniform(0, 1) stream (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isFloat = (d: number): boolean => d === DataType.float32 || d === DataType.float64;

export function graphOf(nodes: NodeProto[], initializers: TensorProto[] = []): GraphProto {
  return { node: nodes, name: 'g', initializer: initializers, sparseInitializer: [], input: [], output: [], valueInfo: [], quantizationAnnotation: [], metadataProps: [] };
}

export function modelOf(graph: GraphProto, opset: number): ModelProto {
  return { irVersion: 10, opsetImport: [{ domain: '', version: opset }], producerName: 'whittle-tests', graph, metadataProps: [], trainingInfo: [], functions: [], configuration: [] };
}

export function metaFrom(env: Map<string, RefTensor>): MetaMap {
  const meta: MetaMap = new Map();
  for (const [name, t] of env) meta.set(name, { dtype: t.dtype, shape: [...t.dims] });
  return meta;
}

function toOrt(t: RefTensor): ort.Tensor {
  switch (t.dtype) {
    case DataType.float32: return new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
    case DataType.float64: return new ort.Tensor('float64', Float64Array.from(t.data), t.dims);
    case DataType.int64: return new ort.Tensor('int64', BigInt64Array.from(Array.from(t.data, (v) => BigInt(v))), t.dims);
    case DataType.int32: return new ort.Tensor('int32', Int32Array.from(t.data), t.dims);
    case DataType.bool: return new ort.Tensor('bool', Uint8Array.from(t.data), t.dims);
    default: throw new Error(`grad-check: cannot feed dtype ${t.dtype}`);
  }
}

/** The loss Σ_o Σ o ⊙ R_o of the reference forward. */
function lossOf(graph: GraphProto, values: Map<string, RefTensor>, outputs: string[], r: Map<string, Float64Array>): number {
  const env = evaluateGraph(graph, values);
  let l = 0;
  for (const o of outputs) {
    const y = env.get(o) as RefTensor;
    const w = r.get(o) as Float64Array;
    for (let i = 0; i < y.data.length; i++) l += y.data[i] * w[i];
  }
  return l;
}

export async function session(model: ModelProto): Promise<ort.InferenceSession> {
  const bytes = encodeModel(model, { placement: () => null }).toBytes();
  return ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
}

/**
 * Differentiates the case, runs the backward in onnxruntime, and compares with central differences.
 * `maxEntries` caps the entries perturbed per input (a deterministic sample).
 */
export async function checkGradients(c: GradCase, maxEntries = 400): Promise<GradReport> {
  const random = rng(c.seed ?? 7);
  const graph = graphOf(c.nodes, c.initializers ?? []);
  const values = await loadInitializers(graph);
  for (const s of c.inputs) {
    const dtype = s.dtype ?? DataType.float32;
    const n = size(s.dims);
    let data = s.values;
    if (!data) {
      data = Array.from({ length: n }, () => (s.range === 'positive' ? 0.5 + random() : 2 * random() - 1));
      if (dtype === DataType.float32) data = data.map((v) => Math.fround(v));
    }
    values.set(s.name, refTensor(dtype, s.dims, data));
  }
  const env = evaluateGraph(graph, values);
  const meta = metaFrom(env);
  const outputs = c.outputs ?? [c.nodes[c.nodes.length - 1].output[0]];
  const r = new Map<string, Float64Array>();
  const seeds: { tensor: string; grad: string }[] = [];
  for (const o of outputs) {
    const m = meta.get(o);
    if (!m) throw new Error(`grad-check: output ${o} not computed`);
    const w = Float64Array.from({ length: size(m.shape) }, () => Math.fround(2 * random() - 1));
    r.set(o, w);
    const name = `seed_${o}`;
    meta.set(name, { dtype: m.dtype, shape: m.shape });
    seeds.push({ tensor: o, grad: name });
  }
  const wrt = c.inputs.filter((s) => (s.trainable ?? isFloat(s.dtype ?? DataType.float32))).map((s) => s.name);
  const opset = c.opset ?? 18;
  const res = differentiate({ graph, meta, wrt, seeds, opset });

  const full = graphOf([...graph.node, ...res.nodes], [...graph.initializer, ...res.initializers]);
  const shapeOf = (name: string): { dtype: number; shape: number[] } => (res.meta.get(name) ?? meta.get(name)) as { dtype: number; shape: number[] };
  full.input = [...c.inputs.map((s) => valueInfo(s.name, s.dtype ?? DataType.float32, s.dims)), ...seeds.map((s) => valueInfo(s.grad, shapeOf(s.grad).dtype, shapeOf(s.grad).shape))];
  full.output = wrt.map((w) => valueInfo(res.grads.get(w) as string, shapeOf(w).dtype, shapeOf(w).shape));
  const sess = await session(modelOf(full, opset));
  const feeds: Record<string, ort.Tensor> = {};
  for (const s of c.inputs) feeds[s.name] = toOrt(values.get(s.name) as RefTensor);
  for (const s of seeds) feeds[s.grad] = toOrt({ dtype: shapeOf(s.grad).dtype, dims: shapeOf(s.grad).shape, data: r.get(s.tensor) as Float64Array });
  const out = await sess.run(feeds);
  await sess.release();

  const errors = new Map<string, number>();
  const grads = new Map<string, Float64Array>();
  const fds = new Map<string, Float64Array>();
  for (const w of wrt) {
    const got = Float64Array.from(out[res.grads.get(w) as string].data as Float32Array);
    const base = values.get(w) as RefTensor;
    const n = base.data.length;
    const picks = n <= maxEntries ? [...Array(n).keys()] : Array.from({ length: maxEntries }, () => Math.floor(random() * n));
    const fd = new Float64Array(picks.length);
    const gotPicked = new Float64Array(picks.length);
    picks.forEach((i, j) => {
      const orig = base.data[i];
      const eps = 1e-5 * Math.max(1, Math.abs(orig));
      base.data[i] = orig + eps;
      const lp = lossOf(graph, values, outputs, r);
      base.data[i] = orig - eps;
      const lm = lossOf(graph, values, outputs, r);
      base.data[i] = orig;
      fd[j] = (lp - lm) / (2 * eps);
      gotPicked[j] = got[i];
    });
    let num = 0;
    let den = 0;
    for (let j = 0; j < fd.length; j++) { num += (gotPicked[j] - fd[j]) ** 2; den += fd[j] ** 2; }
    errors.set(w, Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-6));
    grads.set(w, got);
    fds.set(w, fd);
  }
  return { errors, grads, fd: fds, unreached: res.unreached ?? [], backwardOps: res.nodes.map((n) => n.opType ?? '') };
}
