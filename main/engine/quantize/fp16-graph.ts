/**
 * The float16 rewrite of a model's graphs (tensor payloads are converted by fp16.ts; this file only
 * decides precisions, renames and inserts Casts).
 *
 * Every float32 value gets a *home* precision: float32 when a float32 node produces it (an op in
 * `blockOps`, a node kept by name, an op without a float16 CPU kernel, a reader of a tensor too large for
 * float16), when it is a kept tensor or a float32 graph input kept as such; float16 otherwise. A node
 * reading a value in the other precision reads a Cast of it, made once per value and placed right after
 * the value's producer (graph inputs and initializers: at the top of their graph), so chains of float32
 * nodes (Pow → ReduceMean) pass float32 along without a round trip through float16.
 * Graph outputs keep their names: with `keepIoTypes` a float16 producer writes `<name>_fp16` and a Cast
 * produces the float32 `<name>`. Subgraph (If/Loop/Scan body) inputs and outputs become float16, so a
 * body stays consistent with the control-flow node around it, which always runs in float16.
 * Cast(to = FLOAT), ConstantOfShape, EyeLike and Random* producing float32 in the float16 region produce
 * float16 instead; value_info, input and output types follow the values' new precision (shapes kept).
 */
import { DataType } from '../onnx/dtype.ts';
import { getAttribute, intAttr, makeNode, qualifiedOpType, subgraphsOf, tensorAttr } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { floatToHalf, makeTensor } from '../onnx/tensor-data.ts';
import type { ModelTypes, TypeScope } from './fp16-types.ts';

export type Precision = 'fp16' | 'fp32';

/**
 * Ops that run in float32 whatever `blockOps` says. onnxruntime's CPU execution provider runs most ops
 * on float16 tensors (it inserts Casts around kernels it only has in float32: the contrib Attention,
 * EmbedLayerNormalization and FastGelu of the tiny GPT-2 run that way), but it refuses to load a model
 * whose types break an op's schema. Each entry was found by converting a one-node model and loading it
 * in onnxruntime-node 1.30, and names what failed.
 */
export const ALWAYS_FP32_OPS: ReadonlyMap<string, string> = new Map([
  // "Type 'tensor(float16)' of input parameter (X) of operator (Range) is invalid": Range's T has no float16.
  ['Range', 'the ONNX schema of Range has no float16'],
  // Same load error: Celu is float32 only; IsInf accepts float16 only from opset 20.
  ['Celu', 'the ONNX schema of Celu is float32 only'],
  ['IsInf', 'the ONNX schema of IsInf before opset 20 has no float16'],
  // Type constraints tying an input to float32: scales (Resize/Upsample), the quantizers' float input
  // and scales before opset 19, onnxruntime's dynamic-quantization contrib ops.
  ['Resize', 'its scales input is float32 only'],
  ['Upsample', 'its scales input is float32 only'],
  ['DynamicQuantizeLinear', 'it quantizes float32 input only'],
  ['QuantizeLinear', 'its scale stays float32 (float16 scales need opset 19)'],
  ['DequantizeLinear', 'its scale stays float32 (float16 scales need opset 19)'],
  ['com.microsoft.DynamicQuantizeMatMul', 'its input and scales are float32 only'],
  ['com.microsoft.MatMulIntegerToFloat', 'its scales are float32 only'],
]);

/** Ops that move values without computing: a value too large for float16 stays large through them. */
const PASS_THROUGH = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Gather', 'GatherElements', 'GatherND', 'Slice', 'Concat',
  'Expand', 'Identity', 'Flatten', 'Split', 'Tile', 'Where', 'Pad', 'Cast']);

const CONTROL_FLOW = new Set(['If', 'Loop', 'Scan']);

export interface Fp16Decisions {
  /** Float32 tensors (initializers; Constant/ConstantOfShape outputs) that stay float32 → reason. */
  kept: Map<string, string>;
  /** Of those, the ones holding values beyond float16's range: every node reading them computes in float32. */
  large: Set<string>;
}

export interface Fp16RewriteOptions {
  blockOps: ReadonlySet<string>;
  keepNodes: readonly RegExp[];
  keepIoTypes: boolean;
  uniqueName: (base: string) => string;
}

export interface Fp32Node {
  node: NodeProto;
  name: string;
  op: string;
  reason: string;
}

export interface Fp16RewriteResult {
  /** Nodes computing in float32, with why. */
  fp32Nodes: Fp32Node[];
  /** Initializers (of every graph) and Constant tensors to store as float16. */
  convert: Set<TensorProto>;
  /** Float32 initializers and Constant tensors left in float32, with why. */
  kept: { tensor: TensorProto; name: string; reason: string }[];
  /** Cast nodes inserted. */
  casts: number;
}

interface ValueState {
  orig: string;
  home: Precision;
  names: Partial<Record<Precision, string>>;
  /** Casts of this value go after this node (null: the top of its graph). */
  after: NodeProto | null;
  scope: PrecisionScope;
}

class PrecisionScope {
  readonly values = new Map<string, ValueState>();
  readonly inserts = new Map<NodeProto | null, NodeProto[]>();
  readonly parent: PrecisionScope | null;
  constructor(parent: PrecisionScope | null) {
    this.parent = parent;
  }
  lookup(name: string): ValueState | undefined {
    return this.values.get(name) ?? this.parent?.lookup(name);
  }
}

const isFloat32 = (types: TypeScope, name: string): boolean => name !== '' && types.get(name) === DataType.float32;
const elemType = (p: Precision): number => (p === 'fp16' ? DataType.float16 : DataType.float32);

function setElemType(v: ValueInfoProto, p: Precision): void {
  if (v.type?.tensorType) v.type.tensorType.elemType = elemType(p);
}

/** Every node of every graph, with its graph's type scope. */
function* walk(graph: GraphProto, types: ModelTypes): Generator<{ node: NodeProto; types: TypeScope }> {
  const scope = types.scopes.get(graph)!;
  for (const node of graph.node) {
    yield { node, types: scope };
    for (const sub of subgraphsOf(node)) yield* walk(sub, types);
  }
}

/** Nodes reading each value name (actual inputs, in whichever graph the reader sits). */
function readerIndex(model: ModelProto, types: ModelTypes): Map<string, NodeProto[]> {
  const readers = new Map<string, NodeProto[]>();
  for (const { node } of walk(model.graph!, types)) {
    for (const name of new Set(node.input)) {
      if (name === '') continue;
      const list = readers.get(name);
      if (list) list.push(node);
      else readers.set(name, [node]);
    }
  }
  return readers;
}

const floatOutputs = (node: NodeProto, types: TypeScope): string[] => node.output.filter((o) => isFloat32(types, o));

/** Which nodes compute in float32, and why. */
function planFp32Nodes(model: ModelProto, types: ModelTypes, decisions: Fp16Decisions, options: Fp16RewriteOptions, readers: Map<string, NodeProto[]>): Map<NodeProto, string> {
  const fp32 = new Map<NodeProto, string>();
  const functions = new Set(model.functions.map((f) => `${f.domain ?? ''}:${f.name ?? ''}`));
  const typesOf = new Map<NodeProto, TypeScope>();
  for (const { node, types: scope } of walk(model.graph!, types)) {
    typesOf.set(node, scope);
    const op = node.opType ?? '';
    if (CONTROL_FLOW.has(op) && !node.domain) continue;
    if (op === 'Constant' || op === 'ConstantOfShape') {
      const out = node.output[0];
      if (out && decisions.kept.has(out)) fp32.set(node, decisions.kept.get(out)!);
      continue;
    }
    const qualified = qualifiedOpType(node);
    const always = ALWAYS_FP32_OPS.get(qualified);
    const keep = options.keepNodes.find((re) => re.test(node.name ?? ''));
    if (options.blockOps.has(op)) fp32.set(node, `${op} is in blockOps`);
    else if (always) fp32.set(node, `${qualified}: ${always}`);
    else if (keep) fp32.set(node, `the node name matches a keep pattern (${keep})`);
    else if (functions.has(`${node.domain ?? ''}:${op}`)) fp32.set(node, `${qualified} is a function defined in the model`);
  }

  // Readers of values beyond float16's range compute in float32; data movement carries the large values on.
  const queue = [...decisions.large].map((name) => ({ name, source: name }));
  const seen = new Set(decisions.large);
  while (queue.length > 0) {
    const { name, source } = queue.shift()!;
    for (const node of readers.get(name) ?? []) {
      const op = node.opType ?? '';
      if (CONTROL_FLOW.has(op) && !node.domain) continue;
      if (!fp32.has(node)) fp32.set(node, `reads ${source}, whose values exceed float16's range`);
      if (PASS_THROUGH.has(op) && !node.domain) {
        for (const o of floatOutputs(node, typesOf.get(node)!)) {
          if (!seen.has(o)) { seen.add(o); queue.push({ name: o, source }); }
        }
      }
    }
  }

  // A Constant read only by float32 nodes stays float32 (no Cast needed).
  for (const [node, scope] of typesOf) {
    if ((node.opType !== 'Constant' && node.opType !== 'ConstantOfShape') || fp32.has(node)) continue;
    const out = node.output[0];
    if (!out || !isFloat32(scope, out)) continue;
    const users = readers.get(out) ?? [];
    if (users.length > 0 && users.every((u) => fp32.has(u))) fp32.set(node, `read only by float32 ops (${[...new Set(users.map((u) => u.opType))].join(', ')})`);
  }
  return fp32;
}

function tensorOfConstant(node: NodeProto): TensorProto | undefined {
  return getAttribute(node, 'value')?.t;
}

/** float16 bits of a small in-memory float32 tensor (Constant/ConstantOfShape values). */
function halfTensorFrom(name: string, dims: number[], values: number[]): TensorProto {
  return makeTensor(name, DataType.float16, dims, Uint16Array.from(values, floatToHalf));
}

/**
 * Constant nodes with value_float / value_floats become Constant nodes with a `value` tensor, so every
 * float constant is a tensor the payload pass can convert.
 */
export function normaliseFloatConstants(model: ModelProto): void {
  const visit = (graph: GraphProto): void => {
    for (const node of graph.node) {
      for (const sub of subgraphsOf(node)) visit(sub);
      if (node.opType !== 'Constant' || node.domain) continue;
      const a = node.attribute.find((x) => x.name === 'value_float' || x.name === 'value_floats');
      if (!a) continue;
      const values = a.name === 'value_float' ? [a.f ?? 0] : a.floats;
      const dims = a.name === 'value_float' ? [] : [values.length];
      node.attribute = [tensorAttr('value', makeTensor(node.output[0] ?? '', DataType.float32, dims, Float32Array.from(values)))];
    }
  };
  if (model.graph) visit(model.graph);
}

/**
 * Rewrites `model` in place for float16 (see the file header). Tensor payloads are not touched: the
 * result lists the tensors to store as float16 and those kept in float32.
 */
export function rewriteForFp16(model: ModelProto, types: ModelTypes, decisions: Fp16Decisions, options: Fp16RewriteOptions): Fp16RewriteResult {
  const graph = model.graph!;
  const readers = readerIndex(model, types);
  const fp32Nodes = planFp32Nodes(model, types, decisions, options, readers);
  const convert = new Set<TensorProto>();
  const kept: Fp16RewriteResult['kept'] = [];
  let casts = 0;

  const initializerHome = (t: TensorProto): Precision => {
    const name = t.name ?? '';
    const reason = decisions.kept.get(name);
    if (reason) { kept.push({ tensor: t, name, reason }); return 'fp32'; }
    const users = readers.get(name) ?? [];
    if (users.length > 0 && users.every((u) => fp32Nodes.has(u))) {
      kept.push({ tensor: t, name, reason: `read only by float32 ops (${[...new Set(users.map((u) => u.opType))].join(', ')})` });
      return 'fp32';
    }
    convert.add(t);
    return 'fp16';
  };

  const nameAs = (vs: ValueState, p: Precision): string => {
    const have = vs.names[p];
    if (have !== undefined) return have;
    const name = options.uniqueName(`${vs.orig}_${p}`);
    addCast(vs, p, name);
    return name;
  };
  const addCast = (vs: ValueState, p: Precision, outName: string): void => {
    vs.names[p] = outName;
    const cast = makeNode({
      opType: 'Cast', inputs: [vs.names[vs.home]!], outputs: [outName], name: options.uniqueName(`${vs.orig}_cast_${p}`),
      attributes: [intAttr('to', elemType(p))],
    });
    const list = vs.scope.inserts.get(vs.after);
    if (list) list.push(cast);
    else vs.scope.inserts.set(vs.after, [cast]);
    casts++;
  };

  const processGraph = (g: GraphProto, parent: PrecisionScope | null, io: Precision): void => {
    const typeScope = types.scopes.get(g)!;
    const scope = new PrecisionScope(parent);
    const define = (name: string, home: Precision, after: NodeProto | null): ValueState => {
      const vs: ValueState = { orig: name, home, names: { [home]: name }, after, scope };
      scope.values.set(name, vs);
      return vs;
    };
    const initNames = new Set(g.initializer.map((t) => t.name ?? ''));
    const required = new Map<string, Precision>();
    for (const v of g.output) if (v.name && isFloat32(typeScope, v.name)) required.set(v.name, io);

    for (const t of g.initializer) {
      if (t.dataType !== DataType.float32 || !t.name) continue;
      define(t.name, initializerHome(t), null);
    }
    for (const v of g.input) {
      if (!v.name) continue;
      const init = initNames.has(v.name) ? scope.values.get(v.name) : undefined;
      if (init) { setElemType(v, init.home); continue; }
      if (!isFloat32(typeScope, v.name)) continue;
      define(v.name, io, null);
      setElemType(v, io);
    }

    for (const node of g.node) {
      const p: Precision = fp32Nodes.has(node) ? 'fp32' : 'fp16';
      for (const sub of subgraphsOf(node)) processGraph(sub, scope, 'fp16');
      node.input = node.input.map((name) => {
        const vs = name === '' ? undefined : scope.lookup(name);
        return vs ? nameAs(vs, p) : name;
      });
      if (p === 'fp16') retypeFloatProducer(node, typeScope, convert);
      for (let i = 0; i < node.output.length; i++) {
        const o = node.output[i];
        if (!isFloat32(typeScope, o)) continue;
        const want = required.get(o);
        if (want === undefined || want === p) { define(o, p, node); continue; }
        // A graph output in the other precision: the node writes a renamed value, a Cast makes the output.
        const home = options.uniqueName(`${o}_${p}`);
        node.output[i] = home;
        const vs: ValueState = { orig: o, home: p, names: { [p]: home }, after: node, scope };
        scope.values.set(o, vs);
        addCast(vs, want, o);
      }
      if (p === 'fp32' && (node.opType === 'Constant' || node.opType === 'ConstantOfShape')) {
        const t = tensorOfConstant(node);
        if (t && t.dataType === DataType.float32) kept.push({ tensor: t, name: node.output[0] ?? '', reason: fp32Nodes.get(node)! });
      }
    }

    // Declared types follow the precision now bound to each name.
    const precisionOfName = (name: string): Precision | undefined => {
      const vs = scope.values.get(name);
      if (!vs) return undefined;
      return vs.names.fp16 === name ? 'fp16' : vs.names.fp32 === name ? 'fp32' : undefined;
    };
    for (const v of [...g.valueInfo, ...g.output]) {
      const p = v.name ? precisionOfName(v.name) : undefined;
      if (p) setElemType(v, p);
    }

    if (scope.inserts.size > 0) {
      const nodes: NodeProto[] = [...(scope.inserts.get(null) ?? [])];
      for (const n of g.node) nodes.push(n, ...(scope.inserts.get(n) ?? []));
      g.node = nodes;
    }
  };

  processGraph(graph, null, options.keepIoTypes ? 'fp32' : 'fp16');
  const list: Fp32Node[] = [...fp32Nodes].map(([node, reason]) => ({ node, name: node.name ?? node.output[0] ?? '', op: qualifiedOpType(node), reason }));
  return { fp32Nodes: list, convert, kept, casts };
}

/** A node in the float16 region that would produce float32 by an attribute produces float16 instead. */
function retypeFloatProducer(node: NodeProto, types: TypeScope, convert: Set<TensorProto>): void {
  if (node.domain) return;
  const out = node.output[0] ?? '';
  if (!isFloat32(types, out)) return;
  switch (node.opType) {
    case 'Cast': {
      const to = getAttribute(node, 'to');
      if (to && Number(to.i) === DataType.float32) to.i = DataType.float16;
      return;
    }
    case 'Constant': {
      const t = tensorOfConstant(node);
      if (t && t.dataType === DataType.float32) convert.add(t);
      return;
    }
    case 'ConstantOfShape': {
      const a = getAttribute(node, 'value');
      if (!a?.t) node.attribute.push(tensorAttr('value', halfTensorFrom(`${out}_value`, [1], [0])));
      else if (a.t.dataType === DataType.float32) convert.add(a.t);
      return;
    }
    case 'EyeLike': case 'RandomNormal': case 'RandomUniform': case 'RandomNormalLike': case 'RandomUniformLike': case 'Bernoulli': {
      const dtype = getAttribute(node, 'dtype');
      if (dtype) dtype.i = DataType.float16;
      else if (node.opType === 'RandomNormal' || node.opType === 'RandomUniform') node.attribute.push(intAttr('dtype', DataType.float16));
      return;
    }
  }
}
