/**
 * The builder the contrib-op decompositions emit into: standard-domain nodes with fresh names derived
 * from the replaced node, constants as initializers of the main graph (shared when equal), and the
 * static meta (dtype, shape) of every tensor it creates, recorded into the training view's MetaMap.
 *
 * Every helper computes its output shape from the input shapes, so a decomposition always knows what it
 * holds. Opset forms: ReduceMean takes its axes as an attribute below opset 18 and as an input from 18 on;
 * ReduceSum, Slice, Reshape and Expand take theirs as int64 inputs (valid from opset 13).
 */
import { WhittleError } from '../../errors.ts';
import { DataType, dtypeName } from '../../onnx/dtype.ts';
import { floatAttr, intAttr, intsAttr, makeNode, type NameScope } from '../../onnx/graph.ts';
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from '../../onnx/proto-types.ts';
import { floatToHalf, makeTensor } from '../../onnx/tensor-data.ts';
import type { MetaMap, TensorMeta } from '../autodiff/types.ts';

/** Thrown by a decomposition for a form of its op it does not handle; the node is then left in place. */
export class NotDecomposable extends Error {}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** NumPy-style broadcast of two static shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new NotDecomposable(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Float values as little-endian bytes of `dtype`. */
function floatBytes(dtype: number, values: readonly number[]): Uint8Array {
  switch (dtype) {
    case DataType.float32: return new Uint8Array(Float32Array.from(values).buffer);
    case DataType.float64: return new Uint8Array(Float64Array.from(values).buffer);
    case DataType.float16: return new Uint8Array(Uint16Array.from(values.map((v) => floatToHalf(v))).buffer);
    default: throw new NotDecomposable(`no float constants of type ${dtypeName(dtype)}`);
  }
}

/** The most negative finite value of a float dtype (a mask fill that stays finite). */
export function lowestOf(dtype: number): number {
  return dtype === DataType.float16 ? -65504 : -3.4028234663852886e38;
}

export class DecomposeBuilder {
  /** Nodes emitted for the node being replaced, in order. */
  nodes: NodeProto[] = [];
  /** Initializers added for the node being replaced (also pushed into the graph). */
  private added: TensorProto[] = [];
  private createdNames: string[] = [];
  private readonly constCache = new Map<string, string>();
  private stem = 'decomposed';

  readonly graph: GraphProto;
  readonly meta: MetaMap;
  readonly opset: number;
  private readonly names: NameScope;

  constructor(graph: GraphProto, meta: MetaMap, names: NameScope, opset: number) {
    this.graph = graph;
    this.meta = meta;
    this.names = names;
    this.opset = opset;
  }

  /** Starts the replacement of one node: fresh names derive from `stem`. */
  begin(stem: string): void {
    this.nodes = [];
    this.added = [];
    this.createdNames = [];
    this.stem = stem;
  }

  /** Undoes what the current replacement added (it turned out not decomposable). */
  rollback(): void {
    const gone = new Set(this.added);
    this.graph.initializer = this.graph.initializer.filter((t) => !gone.has(t));
    for (const [key, name] of [...this.constCache]) if (this.added.some((t) => t.name === name)) this.constCache.delete(key);
    for (const n of this.createdNames) this.meta.delete(n);
    this.nodes = [];
    this.added = [];
    this.createdNames = [];
  }

  fresh(base: string): string {
    return this.names.fresh(`${this.stem}/${base}`);
  }

  metaOf(name: string): TensorMeta {
    const m = this.meta.get(name);
    if (!m) throw new WhittleError('INTERNAL', `Decomposition: no static shape is known for tensor '${name}'. Probe the model before decomposing it.`);
    return m;
  }

  shape(name: string): number[] { return this.metaOf(name).shape; }
  dtype(name: string): number { return this.metaOf(name).dtype; }

  private record(name: string, m: TensorMeta): void {
    this.meta.set(name, { dtype: m.dtype, shape: [...m.shape] });
    this.createdNames.push(name);
  }

  /** Emits one node with one output of meta `out`; returns the output's name. */
  op(opType: string, inputs: string[], out: TensorMeta, attributes: AttributeProto[] = []): string {
    const output = this.fresh(opType);
    this.record(output, out);
    this.nodes.push(makeNode({ opType, inputs, outputs: [output], name: this.fresh(`${opType}_node`), attributes }));
    return output;
  }

  /** Emits one node with several outputs (an empty meta slot = that output is not requested). */
  opMulti(opType: string, inputs: string[], outs: (TensorMeta | null)[], attributes: AttributeProto[] = []): string[] {
    const outputs = outs.map((m) => {
      if (!m) return '';
      const name = this.fresh(opType);
      this.record(name, m);
      return name;
    });
    this.nodes.push(makeNode({ opType, inputs, outputs, name: this.fresh(`${opType}_node`), attributes }));
    return outputs;
  }

  // ── constants ──────────────────────────────────────────────────────────────────────────────────────

  private constant(key: string, make: (name: string) => TensorProto, m: TensorMeta): string {
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.names.fresh(`${this.stem}/const`);
    const t = make(name);
    this.graph.initializer.push(t);
    this.added.push(t);
    this.record(name, m);
    this.constCache.set(key, name);
    return name;
  }

  /** A float constant of `dtype` and `shape` (a scalar by default). */
  floats(values: readonly number[], dtype: number, shape: readonly number[] = []): string {
    return this.constant(`f${dtype}:${shape.join('x')}:${values.join(',')}`, (n) => makeTensor(n, dtype, shape, floatBytes(dtype, values)), { dtype, shape: [...shape] });
  }

  /** A 1-D int64 vector (shapes, axes, starts, ends), or an int64 tensor of `shape`. */
  ints(values: readonly number[], shape: readonly number[] = [values.length]): string {
    return this.constant(`i64:${shape.join('x')}:${values.join(',')}`, (n) => makeTensor(n, DataType.int64, shape, BigInt64Array.from(values, (v) => BigInt(v))),
      { dtype: DataType.int64, shape: [...shape] });
  }

  /** An int32 tensor of `shape`. */
  int32s(values: readonly number[], shape: readonly number[]): string {
    return this.constant(`i32:${shape.join('x')}:${values.join(',')}`, (n) => makeTensor(n, DataType.int32, shape, Int32Array.from(values)), { dtype: DataType.int32, shape: [...shape] });
  }

  /** A bool tensor of `shape`. */
  bools(values: readonly boolean[], shape: readonly number[]): string {
    return this.constant(`b:${shape.join('x')}:${values.map((v) => (v ? 1 : 0)).join('')}`, (n) => makeTensor(n, DataType.bool, shape, Uint8Array.from(values, (v) => (v ? 1 : 0))),
      { dtype: DataType.bool, shape: [...shape] });
  }

  // ── elementwise (broadcasting) ─────────────────────────────────────────────────────────────────────

  private binary(opType: string, a: string, b: string, dtype?: number): string {
    return this.op(opType, [a, b], { dtype: dtype ?? this.dtype(a), shape: broadcastShapes(this.shape(a), this.shape(b)) });
  }

  add(a: string, b: string): string { return this.binary('Add', a, b); }
  sub(a: string, b: string): string { return this.binary('Sub', a, b); }
  mul(a: string, b: string): string { return this.binary('Mul', a, b); }
  div(a: string, b: string): string { return this.binary('Div', a, b); }
  and(a: string, b: string): string { return this.binary('And', a, b); }
  less(a: string, b: string): string { return this.binary('Less', a, b, DataType.bool); }
  unary(opType: string, x: string): string { return this.op(opType, [x], this.metaOf(x)); }

  /** x · c for a float constant c in x's dtype (no node when c = 1). */
  scale(x: string, c: number): string {
    return c === 1 ? x : this.mul(x, this.floats([c], this.dtype(x)));
  }

  /** x + c for a float constant c in x's dtype. */
  addScalar(x: string, c: number): string {
    return this.add(x, this.floats([c], this.dtype(x)));
  }

  /** x + c for an int64 constant c. */
  addInt(x: string, c: number): string {
    return this.add(x, this.ints([c], []));
  }

  cast(x: string, dtype: number): string {
    if (this.dtype(x) === dtype) return x;
    return this.op('Cast', [x], { dtype, shape: this.shape(x) }, [intAttr('to', dtype)]);
  }

  where(cond: string, a: string, b: string): string {
    const shape = broadcastShapes(broadcastShapes(this.shape(cond), this.shape(a)), this.shape(b));
    return this.op('Where', [cond, a, b], { dtype: this.dtype(a), shape });
  }

  // ── shapes ─────────────────────────────────────────────────────────────────────────────────────────

  /** Reshape to a static `shape` (no node when it already has it). */
  reshape(x: string, shape: readonly number[]): string {
    const m = this.metaOf(x);
    if (sizeOf(m.shape) !== sizeOf(shape)) throw new WhittleError('INTERNAL', `Decomposition: cannot reshape [${m.shape.join(', ')}] to [${shape.join(', ')}].`);
    if (m.shape.length === shape.length && m.shape.every((d, i) => d === shape[i])) return x;
    return this.op('Reshape', [x, this.ints(shape)], { dtype: m.dtype, shape: [...shape] });
  }

  transpose(x: string, perm: readonly number[]): string {
    const m = this.metaOf(x);
    if (perm.every((p, i) => p === i)) return x;
    return this.op('Transpose', [x], { dtype: m.dtype, shape: perm.map((p) => m.shape[p]) }, [intsAttr('perm', [...perm])]);
  }

  /** x[start:end] along `axis` (no node for the whole axis). */
  slice(x: string, axis: number, start: number, end: number): string {
    const m = this.metaOf(x);
    const a = normAxis(axis, m.shape.length);
    if (start === 0 && end === m.shape[a]) return x;
    const shape = [...m.shape];
    shape[a] = end - start;
    return this.op('Slice', [x, this.ints([start]), this.ints([end]), this.ints([a])], { dtype: m.dtype, shape });
  }

  concat(xs: string[], axis: number): string {
    const parts = xs.filter((x) => sizeOf(this.shape(x)) > 0 || xs.length === 1);
    if (parts.length === 1) return parts[0];
    const m = this.metaOf(parts[0]);
    const a = normAxis(axis, m.shape.length);
    const shape = [...m.shape];
    shape[a] = parts.reduce((s, x) => s + this.shape(x)[a], 0);
    return this.op('Concat', parts, { dtype: m.dtype, shape }, [intAttr('axis', a)]);
  }

  expand(x: string, shape: readonly number[]): string {
    const target = broadcastShapes(this.shape(x), shape);
    if (target.length === this.shape(x).length && target.every((d, i) => d === this.shape(x)[i])) return x;
    return this.op('Expand', [x, this.ints(shape)], { dtype: this.dtype(x), shape: target });
  }

  /** table[indices] along axis 0. */
  gather(table: string, indices: string): string {
    const t = this.metaOf(table);
    return this.op('Gather', [table, indices], { dtype: t.dtype, shape: [...this.shape(indices), ...t.shape.slice(1)] }, [intAttr('axis', 0)]);
  }

  /** Batched matrix product with NumPy broadcasting of the leading axes. */
  matmul(a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    if (sa.length < 2 || sb.length < 2) throw new NotDecomposable('MatMul of vectors');
    const batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
    return this.op('MatMul', [a, b], { dtype: this.dtype(a), shape: [...batch, sa[sa.length - 2], sb[sb.length - 1]] });
  }

  softmax(x: string, axis = -1): string {
    return this.op('Softmax', [x], this.metaOf(x), [intAttr('axis', axis)]);
  }

  /** ReduceMean over `axes`, keeping them (axes as attribute below opset 18, as input from 18). */
  reduceMean(x: string, axes: readonly number[]): string {
    const m = this.metaOf(x);
    const norm = axes.map((a) => normAxis(a, m.shape.length));
    const shape = m.shape.map((d, i) => (norm.includes(i) ? 1 : d));
    if (this.opset >= 18) return this.op('ReduceMean', [x, this.ints(norm)], { dtype: m.dtype, shape }, [intAttr('keepdims', 1)]);
    return this.op('ReduceMean', [x], { dtype: m.dtype, shape }, [intsAttr('axes', norm), intAttr('keepdims', 1)]);
  }

  /** ReduceSum over `axes` (axes as an input, opset ≥ 13). */
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    const m = this.metaOf(x);
    const norm = axes.map((a) => normAxis(a, m.shape.length));
    const shape = keepdims ? m.shape.map((d, i) => (norm.includes(i) ? 1 : d)) : m.shape.filter((_, i) => !norm.includes(i));
    return this.op('ReduceSum', [x, this.ints(norm)], { dtype: m.dtype, shape }, [intAttr('keepdims', keepdims ? 1 : 0)]);
  }

  /** Standard LayerNormalization (opset 17) over the last axis; the optional mean / inv-std outputs in float32. */
  layerNorm(x: string, gamma: string, beta: string, epsilon: number, stats: { mean: boolean; invStd: boolean }): { y: string; mean: string; invStd: string } {
    const m = this.metaOf(x);
    const statMeta: TensorMeta = { dtype: DataType.float32, shape: [...m.shape.slice(0, -1), 1] };
    const [y, mean, invStd] = this.opMulti('LayerNormalization', beta ? [x, gamma, beta] : [x, gamma],
      [m, stats.mean || stats.invStd ? statMeta : null, stats.invStd ? statMeta : null],
      [intAttr('axis', -1), floatAttr('epsilon', epsilon), intAttr('stash_type', 1)]);
    return { y, mean, invStd };
  }
}
