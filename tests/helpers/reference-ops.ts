/**
 * A plain float64 reference evaluator of ONNX graphs, for gradient checks by finite differences.
 * Readable over fast: every op is a direct loop over output elements with numpy broadcasting.
 * Every tensor holds its values as a Float64Array (integers and booleans too: int64 values beyond 2^53,
 * like Slice's INT64_MAX ends, lose precision but keep their meaning for clamping).
 *
 * Ops: the arithmetic, shape, reduction, normalization and indexing ops of decoder/encoder exports
 * (the list in REFERENCE_OPS), default ONNX domain, opset ≥ 13 semantics (axes as inputs where the
 * spec moved them, attributes accepted too).
 */
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { attrFloat, attrInt, attrInts, attrString, getAttribute, toNumber } from '../../main/engine/onnx/graph.ts';
import type { GraphProto, NodeProto, TensorProto } from '../../main/engine/onnx/proto-types.ts';
import { halfToFloat, readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';

export interface RefTensor {
  dtype: number;
  dims: number[];
  data: Float64Array;
}

export function refTensor(dtype: number, dims: number[], data: ArrayLike<number> | BigInt64Array): RefTensor {
  const out = new Float64Array(size(dims));
  for (let i = 0; i < out.length; i++) out[i] = Number(data[i]);
  return { dtype, dims: [...dims], data: out };
}

export function size(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/** Multi-index of flat position `i` in `dims`. */
function unravel(i: number, dims: readonly number[]): number[] {
  const idx = new Array<number>(dims.length);
  for (let k = dims.length - 1; k >= 0; k--) {
    idx[k] = i % dims[k];
    i = Math.floor(i / dims[k]);
  }
  return idx;
}

const isFloat = (dtype: number): boolean => dtype === DataType.float32 || dtype === DataType.float64 || dtype === DataType.float16 || dtype === DataType.bfloat16;

/** A TensorProto's values (bytes read from memory or file). */
export async function tensorFromProto(t: TensorProto): Promise<RefTensor> {
  const bytes = await readTensorBytes(t);
  return decodeTensor(t, bytes);
}

function decodeTensor(t: TensorProto, bytes: Uint8Array): RefTensor {
  const dims = t.dims.map((d) => toNumber(d));
  const n = size(dims);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(n);
  const dtype = t.dataType ?? DataType.float32;
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case DataType.float32: out[i] = dv.getFloat32(i * 4, true); break;
      case DataType.float64: out[i] = dv.getFloat64(i * 8, true); break;
      case DataType.float16: out[i] = halfToFloat(dv.getUint16(i * 2, true)); break;
      case DataType.int64: out[i] = Number(dv.getBigInt64(i * 8, true)); break;
      case DataType.int32: out[i] = dv.getInt32(i * 4, true); break;
      case DataType.int8: out[i] = dv.getInt8(i); break;
      case DataType.uint8: case DataType.bool: out[i] = bytes[i]; break;
      default: throw new Error(`reference: tensor '${t.name ?? ''}' of dtype ${dtype} is not supported`);
    }
  }
  return { dtype, dims, data: out };
}

/** Every initializer of the graph as a RefTensor. */
export async function loadInitializers(graph: GraphProto): Promise<Map<string, RefTensor>> {
  const m = new Map<string, RefTensor>();
  for (const t of graph.initializer) if (t.name) m.set(t.name, await tensorFromProto(t));
  return m;
}

/**
 * Evaluates the graph's nodes in order. `values` holds the feeds and initializers (see
 * loadInitializers); the result holds them plus every node output.
 */
export function evaluateGraph(graph: GraphProto, values: Map<string, RefTensor>): Map<string, RefTensor> {
  const env = new Map(values);
  for (const node of graph.node) {
    const inputs = node.input.map((name) => {
      if (name === '') return undefined;
      const v = env.get(name);
      if (!v) throw new Error(`reference: node '${node.name ?? ''}' (${node.opType ?? ''}) reads '${name}', which has no value`);
      return v;
    });
    const outs = evalNode(node, inputs);
    node.output.forEach((name, i) => { if (name !== '' && outs[i]) env.set(name, outs[i]); });
  }
  return env;
}

type Inputs = (RefTensor | undefined)[];

function req(inputs: Inputs, i: number, node: NodeProto): RefTensor {
  const t = inputs[i];
  if (!t) throw new Error(`reference: ${node.opType ?? ''} '${node.name ?? ''}' needs input ${i}`);
  return t;
}

function ints(t: RefTensor | undefined): number[] | undefined {
  return t ? Array.from(t.data) : undefined;
}

function broadcastDims(shapes: number[][]): number[] {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    let d = 1;
    for (const s of shapes) {
      const v = s[s.length - r + i] ?? 1;
      if (v !== 1) {
        if (d !== 1 && d !== v) throw new Error(`reference: shapes [${shapes.map((x) => x.join(',')).join('] [')}] do not broadcast`);
        d = v;
      }
    }
    out.push(d);
  }
  return out;
}

/** Flat index into `dims` (right-aligned, broadcast) of output multi-index `idx`. */
function broadcastIndex(idx: number[], dims: number[], st: number[]): number {
  const off = idx.length - dims.length;
  let f = 0;
  for (let k = 0; k < dims.length; k++) f += (dims[k] === 1 ? 0 : idx[k + off]) * st[k];
  return f;
}

function elementwise(ts: RefTensor[], dtype: number, f: (...v: number[]) => number): RefTensor {
  const dims = broadcastDims(ts.map((t) => t.dims));
  const n = size(dims);
  const sts = ts.map((t) => strides(t.dims));
  const out = new Float64Array(n);
  const vals = new Array<number>(ts.length);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, dims);
    for (let k = 0; k < ts.length; k++) vals[k] = ts[k].data[broadcastIndex(idx, ts[k].dims, sts[k])];
    out[i] = f(...vals);
  }
  return { dtype, dims, data: out };
}

function map(t: RefTensor, f: (v: number) => number): RefTensor {
  return { dtype: t.dtype, dims: [...t.dims], data: t.data.map(f) };
}

/** erf(x) to float64 precision: Taylor series near 0, continued fraction for erfc beyond |x| = 3. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let t = ax;
  for (let k = 80; k >= 1; k--) t = ax + k / 2 / t;
  const erfc = Math.exp(-ax * ax) / (Math.sqrt(Math.PI) * t);
  return Math.sign(x) * (1 - erfc);
}

function castValue(v: number, to: number): number {
  switch (to) {
    case DataType.float32: return Math.fround(v);
    case DataType.float64: case DataType.float16: return v;
    case DataType.bool: return v !== 0 ? 1 : 0;
    default: return Math.trunc(v);
  }
}

function normAxis(a: number, rank: number): number {
  return a < 0 ? a + rank : a;
}

function transpose(t: RefTensor, perm: number[]): RefTensor {
  const dims = perm.map((p) => t.dims[p]);
  const st = strides(t.dims);
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, dims);
    let f = 0;
    for (let k = 0; k < perm.length; k++) f += idx[k] * st[perm[k]];
    out[i] = t.data[f];
  }
  return { dtype: t.dtype, dims, data: out };
}

/** Sum (or mean) over `axes`, keeping them as 1s when keepdims. */
function reduce(t: RefTensor, axes: number[], keepdims: boolean, mean: boolean): RefTensor {
  const rank = t.dims.length;
  const set = new Set(axes.map((a) => normAxis(a, rank)));
  const kept = t.dims.map((d, i) => (set.has(i) ? 1 : d));
  const out = new Float64Array(size(kept));
  const kst = strides(kept);
  for (let i = 0; i < t.data.length; i++) {
    const idx = unravel(i, t.dims);
    let f = 0;
    for (let k = 0; k < rank; k++) if (!set.has(k)) f += idx[k] * kst[k];
    out[f] += t.data[i];
  }
  if (mean) {
    let count = 1;
    for (const a of set) count *= t.dims[a];
    for (let i = 0; i < out.length; i++) out[i] /= count;
  }
  return { dtype: t.dtype, dims: keepdims ? kept : t.dims.filter((_, i) => !set.has(i)), data: out };
}

function reduceAxes(node: NodeProto, inputs: Inputs, rank: number): number[] | null {
  const given = ints(inputs[1]) ?? attrInts(node, 'axes') ?? [];
  if (given.length === 0) return attrInt(node, 'noop_with_empty_axes', 0) ? null : [...Array(rank).keys()];
  return given;
}

function softmaxAlong(t: RefTensor, axis: number, log: boolean): RefTensor {
  const a = normAxis(axis, t.dims.length);
  const out = new Float64Array(t.data.length);
  const inner = size(t.dims.slice(a + 1));
  const n = t.dims[a];
  const outer = size(t.dims.slice(0, a));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number): number => o * n * inner + j * inner + i;
      let max = -Infinity;
      for (let j = 0; j < n; j++) max = Math.max(max, t.data[at(j)]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(t.data[at(j)] - max);
      for (let j = 0; j < n; j++) {
        const z = t.data[at(j)] - max;
        out[at(j)] = log ? z - Math.log(s) : Math.exp(z) / s;
      }
    }
  }
  return { dtype: t.dtype, dims: [...t.dims], data: out };
}

function matmul(a: RefTensor, b: RefTensor): RefTensor {
  const ad = a.dims.length === 1 ? [1, a.dims[0]] : a.dims;
  const bd = b.dims.length === 1 ? [b.dims[0], 1] : b.dims;
  const m = ad[ad.length - 2];
  const k = ad[ad.length - 1];
  const n = bd[bd.length - 1];
  if (bd[bd.length - 2] !== k) throw new Error(`reference: MatMul [${a.dims}]·[${b.dims}] do not match`);
  const batch = broadcastDims([ad.slice(0, -2), bd.slice(0, -2)]);
  const nb = size(batch);
  const aBatch = ad.slice(0, -2);
  const bBatch = bd.slice(0, -2);
  const ast = strides(aBatch);
  const bst = strides(bBatch);
  const out = new Float64Array(nb * m * n);
  for (let p = 0; p < nb; p++) {
    const idx = unravel(p, batch);
    const ao = broadcastIndex(idx, aBatch, ast) * m * k;
    const bo = broadcastIndex(idx, bBatch, bst) * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a.data[ao + i * k + q] * b.data[bo + q * n + j];
        out[p * m * n + i * n + j] = s;
      }
    }
  }
  let dims = [...batch, m, n];
  if (a.dims.length === 1) dims = dims.filter((_, i) => i !== dims.length - 2);
  if (b.dims.length === 1) dims = dims.slice(0, -1);
  return { dtype: a.dtype, dims, data: out };
}

function gather(data: RefTensor, idx: RefTensor, axis: number): RefTensor {
  const a = normAxis(axis, data.dims.length);
  const pre = data.dims.slice(0, a);
  const post = data.dims.slice(a + 1);
  const n = data.dims[a];
  const dims = [...pre, ...idx.dims, ...post];
  const out = new Float64Array(size(dims));
  const inner = size(post);
  const outer = size(pre);
  const ni = idx.data.length;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < ni; j++) {
      let k = idx.data[j];
      if (k < 0) k += n;
      if (k < 0 || k >= n) throw new Error(`reference: Gather index ${idx.data[j]} out of range [0, ${n})`);
      for (let i = 0; i < inner; i++) out[(o * ni + j) * inner + i] = data.data[(o * n + k) * inner + i];
    }
  }
  return { dtype: data.dtype, dims, data: out };
}

function sliceRange(start: number, end: number, step: number, dim: number): number[] {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  const picked: number[] = [];
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    for (let i = s; i < e; i += step) picked.push(i);
  } else {
    s = Math.min(Math.max(s, -1), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
    for (let i = s; i > e; i += step) picked.push(i);
  }
  return picked;
}

/** Picks `take[axis]` positions along every axis (a general strided slice). */
function pick(t: RefTensor, take: number[][]): RefTensor {
  const dims = take.map((p) => p.length);
  const st = strides(t.dims);
  const out = new Float64Array(size(dims));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, dims);
    let f = 0;
    for (let k = 0; k < dims.length; k++) f += take[k][idx[k]] * st[k];
    out[i] = t.data[f];
  }
  return { dtype: t.dtype, dims, data: out };
}

function concat(ts: RefTensor[], axis: number): RefTensor {
  const a = normAxis(axis, ts[0].dims.length);
  const dims = [...ts[0].dims];
  dims[a] = ts.reduce((s, t) => s + t.dims[a], 0);
  const out = new Float64Array(size(dims));
  const outer = size(dims.slice(0, a));
  const inner = size(dims.slice(a + 1));
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of ts) {
      const chunk = t.dims[a] * inner;
      out.set(t.data.subarray(o * chunk, (o + 1) * chunk), at);
      at += chunk;
    }
  }
  return { dtype: ts[0].dtype, dims, data: out };
}

function reshape(t: RefTensor, dims: number[]): RefTensor {
  return { dtype: t.dtype, dims, data: t.data };
}

function layerNorm(node: NodeProto, x: RefTensor, scale: RefTensor, bias: RefTensor | undefined): RefTensor[] {
  const rank = x.dims.length;
  const axis = normAxis(attrInt(node, 'axis', -1), rank);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const n = size(x.dims.slice(axis));
  const groups = size(x.dims.slice(0, axis));
  const y = new Float64Array(x.data.length);
  const mean = new Float64Array(groups);
  const inv = new Float64Array(groups);
  const normDims = x.dims.slice(axis);
  const scaleSt = strides(scale.dims);
  const biasSt = bias ? strides(bias.dims) : [];
  for (let gI = 0; gI < groups; gI++) {
    let mu = 0;
    for (let i = 0; i < n; i++) mu += x.data[gI * n + i];
    mu /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x.data[gI * n + i] - mu) ** 2;
    v /= n;
    const r = 1 / Math.sqrt(v + eps);
    mean[gI] = mu;
    inv[gI] = r;
    for (let i = 0; i < n; i++) {
      const idx = unravel(i, normDims);
      const s = scale.data[broadcastIndex(idx, scale.dims, scaleSt)];
      const bb = bias ? bias.data[broadcastIndex(idx, bias.dims, biasSt)] : 0;
      y[gI * n + i] = (x.data[gI * n + i] - mu) * r * s + bb;
    }
  }
  const statDims = x.dims.map((d, i) => (i < axis ? d : 1));
  return [{ dtype: x.dtype, dims: [...x.dims], data: y }, { dtype: x.dtype, dims: statDims, data: mean }, { dtype: x.dtype, dims: statDims, data: inv }];
}

function reshapeTarget(input: RefTensor, shape: number[], allowZero: boolean): number[] {
  const dims = shape.map((d, i) => (d === 0 && !allowZero ? input.dims[i] : d));
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return dims.map((d) => (d === -1 ? size(input.dims) / known : d));
}

export const REFERENCE_OPS = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Where',
  'Neg', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Tanh', 'Sigmoid', 'Relu', 'Clip', 'Erf', 'Abs', 'Floor', 'Ceil', 'Cast', 'Identity',
  'MatMul', 'Gemm', 'Softmax', 'LogSoftmax', 'LayerNormalization', 'Gather', 'GatherElements',
  'Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Transpose', 'Slice', 'Concat', 'Split', 'Expand', 'Tile', 'Pad',
  'ReduceMean', 'ReduceSum', 'Shape', 'Size', 'Range', 'ConstantOfShape', 'Constant', 'ScatterND', 'ScatterElements',
] as const;

function evalNode(node: NodeProto, inputs: Inputs): (RefTensor | undefined)[] {
  const op = node.opType ?? '';
  const x = (i: number): RefTensor => req(inputs, i, node);
  const bool = DataType.bool;
  switch (op) {
    case 'Add': return [elementwise([x(0), x(1)], x(0).dtype, (a, b) => a + b)];
    case 'Sub': return [elementwise([x(0), x(1)], x(0).dtype, (a, b) => a - b)];
    case 'Mul': return [elementwise([x(0), x(1)], x(0).dtype, (a, b) => a * b)];
    case 'Div': return [elementwise([x(0), x(1)], x(0).dtype, isFloat(x(0).dtype) ? (a, b) => a / b : (a, b) => Math.trunc(a / b))];
    case 'Pow': return [elementwise([x(0), x(1)], x(0).dtype, (a, b) => a ** b)];
    case 'Max': return [elementwise(inputs as RefTensor[], x(0).dtype, (...v) => Math.max(...v))];
    case 'Min': return [elementwise(inputs as RefTensor[], x(0).dtype, (...v) => Math.min(...v))];
    case 'Sum': return [elementwise(inputs as RefTensor[], x(0).dtype, (...v) => v.reduce((s, t) => s + t, 0))];
    case 'Equal': return [elementwise([x(0), x(1)], bool, (a, b) => (a === b ? 1 : 0))];
    case 'Less': return [elementwise([x(0), x(1)], bool, (a, b) => (a < b ? 1 : 0))];
    case 'LessOrEqual': return [elementwise([x(0), x(1)], bool, (a, b) => (a <= b ? 1 : 0))];
    case 'Greater': return [elementwise([x(0), x(1)], bool, (a, b) => (a > b ? 1 : 0))];
    case 'GreaterOrEqual': return [elementwise([x(0), x(1)], bool, (a, b) => (a >= b ? 1 : 0))];
    case 'And': return [elementwise([x(0), x(1)], bool, (a, b) => (a && b ? 1 : 0))];
    case 'Or': return [elementwise([x(0), x(1)], bool, (a, b) => (a || b ? 1 : 0))];
    case 'Not': return [map(x(0), (a) => (a ? 0 : 1))];
    case 'Where': return [elementwise([x(0), x(1), x(2)], x(1).dtype, (c, a, b) => (c ? a : b))];
    case 'Neg': return [map(x(0), (a) => -a)];
    case 'Exp': return [map(x(0), Math.exp)];
    case 'Log': return [map(x(0), Math.log)];
    case 'Sqrt': return [map(x(0), Math.sqrt)];
    case 'Reciprocal': return [map(x(0), (a) => 1 / a)];
    case 'Tanh': return [map(x(0), Math.tanh)];
    case 'Sigmoid': return [map(x(0), (a) => 1 / (1 + Math.exp(-a)))];
    case 'Relu': return [map(x(0), (a) => Math.max(a, 0))];
    case 'Clip': {
      const lo = inputs[1] ? inputs[1].data[0] : -Infinity, hi = inputs[2] ? inputs[2].data[0] : Infinity;
      return [map(x(0), (a) => Math.min(Math.max(a, lo), hi))];
    }
    case 'Erf': return [map(x(0), erf)];
    case 'Abs': return [map(x(0), Math.abs)];
    case 'Floor': return [map(x(0), Math.floor)];
    case 'Ceil': return [map(x(0), Math.ceil)];
    case 'Identity': return [x(0)];
    case 'Cast': {
      const to = attrInt(node, 'to', DataType.float32);
      // Float casts keep float64 precision here: the reference stands for exact arithmetic.
      return [{ dtype: to, dims: [...x(0).dims], data: isFloat(to) ? x(0).data : x(0).data.map((v) => castValue(v, to)) }];
    }
    case 'MatMul': return [matmul(x(0), x(1))];
    case 'Gemm': {
      let a = x(0);
      let b = x(1);
      if (attrInt(node, 'transA', 0)) a = transpose(a, [1, 0]);
      if (attrInt(node, 'transB', 0)) b = transpose(b, [1, 0]);
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const ab = map(matmul(a, b), (v) => alpha * v);
      const c = inputs[2];
      return [c ? elementwise([ab, c], ab.dtype, (p, q) => p + beta * q) : ab];
    }
    case 'Softmax': return [softmaxAlong(x(0), attrInt(node, 'axis', -1), false)];
    case 'LogSoftmax': return [softmaxAlong(x(0), attrInt(node, 'axis', -1), true)];
    case 'LayerNormalization': return layerNorm(node, x(0), x(1), inputs[2]);
    case 'Gather': return [gather(x(0), x(1), attrInt(node, 'axis', 0))];
    case 'GatherElements': {
      const data = x(0);
      const idx = x(1);
      const axis = normAxis(attrInt(node, 'axis', 0), data.dims.length);
      const st = strides(data.dims);
      const out = new Float64Array(idx.data.length);
      for (let i = 0; i < out.length; i++) {
        const pos = unravel(i, idx.dims);
        let k = idx.data[i];
        if (k < 0) k += data.dims[axis];
        pos[axis] = k;
        out[i] = data.data[pos.reduce((s, p, j) => s + p * st[j], 0)];
      }
      return [{ dtype: data.dtype, dims: [...idx.dims], data: out }];
    }
    case 'Reshape': return [reshape(x(0), reshapeTarget(x(0), Array.from(x(1).data), attrInt(node, 'allowzero', 0) !== 0))];
    case 'Flatten': {
      const a = normAxis(attrInt(node, 'axis', 1), x(0).dims.length);
      return [reshape(x(0), [size(x(0).dims.slice(0, a)), size(x(0).dims.slice(a))])];
    }
    case 'Squeeze': {
      const t = x(0);
      const axes = (ints(inputs[1]) ?? attrInts(node, 'axes'))?.map((a) => normAxis(a, t.dims.length));
      return [reshape(t, t.dims.filter((d, i) => (axes ? !axes.includes(i) : d !== 1)))];
    }
    case 'Unsqueeze': {
      const t = x(0);
      const axesRaw = ints(inputs[1]) ?? attrInts(node, 'axes') ?? [];
      const rank = t.dims.length + axesRaw.length;
      const axes = axesRaw.map((a) => normAxis(a, rank));
      const dims: number[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) dims.push(axes.includes(i) ? 1 : t.dims[j++]);
      return [reshape(t, dims)];
    }
    case 'Transpose': {
      const t = x(0);
      return [transpose(t, attrInts(node, 'perm') ?? [...Array(t.dims.length).keys()].reverse())];
    }
    case 'Slice': {
      const t = x(0);
      const starts = ints(x(1)) as number[];
      const ends = ints(x(2)) as number[];
      const axes = ints(inputs[3]) ?? starts.map((_, i) => i);
      const steps = ints(inputs[4]) ?? starts.map(() => 1);
      const take = t.dims.map((d) => [...Array(d).keys()]);
      axes.forEach((a, j) => {
        const ax = normAxis(a, t.dims.length);
        take[ax] = sliceRange(starts[j], ends[j], steps[j], t.dims[ax]);
      });
      return [pick(t, take)];
    }
    case 'Concat': return [concat(inputs.filter((t): t is RefTensor => t !== undefined), attrInt(node, 'axis', 0))];
    case 'Split': {
      const t = x(0);
      const axis = normAxis(attrInt(node, 'axis', 0), t.dims.length);
      const dim = t.dims[axis];
      const count = node.output.length;
      let sizes = ints(inputs[1]) ?? attrInts(node, 'split');
      if (!sizes) {
        const chunk = Math.ceil(dim / count);
        sizes = [...Array(count).keys()].map((i) => Math.min(chunk, dim - i * chunk));
      }
      let at = 0;
      return sizes.map((s) => {
        const take = t.dims.map((d) => [...Array(d).keys()]);
        take[axis] = [...Array(s).keys()].map((i) => i + at);
        at += s;
        return pick(t, take);
      });
    }
    case 'Expand': {
      const t = x(0);
      const dims = broadcastDims([t.dims, Array.from(x(1).data)]);
      const zeros: RefTensor = { dtype: t.dtype, dims, data: new Float64Array(size(dims)) };
      return [elementwise([t, zeros], t.dtype, (a) => a)];
    }
    case 'Tile': {
      const t = x(0);
      const reps = Array.from(x(1).data);
      return [pick(t, t.dims.map((d, i) => [...Array(d * reps[i]).keys()].map((k) => k % d)))];
    }
    case 'Pad': {
      const t = x(0);
      if (attrString(node, 'mode', 'constant') !== 'constant') throw new Error('reference: only constant Pad');
      const rank = t.dims.length;
      const raw = Array.from(x(1).data);
      const value = inputs[2] && inputs[2].data.length ? inputs[2].data[0] : 0;
      const axes = (ints(inputs[3]) ?? [...Array(rank).keys()]).map((a) => normAxis(a, rank));
      const pads = new Array<number>(2 * rank).fill(0);
      axes.forEach((a, j) => { pads[a] = raw[j]; pads[a + rank] = raw[j + axes.length]; });
      const dims = t.dims.map((d, i) => d + pads[i] + pads[i + rank]);
      const st = strides(t.dims);
      const out = new Float64Array(size(dims)).fill(value);
      for (let i = 0; i < out.length; i++) {
        const idx = unravel(i, dims);
        let f = 0;
        let inside = true;
        for (let k = 0; k < rank; k++) {
          const s = idx[k] - pads[k];
          if (s < 0 || s >= t.dims[k]) { inside = false; break; }
          f += s * st[k];
        }
        if (inside) out[i] = t.data[f];
      }
      return [{ dtype: t.dtype, dims, data: out }];
    }
    case 'ReduceMean': case 'ReduceSum': {
      const t = x(0);
      const axes = reduceAxes(node, inputs, t.dims.length);
      if (axes === null) return [t];
      return [reduce(t, axes, attrInt(node, 'keepdims', 1) !== 0, op === 'ReduceMean')];
    }
    case 'Shape': {
      const t = x(0);
      const rank = t.dims.length;
      const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
      const start = clamp(attrInt(node, 'start', 0));
      const end = getAttribute(node, 'end') ? clamp(attrInt(node, 'end', rank)) : rank;
      const dims = t.dims.slice(start, end);
      return [refTensor(DataType.int64, [dims.length], dims)];
    }
    case 'Size': return [refTensor(DataType.int64, [], [size(x(0).dims)])];
    case 'Range': {
      const [start, limit, delta] = [x(0).data[0], x(1).data[0], x(2).data[0]];
      const n = Math.max(Math.ceil((limit - start) / delta), 0);
      return [refTensor(x(0).dtype, [n], [...Array(n).keys()].map((i) => start + i * delta))];
    }
    case 'ConstantOfShape': {
      const dims = Array.from(x(0).data);
      const a = getAttribute(node, 'value');
      const v = a?.t ? decodeTensor(a.t, a.t.data?.kind === 'bytes' ? a.t.data.bytes : new Uint8Array(8)) : { dtype: DataType.float32, dims: [1], data: new Float64Array(1) };
      return [{ dtype: v.dtype, dims, data: new Float64Array(size(dims)).fill(v.data[0]) }];
    }
    case 'Constant': {
      const a = node.attribute[0];
      if (a.t) {
        if (a.t.data && a.t.data.kind !== 'bytes') throw new Error('reference: Constant with file data');
        return [decodeTensor(a.t, a.t.data?.kind === 'bytes' ? a.t.data.bytes : new Uint8Array(0))];
      }
      if (a.name === 'value_float') return [refTensor(DataType.float32, [], [a.f ?? 0])];
      if (a.name === 'value_floats') return [refTensor(DataType.float32, [a.floats.length], a.floats)];
      if (a.name === 'value_int') return [refTensor(DataType.int64, [], [toNumber(a.i)])];
      if (a.name === 'value_ints') return [refTensor(DataType.int64, [a.ints.length], a.ints.map((v) => toNumber(v)))];
      throw new Error(`reference: Constant attribute ${a.name ?? ''}`);
    }
    case 'ScatterND': {
      const data = x(0);
      const idx = x(1);
      const upd = x(2);
      const reduction = attrString(node, 'reduction', 'none');
      const out = Float64Array.from(data.data);
      const depth = idx.dims[idx.dims.length - 1];
      const st = strides(data.dims);
      const slab = size(data.dims.slice(depth));
      const count = idx.data.length / depth;
      for (let u = 0; u < count; u++) {
        let base = 0;
        for (let k = 0; k < depth; k++) {
          let v = idx.data[u * depth + k];
          if (v < 0) v += data.dims[k];
          base += v * st[k];
        }
        for (let i = 0; i < slab; i++) {
          const val = upd.data[u * slab + i];
          out[base + i] = reduction === 'add' ? out[base + i] + val : reduction === 'mul' ? out[base + i] * val : val;
        }
      }
      return [{ dtype: data.dtype, dims: [...data.dims], data: out }];
    }
    case 'ScatterElements': {
      const data = x(0);
      const idx = x(1);
      const upd = x(2);
      const axis = normAxis(attrInt(node, 'axis', 0), data.dims.length);
      const reduction = attrString(node, 'reduction', 'none');
      const out = Float64Array.from(data.data);
      const st = strides(data.dims);
      for (let i = 0; i < idx.data.length; i++) {
        const pos = unravel(i, idx.dims);
        let k = idx.data[i];
        if (k < 0) k += data.dims[axis];
        pos[axis] = k;
        const f = pos.reduce((s, p, j) => s + p * st[j], 0);
        out[f] = reduction === 'add' ? out[f] + upd.data[i] : upd.data[i];
      }
      return [{ dtype: data.dtype, dims: [...data.dims], data: out }];
    }
    default:
      throw new Error(`reference: no evaluator for ${node.domain ? `${node.domain}.` : ''}${op} (node '${node.name ?? ''}')`);
  }
}
