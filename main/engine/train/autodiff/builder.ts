/**
 * The graph builder the backward rules emit into: nodes with fresh names under a prefix (`grad/…`),
 * constants as initializers (float scalars in the graph's float dtype, int64 shape/axes vectors; shared
 * when equal), and the static meta (dtype, shape) of every tensor it creates, so rules always know the
 * shape of what they hold.
 *
 * Opset: the backward is emitted for the graph's default-domain opset, which must be ≥ 17. Forms used:
 * ReduceSum / Split / Squeeze / Unsqueeze / Pad / Slice take axes, sizes and pads as int64 INPUTS (valid
 * from opset 13 on); ReduceMean is never emitted (a ReduceSum and a scale instead), so the opset-18
 * change of ReduceMean's axes from attribute to input does not matter.
 */
import { WhittleError } from '../../errors.ts';
import { DataType, dtypeName } from '../../onnx/dtype.ts';
import { floatToHalf, makeTensor } from '../../onnx/tensor-data.ts';
import { intAttr, intsAttr, makeNode, stringAttr, tensorAttr, toNumber } from '../../onnx/graph.ts';
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from '../../onnx/proto-types.ts';
import type { MetaMap, TensorMeta } from './types.ts';

export const MIN_OPSET = 17;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Axis in [0, rank) from a possibly negative one. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** A float scalar (or vector) as little-endian bytes of `dtype`. */
function floatBytes(dtype: number, values: readonly number[]): Uint8Array {
  switch (dtype) {
    case DataType.float32: return new Uint8Array(Float32Array.from(values).buffer);
    case DataType.float64: return new Uint8Array(Float64Array.from(values).buffer);
    case DataType.float16: return new Uint8Array(Uint16Array.from(values.map((v) => floatToHalf(v))).buffer);
    default:
      throw new WhittleError('UNSUPPORTED_MODEL', `Training graphs of ${dtypeName(dtype)} are not supported: the gradient needs float32, float64 or float16 constants. Convert the model to float32 first.`);
  }
}

export class GradBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  /** Meta of the tensors this builder created. */
  readonly created: MetaMap = new Map();
  private readonly taken = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private readonly constants = new Map<string, number[]>();

  readonly graph: GraphProto;
  readonly opset: number;
  readonly prefix: string;
  private readonly forwardMeta: MetaMap;

  constructor(graph: GraphProto, forwardMeta: MetaMap, opset: number, prefix = 'grad/') {
    this.graph = graph;
    this.forwardMeta = forwardMeta;
    this.opset = opset;
    this.prefix = prefix;
    for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name) this.taken.add(v.name);
    for (const t of graph.initializer) if (t.name) this.taken.add(t.name);
    for (const n of graph.node) {
      if (n.name) this.taken.add(n.name);
      for (const x of [...n.input, ...n.output]) if (x) this.taken.add(x);
    }
    for (const name of forwardMeta.keys()) this.taken.add(name);
    for (const t of graph.initializer) {
      const v = t.name !== undefined ? tensorValues(t) : undefined;
      if (v && t.name !== undefined) this.constants.set(t.name, v);
    }
    for (const n of graph.node) {
      if (n.opType !== 'Constant' || n.output[0] === undefined) continue;
      const a = n.attribute.find((x) => x.name === 'value' || x.name === 'value_ints' || x.name === 'value_int' || x.name === 'value_float' || x.name === 'value_floats');
      if (!a) continue;
      const v = a.t ? tensorValues(a.t) : a.name === 'value_ints' ? a.ints.map((x) => toNumber(x)) : a.name === 'value_int' ? [toNumber(a.i)]
        : a.name === 'value_float' ? [a.f ?? 0] : a.floats;
      if (v) this.constants.set(n.output[0], v);
    }
  }

  /** A fresh tensor/node name under the prefix. */
  fresh(base: string): string {
    const clean = `${this.prefix}${base}`;
    let name = clean;
    for (let i = 1; this.taken.has(name); i++) name = `${clean}_${i}`;
    this.taken.add(name);
    return name;
  }

  meta(name: string): TensorMeta {
    const m = this.created.get(name) ?? this.forwardMeta.get(name);
    if (!m) throw new WhittleError('INTERNAL', `Autodiff: no shape is known for tensor '${name}'. The training view must give every tensor's static dtype and shape.`);
    return m;
  }

  shape(name: string): number[] {
    return this.meta(name).shape;
  }

  dtype(name: string): number {
    return this.meta(name).dtype;
  }

  /** The values of a constant tensor (initializer held in memory, or Constant node), or undefined. */
  constantValues(name: string): number[] | undefined {
    return this.constants.get(name);
  }

  /**
   * Replaces a forward node of the request's graph by `replacement` (same inputs, extra outputs such as
   * LayerNormalization's statistics). The original node object is not modified.
   */
  replaceForwardNode(node: NodeProto, replacement: NodeProto): void {
    const i = this.graph.node.indexOf(node);
    if (i < 0) throw new WhittleError('INTERNAL', `Autodiff: node '${node.name ?? ''}' is not in the graph being differentiated.`);
    this.graph.node[i] = replacement;
  }

  /** Emits one node with one output of the given meta; returns the output name. */
  op(opType: string, inputs: string[], out: TensorMeta, attributes: AttributeProto[] = [], base?: string): string {
    return this.opMulti(opType, inputs, [out], attributes, base)[0];
  }

  /** Emits one node with several outputs. */
  opMulti(opType: string, inputs: string[], outs: TensorMeta[], attributes: AttributeProto[] = [], base?: string): string[] {
    const stem = base ?? opType;
    const outputs = outs.map(() => this.fresh(stem));
    outs.forEach((m, i) => this.created.set(outputs[i], { dtype: m.dtype, shape: [...m.shape] }));
    this.nodes.push(makeNode({ opType, inputs, outputs, name: this.fresh(`${stem}_node`), attributes }));
    return outputs;
  }

  // ── constants ──────────────────────────────────────────────────────────────────────────────────────

  private constant(key: string, make: (name: string) => TensorProto, meta: TensorMeta): string {
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push(make(name));
    this.created.set(name, meta);
    this.constCache.set(key, name);
    return name;
  }

  /** A scalar of float dtype `dtype` (shape []). */
  scalar(value: number, dtype: number): string {
    return this.constant(`f${dtype}:${value}`, (n) => makeTensor(n, dtype, [], floatBytes(dtype, [value])), { dtype, shape: [] });
  }

  /** A 1-D int64 vector (axes, shapes, sizes, pads). */
  ints(values: readonly number[]): string {
    return this.constant(`i64:${values.join(',')}`, (n) => makeTensor(n, DataType.int64, [values.length], BigInt64Array.from(values.map((v) => BigInt(v)))),
      { dtype: DataType.int64, shape: [values.length] });
  }

  /** A scalar int64. */
  int(value: number): string {
    return this.constant(`i64s:${value}`, (n) => makeTensor(n, DataType.int64, [], BigInt64Array.from([BigInt(value)])), { dtype: DataType.int64, shape: [] });
  }

  /** Zeros of `shape` (ConstantOfShape; the value is a one-element tensor of `dtype`). */
  zeros(shape: readonly number[], dtype: number): string {
    const value = makeTensor('value', dtype, [1], floatBytes(dtype, [0]));
    return this.op('ConstantOfShape', [this.ints(shape)], { dtype, shape: [...shape] }, [tensorAttr('value', value)], 'zeros');
  }

  // ── elementwise helpers (broadcasting, output meta from the inputs) ─────────────────────────────────

  private binary(opType: string, a: string, b: string): string {
    const ma = this.meta(a);
    return this.op(opType, [a, b], { dtype: ma.dtype, shape: broadcastShapes(ma.shape, this.shape(b)) });
  }

  add(a: string, b: string): string { return this.binary('Add', a, b); }
  sub(a: string, b: string): string { return this.binary('Sub', a, b); }
  mul(a: string, b: string): string { return this.binary('Mul', a, b); }
  div(a: string, b: string): string { return this.binary('Div', a, b); }
  unary(opType: string, x: string): string { return this.op(opType, [x], this.meta(x)); }
  neg(x: string): string { return this.unary('Neg', x); }
  /** x · c for a constant c (no node when c = 1). */
  scale(x: string, c: number): string {
    return c === 1 ? x : this.mul(x, this.scalar(c, this.dtype(x)));
  }

  /** Sum of several same-shape tensors (Add for two, Sum for more). */
  sum(terms: string[]): string {
    if (terms.length === 1) return terms[0];
    if (terms.length === 2) return this.add(terms[0], terms[1]);
    return this.op('Sum', terms, this.meta(terms[0]));
  }

  // ── shape helpers ──────────────────────────────────────────────────────────────────────────────────

  /** Reshape to `shape` (no node when it already has that shape). */
  reshape(x: string, shape: readonly number[]): string {
    const m = this.meta(x);
    if (sameShape(m.shape, shape)) return x;
    return this.op('Reshape', [x, this.ints(shape)], { dtype: m.dtype, shape: [...shape] });
  }

  transpose(x: string, perm: readonly number[]): string {
    const m = this.meta(x);
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], { dtype: m.dtype, shape: perm.map((p) => m.shape[p]) }, [intsAttr('perm', [...perm])]);
  }

  /** ReduceSum over `axes` (axes as an input, opset ≥ 13). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    const m = this.meta(x);
    if (axes.length === 0) return x;
    const rank = m.shape.length;
    const set = new Set(axes.map((a) => normAxis(a, rank)));
    const shape = keepdims ? m.shape.map((d, i) => (set.has(i) ? 1 : d)) : m.shape.filter((_, i) => !set.has(i));
    return this.op('ReduceSum', [x, this.ints([...set].sort((p, q) => p - q))], { dtype: m.dtype, shape }, [intAttr('keepdims', keepdims ? 1 : 0)]);
  }

  /**
   * The gradient of a broadcast: `grad` has the broadcast shape; sum it over every axis that `target`
   * broadcast along (leading axes it lacks, and axes where it has 1), then reshape to `target`.
   */
  reduceToShape(grad: string, targetShape: readonly number[]): string {
    const gShape = this.shape(grad);
    if (sameShape(gShape, targetShape)) return grad;
    const lead = gShape.length - targetShape.length;
    if (lead < 0) throw new WhittleError('INTERNAL', `Autodiff: cannot reduce a gradient of shape [${gShape.join(', ')}] to [${targetShape.join(', ')}].`);
    const axes: number[] = [];
    gShape.forEach((d, i) => {
      if (i < lead) axes.push(i);
      else if (targetShape[i - lead] === 1 && d !== 1) axes.push(i);
    });
    const reduced = this.reduceSum(grad, axes, true);
    return this.reshape(reduced, targetShape);
  }

  /** Expand `x` to `shape` (no node when it already has it). */
  expand(x: string, shape: readonly number[]): string {
    const m = this.meta(x);
    if (sameShape(m.shape, shape)) return x;
    return this.op('Expand', [x, this.ints(shape)], { dtype: m.dtype, shape: [...shape] });
  }

  cast(x: string, to: number): string {
    const m = this.meta(x);
    if (m.dtype === to) return x;
    return this.op('Cast', [x], { dtype: to, shape: m.shape }, [intAttr('to', to)]);
  }

  /** Slice with constant starts/ends/axes/steps. */
  slice(x: string, starts: number[], ends: number[], axes: number[], steps: number[], outShape: number[]): string {
    const m = this.meta(x);
    return this.op('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes), this.ints(steps)], { dtype: m.dtype, shape: outShape });
  }

  /** Constant-mode Pad with zeros; pads = [begin…, end…] over every axis. */
  pad(x: string, pads: number[]): string {
    const m = this.meta(x);
    const r = m.shape.length;
    if (pads.every((p) => p === 0)) return x;
    const shape = m.shape.map((d, i) => d + pads[i] + pads[i + r]);
    return this.op('Pad', [x, this.ints(pads)], { dtype: m.dtype, shape }, [stringAttr('mode', 'constant')]);
  }
}

/** Numpy broadcasting of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Values of a small in-memory tensor (int or float), or undefined when its bytes are not in memory. */
export function tensorValues(t: TensorProto): number[] | undefined {
  if (!t.data || t.data.kind !== 'bytes') return t.data ? undefined : [];
  const b = t.data.bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = sizeOf(t.dims.map((d) => toNumber(d)));
  if (n > 1 << 16) return undefined;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    switch (t.dataType) {
      case DataType.int64: out.push(Number(dv.getBigInt64(i * 8, true))); break;
      case DataType.int32: out.push(dv.getInt32(i * 4, true)); break;
      case DataType.float32: out.push(dv.getFloat32(i * 4, true)); break;
      case DataType.float64: out.push(dv.getFloat64(i * 8, true)); break;
      default: return undefined;
    }
  }
  return out;
}
