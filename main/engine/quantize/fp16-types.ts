/**
 * Element types of every value in a model, as the model stands (before any conversion): what the float16
 * pass needs to know to decide which inputs of a float32-only node are float32 tensors needing a Cast.
 *
 * Seeds: graph inputs, initializers, value_info and graph outputs as declared, Constant tensors.
 * Then each node in order derives its outputs' types from its inputs' by the operator's type constraints
 * (the ONNX operator specs, https://onnx.ai/onnx/operators/, and onnxruntime's contrib op schemas,
 * https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md). A declared value_info wins
 * over an inferred type. Subgraphs (If/Loop/Scan bodies) are typed in their own scope that sees the
 * enclosing one; a control-flow node's outputs take its body's output types.
 */
import { DataType } from '../onnx/dtype.ts';
import { attrInt, getAttribute, subgraphsOf } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, ValueInfoProto } from '../onnx/proto-types.ts';

/** Element types of one graph's values; lookups fall through to the enclosing graph. */
export class TypeScope {
  readonly graph: GraphProto;
  readonly parent: TypeScope | null;
  private readonly types = new Map<string, number>();

  constructor(graph: GraphProto, parent: TypeScope | null) {
    this.graph = graph;
    this.parent = parent;
  }

  get(name: string): number | undefined {
    if (name === '') return undefined;
    return this.types.get(name) ?? this.parent?.get(name);
  }

  /** Whether `name` is defined in this graph (not an enclosing one). */
  definesLocally(name: string): boolean {
    return this.types.has(name);
  }

  set(name: string, type: number | undefined): void {
    if (name !== '' && type !== undefined && type !== 0) this.types.set(name, type);
  }
}

export interface ModelTypes {
  /** The scope of each graph of the model (main graph and every subgraph). */
  scopes: Map<GraphProto, TypeScope>;
  main: TypeScope;
}

const BOOL_OUTPUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OUTPUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero', 'NonMaxSuppression']);
const INT32_OUTPUT = new Set(['MatMulInteger', 'ConvInteger']);

const elemTypeOf = (v: ValueInfoProto): number | undefined => v.type?.tensorType?.elemType;

/** The type a Constant node produces, from whichever value attribute it carries. */
function constantType(node: NodeProto): number | undefined {
  for (const a of node.attribute) {
    switch (a.name) {
      case 'value': return a.t?.dataType;
      case 'sparse_value': return a.sparseTensor?.values?.dataType;
      case 'value_float': case 'value_floats': return DataType.float32;
      case 'value_int': case 'value_ints': return DataType.int64;
      case 'value_string': case 'value_strings': return DataType.string;
    }
  }
  return undefined;
}

function bodyOutputTypes(body: GraphProto | undefined, scopes: Map<GraphProto, TypeScope>, skip: number): (number | undefined)[] {
  if (!body) return [];
  const scope = scopes.get(body);
  return body.output.slice(skip).map((v) => elemTypeOf(v) ?? scope?.get(v.name ?? ''));
}

/** Output element types of `node` given its input types (undefined where unknown). */
function outputTypes(node: NodeProto, inputs: (number | undefined)[], scopes: Map<GraphProto, TypeScope>): (number | undefined)[] {
  const op = node.opType ?? '';
  const contrib = node.domain === 'com.microsoft';
  const all = (t: number | undefined): (number | undefined)[] => node.output.map(() => t);
  if (!contrib) {
    if (BOOL_OUTPUT.has(op)) return all(DataType.bool);
    if (INT64_OUTPUT.has(op)) return all(DataType.int64);
    if (INT32_OUTPUT.has(op)) return all(DataType.int32);
    switch (op) {
      case 'Cast': return all(attrInt(node, 'to', 0));
      case 'CastLike': return all(inputs[1]);
      case 'Constant': return all(constantType(node));
      case 'ConstantOfShape': return all(getAttribute(node, 'value')?.t?.dataType ?? DataType.float32);
      case 'EyeLike': case 'RandomNormalLike': case 'RandomUniformLike': case 'Bernoulli':
        return all(getAttribute(node, 'dtype') ? attrInt(node, 'dtype', 0) : inputs[0]);
      case 'RandomNormal': case 'RandomUniform': return all(attrInt(node, 'dtype', DataType.float32));
      case 'Multinomial': return all(attrInt(node, 'dtype', DataType.int32));
      case 'TopK': return [inputs[0], DataType.int64];
      case 'Unique': return [inputs[0], DataType.int64, DataType.int64, DataType.int64];
      case 'DynamicQuantizeLinear': return [DataType.uint8, DataType.float32, DataType.uint8];
      case 'QuantizeLinear': return all(inputs[2] ?? (getAttribute(node, 'output_dtype') ? attrInt(node, 'output_dtype', 0) : DataType.uint8));
      case 'DequantizeLinear': return all(inputs[1]);
      case 'QLinearMatMul': case 'QLinearConv': return all(inputs[7]);
      case 'Where': return all(inputs[1] ?? inputs[2]);
      case 'OneHot': return all(inputs[2]);
      // LayerNormalization's Mean and InvStdDev are of stash_type (float32 by default).
      case 'LayerNormalization': return [inputs[0], DataType.float32, DataType.float32];
      case 'If': return bodyOutputTypes(getAttribute(node, 'then_branch')?.g, scopes, 0);
      case 'Loop': return bodyOutputTypes(getAttribute(node, 'body')?.g, scopes, 1);
      case 'Scan': return bodyOutputTypes(getAttribute(node, 'body')?.g, scopes, 0);
    }
    // onnxruntime registers these normalisations in the default domain; their statistics are float32.
    if (op === 'SimplifiedLayerNormalization') return [inputs[0], DataType.float32];
    return all(inputs[0]);
  }
  switch (op) {
    // word_embedding (input 2) gives the float type; mask_index is int32.
    case 'EmbedLayerNormalization': return [inputs[2], DataType.int32, inputs[2]];
    case 'SkipLayerNormalization': case 'SkipSimplifiedLayerNormalization': return [inputs[0], DataType.float32, DataType.float32, inputs[0]];
    case 'GatherBlockQuantized': return all(inputs[2]);
    case 'DynamicQuantizeMatMul': case 'MatMulIntegerToFloat': return all(inputs[2]);
    case 'DynamicQuantizeLSTM': return all(inputs[0]);
  }
  return all(inputs[0]);
}

function typeGraph(graph: GraphProto, parent: TypeScope | null, scopes: Map<GraphProto, TypeScope>): TypeScope {
  const scope = new TypeScope(graph, parent);
  scopes.set(graph, scope);
  for (const v of graph.input) scope.set(v.name ?? '', elemTypeOf(v));
  for (const t of graph.initializer) scope.set(t.name ?? '', t.dataType);
  for (const s of graph.sparseInitializer) scope.set(s.values?.name ?? '', s.values?.dataType);
  const declared = new Map<string, number>();
  for (const v of [...graph.valueInfo, ...graph.output]) {
    const t = elemTypeOf(v);
    if (v.name && t) declared.set(v.name, t);
  }
  for (const node of graph.node) {
    // Bodies first: they may read values defined so far, and the node's outputs come from them.
    for (const sub of subgraphsOf(node)) typeGraph(sub, scope, scopes);
    const inferred = outputTypes(node, node.input.map((i) => scope.get(i)), scopes);
    node.output.forEach((o, i) => scope.set(o, declared.get(o) ?? inferred[i]));
  }
  return scope;
}

/** Infers the element type of every value of `model` (see the file header). */
export function inferModelTypes(model: ModelProto): ModelTypes {
  const scopes = new Map<GraphProto, TypeScope>();
  if (!model.graph) throw new Error('inferModelTypes: the model has no graph');
  const main = typeGraph(model.graph, null, scopes);
  return { scopes, main };
}
