/**
 * Finding the weights a weight-only quantizer can rewrite: the constant 2-D B input of MatMul and Gemm,
 * and the 2-D data input of Gather (embedding tables). Each candidate that cannot be quantized carries a
 * `skipReason`; the quantizer rewrites only candidates without one.
 */
import type { QuantizableWeight } from '../../../preload/contract.ts';
import { dtypeName } from '../onnx/dtype.ts';
import { attrInt, consumerMap, getAttribute, initializerMap, producerMap, subgraphsOf, toNumber } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto } from '../onnx/proto-types.ts';

const isDefaultDomain = (d: string | undefined): boolean => d === undefined || d === '' || d === 'ai.onnx';

/** A candidate with the objects a rewrite needs. */
export interface WeightCandidate extends QuantizableWeight {
  /** The graph holding the consuming node. */
  graph: GraphProto;
  /** The consuming node. */
  consumer: NodeProto;
  /** Which input of the consumer reads the weight (1 for MatMul/Gemm B, 0 for Gather data). */
  inputIndex: number;
  /** The initializer (when the weight is one, in this graph or an enclosing one). */
  tensor: TensorProto | null;
  /** The graph that owns the initializer. */
  ownerGraph: GraphProto | null;
  /** Gemm with transB = 1: B is stored as [N, K] instead of [K, N]. */
  transB: boolean;
}

interface Scope {
  graph: GraphProto;
  inits: Map<string, TensorProto>;
  producers: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
  inputs: Set<string>;
}

function lookup(scopes: Scope[], name: string): { tensor: TensorProto; scope: Scope; depth: number } | null {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const s = scopes[i];
    if (s.producers.has(name)) return null; // shadowed by a computed value
    const t = s.inits.get(name);
    if (t) return { tensor: t, scope: s, depth: i };
  }
  return null;
}

function producerOf(scopes: Scope[], name: string): NodeProto | undefined {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const p = scopes[i].producers.get(name);
    if (p) return p;
  }
  return undefined;
}

/** float32, float16, bfloat16, float64. */
const FLOAT_WEIGHT_TYPES = new Set([1, 10, 16, 11]);
const LOW_PRECISION = new Set(['int8', 'uint8', 'int4', 'uint4', 'int2', 'uint2', 'float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz', 'float4e2m1']);

const nodeLabel = (n: NodeProto): string => n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`;

/**
 * Why a constant 2-D weight cannot be quantized, or undefined when it can. `self` is the consumer as
 * the owner graph sees it: the consumer itself, or the If/Loop/Scan node whose subgraph holds it.
 */
function reasonFor(t: TensorProto, scope: Scope, consumer: NodeProto, self: NodeProto): string | undefined {
  const name = t.name ?? '';
  if (t.dims.length !== 2) return `weight is ${t.dims.length}-D; only 2-D weights are quantized`;
  if (!FLOAT_WEIGHT_TYPES.has(t.dataType ?? 0)) {
    const dt = dtypeName(t.dataType);
    return LOW_PRECISION.has(dt) ? `already quantized (${dt})` : `not a float tensor (${dt})`;
  }
  if (scope.inputs.has(name)) return 'the weight is also a graph input, so it can be replaced at run time';
  const users = (scope.consumers.get(name) ?? []).filter((n) => n !== self);
  if (users.length > 0) {
    const tied = users.some((u) => u.opType === 'Transpose') || consumer.opType === 'Transpose';
    return `used by more than one node (${[consumer, ...users].map(nodeLabel).join(', ')})${tied ? ': tied embeddings' : ''}`;
  }
  return undefined;
}

const PASS_THROUGH = new Set(['Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity']);

/** Whether Gather indices come from a graph input (token ids), possibly through casts and reshapes. */
function indexedByGraphInput(scopes: Scope[], name: string): boolean {
  for (let hops = 0; hops < 8; hops++) {
    if (scopes.some((s) => s.inputs.has(name) && !s.inits.has(name))) return true;
    const p = producerOf(scopes, name);
    if (!p || !PASS_THROUGH.has(p.opType ?? '')) return false;
    name = p.input[0] ?? '';
  }
  return false;
}

/** `holders`: for each enclosing scope, the node of that scope's graph that holds the current subgraph. */
function candidatesInGraph(graph: GraphProto, outer: Scope[], holders: NodeProto[], out: WeightCandidate[]): void {
  const scope: Scope = {
    graph,
    inits: initializerMap(graph),
    producers: producerMap(graph),
    consumers: consumerMap(graph),
    inputs: new Set(graph.input.map((v) => v.name ?? '')),
  };
  const scopes = [...outer, scope];

  for (const node of graph.node) {
    for (const sub of subgraphsOf(node)) candidatesInGraph(sub, scopes, [...holders, node], out);
    if (!isDefaultDomain(node.domain)) continue;
    const op = node.opType;
    if (op !== 'MatMul' && op !== 'Gemm' && op !== 'Gather') continue;
    const inputIndex = op === 'Gather' ? 0 : 1;
    const wName = node.input[inputIndex];
    if (!wName) continue;
    const transB = op === 'Gemm' && attrInt(node, 'transB', 0) === 1;
    const base = { node: nodeLabel(node), op, graph, consumer: node, inputIndex, transB } as const;

    const found = lookup(scopes, wName);
    if (found) {
      const t = found.tensor;
      const self = found.depth === scopes.length - 1 ? node : holders[found.depth];
      let skipReason = reasonFor(t, found.scope, node, self);
      if (!skipReason && op === 'Gather') {
        if (attrInt(node, 'axis', 0) !== 0) skipReason = `Gather along axis ${attrInt(node, 'axis', 0)}, not an embedding lookup`;
        else if (!indexedByGraphInput(scopes, node.input[1] ?? '')) skipReason = 'a table indexed by computed positions, not by token ids (for example rotary cos/sin)';
      }
      out.push({
        ...base, name: t.name ?? wName, shape: t.dims.map((d) => toNumber(d)), dtype: dtypeName(t.dataType),
        tensor: t, ownerGraph: found.scope.graph, ...(skipReason ? { skipReason } : {}),
      });
      continue;
    }

    // Not an initializer: a constant reached through another node is still reported, with the reason.
    const producer = producerOf(scopes, wName);
    if (!producer || !isDefaultDomain(producer.domain)) continue;
    if (producer.opType === 'Constant') {
      const value = getAttribute(producer, 'value')?.t;
      if (!value) continue;
      out.push({
        ...base, name: wName, shape: value.dims.map((d) => toNumber(d)), dtype: dtypeName(value.dataType),
        tensor: null, ownerGraph: null, skipReason: 'stored in a Constant node, not an initializer',
      });
      continue;
    }
    const via = producer.opType;
    if (via !== 'Transpose' && via !== 'DequantizeLinear' && via !== 'Cast' && via !== 'Identity') continue;
    const src = lookup(scopes, producer.input[0] ?? '');
    if (!src) continue;
    const t = src.tensor;
    let skipReason: string;
    if (via === 'DequantizeLinear') skipReason = `already quantized (DequantizeLinear of ${dtypeName(t.dataType)})`;
    else if (via === 'Transpose') {
      const others = (src.scope.consumers.get(t.name ?? '') ?? []).filter((n) => n !== producer);
      skipReason = others.length > 0
        ? `reached through a Transpose of '${t.name}', which is also used by ${others.map(nodeLabel).join(', ')} (tied embeddings)`
        : `reached through a Transpose of '${t.name}'`;
    } else skipReason = `reached through a ${via} of '${t.name}'`;
    out.push({
      ...base, name: t.name ?? '', shape: t.dims.map((d) => toNumber(d)), dtype: dtypeName(t.dataType),
      tensor: t, ownerGraph: src.scope.graph, skipReason,
    });
  }
}

/** All MatMul/Gemm/Gather weight candidates of the model, in graph order (subgraphs included). */
export function findWeightCandidates(model: ModelProto): WeightCandidate[] {
  const out: WeightCandidate[] = [];
  if (model.graph) candidatesInGraph(model.graph, [], [], out);
  return out;
}

/** The contract's view of the candidates (plain data, no graph objects). */
export function toQuantizableWeights(list: WeightCandidate[]): QuantizableWeight[] {
  return list.map((c) => {
    const w: QuantizableWeight = { name: c.name, node: c.node, op: c.op, shape: c.shape, dtype: c.dtype };
    if (c.skipReason) w.skipReason = c.skipReason;
    return w;
  });
}
