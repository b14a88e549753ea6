/**
 * The graph facts the architecture map reads: who produces and who reads each value, the float weights
 * (initializers) and the small integer constants (Reshape/Expand shapes, from initializers or Constant
 * nodes), and the normalizations in their plain and com.microsoft fused forms. Only names that the graph
 * itself links (node inputs and outputs) are used; no name is matched against a pattern.
 */
import { attrInt, consumerMap, getAttribute, initializerMap, producerMap, toNumber } from '../onnx/graph.ts';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/proto-types.ts';

const ONNX_DOMAINS = new Set(['', 'ai.onnx']);
export const MS_DOMAIN = 'com.microsoft';

/** float32, float16, bfloat16, float64. */
const FLOAT_TYPES = new Set([1, 10, 16, 11]);

export const isOp = (node: NodeProto | undefined, ...ops: string[]): boolean =>
  !!node && ops.includes(node.opType ?? '') && (ONNX_DOMAINS.has(node.domain ?? '') || node.domain === MS_DOMAIN);

export const nodeLabel = (n: NodeProto): string => n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`;

/** A MatMul/Gemm whose B input is a constant weight (an initializer, or a Transpose/Cast of one). */
export interface Projection {
  node: NodeProto;
  /** The initializer holding the weight. */
  weight: string;
  /** Output features N: the weight is [K, N] (or [N, K] for Gemm transB = 1 and behind a Transpose). */
  outFeatures: number;
  inFeatures: number;
  /** The weight is read through a Transpose node (tied embedding) or stored [N, K] (Gemm transB = 1). */
  transposed: boolean;
}

export class GraphView {
  readonly producers: Map<string, NodeProto>;
  readonly consumers: Map<string, NodeProto[]>;
  readonly inits: Map<string, TensorProto>;
  readonly inputs: Set<string>;
  readonly order: Map<NodeProto, number>;
  readonly graph: GraphProto;

  constructor(graph: GraphProto) {
    this.graph = graph;
    this.producers = producerMap(graph);
    this.consumers = consumerMap(graph);
    this.inits = initializerMap(graph);
    this.inputs = new Set(graph.input.map((v) => v.name ?? '').filter((n) => !this.inits.has(n)));
    this.order = new Map(graph.node.map((n, i) => [n, i]));
  }

  producer(value: string | undefined): NodeProto | undefined {
    return value ? this.producers.get(value) : undefined;
  }

  readers(value: string | undefined): NodeProto[] {
    return value ? this.consumers.get(value) ?? [] : [];
  }

  /** The float initializer named `value`, or null. */
  floatWeight(value: string | undefined): TensorProto | null {
    const t = value ? this.inits.get(value) : undefined;
    return t && FLOAT_TYPES.has(t.dataType ?? 0) ? t : null;
  }

  dims(name: string): number[] {
    return (this.inits.get(name)?.dims ?? []).map((d) => toNumber(d));
  }

  /** Whether `value` is a constant: an initializer or the output of a Constant node. */
  isConstant(value: string | undefined): boolean {
    if (!value) return true;
    return this.inits.has(value) || isOp(this.producer(value), 'Constant');
  }

  /** Integer values of a constant (int64/int32 initializer or Constant node), or null when not known here. */
  intValues(value: string | undefined): number[] | null {
    if (!value) return null;
    const t = this.inits.get(value);
    if (t) return tensorInts(t);
    const p = this.producer(value);
    if (!isOp(p, 'Constant')) return null;
    const a = getAttribute(p!, 'value');
    if (a?.t) return tensorInts(a.t);
    const ints = getAttribute(p!, 'value_ints')?.ints;
    if (ints) return ints.map((v) => toNumber(v));
    const one = getAttribute(p!, 'value_int')?.i;
    return one !== undefined ? [toNumber(one)] : null;
  }

  /** The constant-weight MatMul/Gemm `node` is, or null (its B input is computed). */
  projection(node: NodeProto | undefined): Projection | null {
    if (!node || !isOp(node, 'MatMul', 'Gemm') || node.domain === MS_DOMAIN) return null;
    if (isOp(node, 'Gemm') && attrInt(node, 'transA', 0) !== 0) return null;
    let b = node.input[1];
    let transposed = isOp(node, 'Gemm') && attrInt(node, 'transB', 0) !== 0;
    let t = this.floatWeight(b);
    for (let hops = 0; !t && hops < 3; hops++) {
      const p = this.producer(b);
      if (!isOp(p, 'Transpose', 'Cast', 'Identity')) return null;
      if (isOp(p, 'Transpose')) transposed = !transposed;
      b = p!.input[0];
      t = this.floatWeight(b);
    }
    if (!t || t.dims.length !== 2) return null;
    const [r, c] = t.dims.map((d) => toNumber(d));
    return { node, weight: b, inFeatures: transposed ? c : r, outFeatures: transposed ? r : c, transposed };
  }

  /** `value` after a bias Add (Add with a 1-D float initializer) when it has one, else `value` itself. */
  afterBias(value: string): { value: string; bias: string | null } {
    const readers = this.readers(value);
    if (readers.length === 1 && isOp(readers[0], 'Add')) {
      const other = readers[0].input.find((x) => x !== value);
      if (other && this.floatWeight(other)?.dims.length === 1) return { value: readers[0].output[0], bias: other };
    }
    return { value, bias: null };
  }

  /** `value` before a bias Add, with the bias name. */
  beforeBias(value: string): { value: string; bias: string | null } {
    const p = this.producer(value);
    if (isOp(p, 'Add')) {
      const bias = p!.input.find((x) => this.floatWeight(x)?.dims.length === 1);
      const other = p!.input.find((x) => x !== bias);
      if (bias && other) return { value: other, bias };
    }
    return { value, bias: null };
  }
}

function tensorInts(t: TensorProto): number[] | null {
  if (t.data?.kind !== 'bytes') return null;
  const b = t.data.bytes;
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  if (t.dataType === 7) return Array.from(new BigInt64Array(buf), (v) => Number(v));
  if (t.dataType === 6) return Array.from(new Int32Array(buf));
  return null;
}

export type NormKind = 'rms' | 'layer';

export interface NormInfo {
  kind: NormKind;
  /** The node that applies the scale (the fused op, or the last Mul/Add of a decomposed norm). */
  node: string;
  op: string;
  weight: string | null;
  bias: string | null;
}

/** Fused normalizations: where their scale and bias are, and which output is normalized. */
const FUSED_NORMS: Record<string, { kind: NormKind; gamma: number; beta: number | null }> = {
  LayerNormalization: { kind: 'layer', gamma: 1, beta: 2 },
  SimplifiedLayerNormalization: { kind: 'rms', gamma: 1, beta: null },
  RMSNormalization: { kind: 'rms', gamma: 1, beta: null },
  SkipLayerNormalization: { kind: 'layer', gamma: 2, beta: 3 },
  SkipSimplifiedLayerNormalization: { kind: 'rms', gamma: 2, beta: null },
  EmbedLayerNormalization: { kind: 'layer', gamma: 5, beta: 6 },
};

export const SKIP_NORMS = new Set(['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);

export function isFusedNorm(node: NodeProto | undefined): boolean {
  return !!node && node.opType !== undefined && node.opType in FUSED_NORMS && isOp(node, node.opType);
}

/**
 * The normalization that produced `value`, or null. Fused ops (LayerNormalization, the com.microsoft
 * SkipLayerNormalization, SimplifiedLayerNormalization and their kin) are read from their inputs; a decomposed norm is
 *   y = x / sqrt(mean(x², -1) + eps) · γ [+ β]         RMSNorm (no mean subtracted)
 *   y = (x − mean(x)) / sqrt(var(x) + eps) · γ + β     LayerNorm (a Sub of the mean)
 * recognised by γ (a 1-D float initializer in a Mul) behind at most a β Add and Casts, with a ReduceMean
 * within a few nodes before it.
 */
export function normBefore(view: GraphView, value: string): NormInfo | null {
  let v = value;
  for (let hops = 0; hops < 2 && isOp(view.producer(v), 'Cast'); hops++) v = view.producer(v)!.input[0];
  const p = view.producer(v);
  if (!p) return null;
  if (isFusedNorm(p)) {
    if (p.output[0] !== v) return null;
    const f = FUSED_NORMS[p.opType!];
    return { kind: f.kind, node: nodeLabel(p), op: p.opType!, weight: p.input[f.gamma] || null, bias: f.beta !== null ? p.input[f.beta] || null : null };
  }
  let bias: string | null = null;
  let scale = p;
  if (isOp(p, 'Add')) {
    const { value: inner, bias: b } = view.beforeBias(v);
    if (!b) return null;
    bias = b;
    const q = view.producer(inner);
    if (!q) return null;
    scale = q;
  }
  if (!isOp(scale, 'Mul')) return null;
  const gamma = scale.input.find((x) => view.floatWeight(x)?.dims.length === 1);
  if (!gamma) return null;
  // Look back a few nodes for the statistics: ReduceMean (both), Sub (LayerNorm's centring).
  let sawMean = false;
  let sawSub = false;
  const seen = new Set<NodeProto>();
  const queue: { node: NodeProto; depth: number }[] = [{ node: scale, depth: 0 }];
  while (queue.length) {
    const { node, depth } = queue.shift()!;
    if (seen.has(node) || depth > 8) continue;
    seen.add(node);
    if (isOp(node, 'ReduceMean')) sawMean = true;
    if (isOp(node, 'Sub')) sawSub = true;
    if (sawMean && depth > 0 && !isOp(node, 'Mul', 'Div', 'Sqrt', 'Add', 'Sub', 'ReduceMean', 'Pow', 'Reciprocal', 'Cast')) continue;
    for (const x of node.input) {
      const q = view.producer(x);
      if (q && isOp(q, 'Mul', 'Div', 'Sqrt', 'Add', 'Sub', 'ReduceMean', 'Pow', 'Reciprocal', 'Cast')) queue.push({ node: q, depth: depth + 1 });
    }
  }
  if (!sawMean) return null;
  return { kind: sawSub ? 'layer' : 'rms', node: nodeLabel(scale), op: 'decomposed', weight: gamma, bias };
}

/** The value reaching `value` when the Casts in front of it are skipped. */
export function skipCasts(view: GraphView, value: string): string {
  for (let hops = 0; hops < 3 && isOp(view.producer(value), 'Cast', 'Identity'); hops++) value = view.producer(value)!.input[0];
  return value;
}
