/**
 * Graph views and rewrite helpers: walking every graph (subgraphs of If/Loop/Scan included), initializer
 * lookup, producer/consumer maps, "node in → nodes out" replacement, sweeping unused initializers,
 * opset bookkeeping, predictable fresh names, and small builders for nodes and attributes.
 */
import { WhittleError } from '../errors.ts';
import { AttributeType, type AttributeProto, type GraphProto, type Int64, type ModelProto, type NodeProto, type TensorProto } from './proto-types.ts';
import { decodeUtf8, encodeUtf8 } from './wire.ts';

/** An int64 field as a number (bigints beyond 2^53 are clamped to ±MAX_SAFE_INTEGER-ish via Number()). */
export function toNumber(v: Int64 | undefined, fallback = 0): number {
  if (v === undefined) return fallback;
  return typeof v === 'bigint' ? Number(v) : v;
}

// ── walking ──────────────────────────────────────────────────────────────────────────────────────────

/** The graphs held in a node's attributes (If branches, Loop/Scan bodies). */
export function* subgraphsOf(node: NodeProto): Generator<GraphProto> {
  for (const a of node.attribute) {
    if (a.g) yield a.g;
    for (const g of a.graphs) yield g;
  }
}

/** A graph and, for subgraphs, the node that holds it and the graph around that node. */
export interface GraphVisit { graph: GraphProto; parent: { node: NodeProto; graph: GraphProto } | null; depth: number }

function* visitGraph(graph: GraphProto, parent: GraphVisit['parent'], depth: number): Generator<GraphVisit> {
  yield { graph, parent, depth };
  for (const node of graph.node) {
    for (const sub of subgraphsOf(node)) yield* visitGraph(sub, { node, graph }, depth + 1);
  }
}

/** The main graph, then every subgraph (depth first), then training graphs. */
export function* allGraphs(model: ModelProto): Generator<GraphVisit> {
  if (model.graph) yield* visitGraph(model.graph, null, 0);
  for (const t of model.trainingInfo) {
    if (t.initialization) yield* visitGraph(t.initialization, null, 0);
    if (t.algorithm) yield* visitGraph(t.algorithm, null, 0);
  }
}

/** Every node of every graph (including training graphs and function bodies' nodes). */
export function* allNodes(model: ModelProto): Generator<{ node: NodeProto; graph: GraphProto | null }> {
  for (const { graph } of allGraphs(model)) for (const node of graph.node) yield { node, graph };
  for (const f of model.functions) for (const node of f.node) yield { node, graph: null };
}

/** Every dense tensor in the model: initializers of every graph and tensor attributes of every node. */
export function allTensors(model: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  for (const { graph } of allGraphs(model)) out.push(...graph.initializer);
  for (const { node } of allNodes(model)) {
    for (const a of node.attribute) {
      if (a.t) out.push(a.t);
      out.push(...a.tensors);
    }
  }
  return out;
}

// ── lookups ──────────────────────────────────────────────────────────────────────────────────────────

export function initializerMap(graph: GraphProto): Map<string, TensorProto> {
  const m = new Map<string, TensorProto>();
  for (const t of graph.initializer) if (t.name !== undefined) m.set(t.name, t);
  return m;
}

export function findInitializer(graph: GraphProto, name: string): TensorProto | undefined {
  return graph.initializer.find((t) => t.name === name);
}

/** Output name → the node producing it. */
export function producerMap(graph: GraphProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) if (o !== '') m.set(o, n);
  return m;
}

/**
 * Names a subgraph reads from its enclosing scopes: used by its nodes (or nested subgraphs) but defined
 * neither by its inputs, its initializers nor its nodes' outputs.
 */
export function outerReferences(graph: GraphProto): Set<string> {
  const local = new Set<string>();
  for (const v of graph.input) if (v.name) local.add(v.name);
  for (const t of graph.initializer) if (t.name) local.add(t.name);
  for (const s of graph.sparseInitializer) if (s.values?.name) local.add(s.values.name);
  for (const n of graph.node) for (const o of n.output) if (o) local.add(o);
  const outer = new Set<string>();
  const use = (name: string): void => { if (name !== '' && !local.has(name)) outer.add(name); };
  for (const n of graph.node) {
    for (const i of n.input) use(i);
    for (const sub of subgraphsOf(n)) for (const r of outerReferences(sub)) use(r);
  }
  for (const o of graph.output) if (o.name) use(o.name);
  return outer;
}

/** Names a node reads: its inputs plus what its subgraphs read from outside. */
export function nodeReads(node: NodeProto): string[] {
  const names = node.input.filter((i) => i !== '');
  for (const sub of subgraphsOf(node)) for (const r of outerReferences(sub)) names.push(r);
  return names;
}

/**
 * Value name → nodes of `graph` reading it. A value read inside a subgraph counts as read by the node
 * holding that subgraph (an If/Loop/Scan), since that is where the rewrite would have to look.
 */
export function consumerMap(graph: GraphProto): Map<string, NodeProto[]> {
  const m = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const name of new Set(nodeReads(n))) {
      const list = m.get(name);
      if (list) list.push(n);
      else m.set(name, [n]);
    }
  }
  return m;
}

// ── rewriting ────────────────────────────────────────────────────────────────────────────────────────

/** Replaces `node` with `newNodes` at the same position (keeps the topological order when the new nodes
 *  are themselves in order). Passing `[node]` is a no-op. */
export function replaceNode(graph: GraphProto, node: NodeProto, newNodes: NodeProto[]): void {
  const i = graph.node.indexOf(node);
  if (i < 0) throw new WhittleError('INTERNAL', `replaceNode: node '${node.name ?? node.opType}' is not in graph '${graph.name ?? ''}'.`);
  graph.node.splice(i, 1, ...newNodes);
}

/**
 * Removes initializers no node reads (subgraphs included, recursively: a subgraph may read an outer
 * initializer) and that are not graph outputs. Graph inputs named like a removed initializer (old IR<4
 * models list initializers as inputs) are removed too. Returns the removed names.
 */
export function sweepUnusedInitializers(graph: GraphProto): string[] {
  const removed: string[] = [];
  for (const n of graph.node) for (const sub of subgraphsOf(n)) removed.push(...sweepUnusedInitializers(sub));
  const used = new Set<string>();
  for (const n of graph.node) for (const r of nodeReads(n)) used.add(r);
  for (const o of graph.output) if (o.name) used.add(o.name);
  const gone = new Set<string>();
  graph.initializer = graph.initializer.filter((t) => {
    if (t.name !== undefined && used.has(t.name)) return true;
    gone.add(t.name ?? '');
    return false;
  });
  if (gone.size > 0) graph.input = graph.input.filter((v) => !gone.has(v.name ?? ''));
  removed.push(...gone);
  return removed;
}

const isDefaultDomain = (d: string | undefined): boolean => d === undefined || d === '' || d === 'ai.onnx';

/** The imported version of `domain` ('' / 'ai.onnx' = the default ONNX domain), or undefined. */
export function opsetVersion(model: ModelProto, domain: string): number | undefined {
  const want = isDefaultDomain(domain);
  const o = model.opsetImport.find((x) => (want ? isDefaultDomain(x.domain) : x.domain === domain));
  return o ? toNumber(o.version) : undefined;
}

/** Makes sure `domain` is imported at `version` or later (e.g. ('com.microsoft', 1) for MatMulNBits).
 *  Raises a lower import; returns the version now imported. */
export function ensureOpset(model: ModelProto, domain: string, version: number): number {
  const want = isDefaultDomain(domain);
  const o = model.opsetImport.find((x) => (want ? isDefaultDomain(x.domain) : x.domain === domain));
  if (!o) {
    model.opsetImport.push({ domain: want ? '' : domain, version });
    return version;
  }
  if (toNumber(o.version) < version) o.version = version;
  return toNumber(o.version);
}

/**
 * Fresh names that collide with nothing in the model: `fresh('w_Q4')` returns 'w_Q4' when free, else
 * 'w_Q4_1', 'w_Q4_2', …, so derived names stay predictable.
 */
export class NameScope {
  private readonly taken = new Set<string>();

  static fromModel(model: ModelProto): NameScope {
    const s = new NameScope();
    for (const { graph } of allGraphs(model)) {
      for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name) s.taken.add(v.name);
      for (const t of graph.initializer) if (t.name) s.taken.add(t.name);
      for (const n of graph.node) {
        if (n.name) s.taken.add(n.name);
        for (const x of [...n.input, ...n.output]) if (x) s.taken.add(x);
      }
    }
    return s;
  }

  has(name: string): boolean {
    return this.taken.has(name);
  }

  /** Marks `name` as used. */
  add(name: string): void {
    this.taken.add(name);
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }
}

// ── attributes and nodes ─────────────────────────────────────────────────────────────────────────────

export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = getAttribute(node, name);
  return a?.i !== undefined ? toNumber(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  return getAttribute(node, name)?.f ?? fallback;
}

export function attrString(node: NodeProto, name: string, fallback: string): string {
  const s = getAttribute(node, name)?.s;
  return s !== undefined ? decodeUtf8(s) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = getAttribute(node, name);
  return a ? a.ints.map((v) => toNumber(v)) : undefined;
}

function emptyAttribute(name: string, type: number): AttributeProto {
  return { name, type, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
}

export function intAttr(name: string, value: Int64): AttributeProto {
  return { ...emptyAttribute(name, AttributeType.INT), i: value };
}

export function floatAttr(name: string, value: number): AttributeProto {
  return { ...emptyAttribute(name, AttributeType.FLOAT), f: value };
}

export function stringAttr(name: string, value: string): AttributeProto {
  return { ...emptyAttribute(name, AttributeType.STRING), s: encodeUtf8(value) };
}

export function intsAttr(name: string, values: Int64[]): AttributeProto {
  return { ...emptyAttribute(name, AttributeType.INTS), ints: [...values] };
}

export function floatsAttr(name: string, values: number[]): AttributeProto {
  return { ...emptyAttribute(name, AttributeType.FLOATS), floats: [...values] };
}

export function tensorAttr(name: string, t: TensorProto): AttributeProto {
  return { ...emptyAttribute(name, AttributeType.TENSOR), t };
}

export interface NodeSpec {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: AttributeProto[];
}

export function makeNode(spec: NodeSpec): NodeProto {
  const n: NodeProto = {
    input: [...spec.inputs], output: [...spec.outputs], opType: spec.opType, attribute: spec.attributes ?? [],
    metadataProps: [], deviceConfigurations: [],
  };
  if (spec.name !== undefined) n.name = spec.name;
  if (spec.domain !== undefined && spec.domain !== '') n.domain = spec.domain;
  return n;
}

/** 'MatMul' for the default domain, 'com.microsoft.MatMulNBits' otherwise. */
export function qualifiedOpType(node: NodeProto): string {
  return isDefaultDomain(node.domain) ? (node.opType ?? '') : `${node.domain}.${node.opType ?? ''}`;
}
