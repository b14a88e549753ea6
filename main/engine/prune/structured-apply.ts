/**
 * Structured pruning, the apply (STYLE "Graph surgery"): carries out a plan (structured-plan.ts) on the
 * ONNX graph in memory, node in → nodes out, so the model really gets smaller and faster.
 *
 * Weights are MatMul B operands W [K, N] (y = x·W): a part's outputs are columns, its inputs rows.
 *   heads (KV group g of size G, head size d): q columns [g·G·d, (g+1)·G·d), k and v columns [g·d, (g+1)·d)
 *     and their bias entries, o rows [g·G·d, (g+1)·G·d). Shape constants (Reshape/Expand/Concat),
 *     num_heads / kv_num_heads and the cache input/output shapes are rewritten to the new counts.
 *   neurons j: gate and up column j (and bias entry), down row j.
 *   blocks: the residual stream passes the block unchanged: each of its two joins drops its branch (an
 *     Add becomes its stream input; a Skip*LayerNormalization becomes the plain normalization of its
 *     stream input, and its sum output the stream input), the block's nodes become unread and go, its
 *     cache inputs and outputs go, and the remaining caches are renumbered 0…n−1.
 * Bytes are sliced as they are stored (float32, float16, bfloat16 alike); new tensors go to the spool.
 * Value infos of the values whose shapes change are dropped (onnxruntime infers them again); unread
 * initializers are swept.
 */
import { WhittleError } from '../errors.ts';
import { DataType } from '../onnx/dtype.ts';
import { attrFloat, consumerMap, floatAttr, getAttribute, intAttr, makeNode, NameScope, producerMap, sweepUnusedInitializers, toNumber } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { elementCount, tensorByteLength } from '../onnx/tensor-data.ts';
import type { ArchitectureBlock, ArchitectureMap, HeadCountNode } from '../rewrite/architecture.ts';
import type { RewriteScope } from '../rewrite/write-folder.ts';
import type { StructuredPlan } from './structured-plan.ts';

export interface StructuredApplyResult {
  /** Weights rewritten, with their new shapes. */
  resized: { name: string; from: number[]; to: number[] }[];
  /** Blocks bypassed (layers). */
  removedBlocks: number[];
  /** Per block after surgery: heads, KV heads, MLP width (null where unchanged or gone). */
  blocks: { block: number; heads: number | null; kvHeads: number | null; intermediate: number | null }[];
  /** Cache graph inputs / outputs removed. */
  removedCache: string[];
  sweptInitializers: number;
}

const nodeLabel = (n: NodeProto): string => n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`;

/** Kept indices of `n` parts of `width` each, when the parts in `remove` go. */
export function keptIndices(parts: number, width: number, remove: readonly number[]): number[] {
  const gone = new Set(remove);
  const out: number[] = [];
  for (let p = 0; p < parts; p++) if (!gone.has(p)) for (let i = 0; i < width; i++) out.push(p * width + i);
  return out;
}

/** Columns `cols` of a row-major [rows, n] matrix of `elem`-byte elements. */
export function sliceColumns(bytes: Uint8Array, rows: number, n: number, elem: number, cols: readonly number[]): Uint8Array {
  const out = new Uint8Array(rows * cols.length * elem);
  for (let r = 0; r < rows; r++) {
    const src = r * n * elem;
    const dst = r * cols.length * elem;
    // Runs of consecutive columns copy in one go.
    for (let i = 0; i < cols.length;) {
      let j = i + 1;
      while (j < cols.length && cols[j] === cols[j - 1] + 1) j++;
      out.set(bytes.subarray(src + cols[i] * elem, src + (cols[j - 1] + 1) * elem), dst + i * elem);
      i = j;
    }
  }
  return out;
}

/** Rows `rows` of a row-major [m, n] matrix of `elem`-byte elements. */
export function sliceRows(bytes: Uint8Array, n: number, elem: number, rows: readonly number[]): Uint8Array {
  const out = new Uint8Array(rows.length * n * elem);
  rows.forEach((r, i) => out.set(bytes.subarray(r * n * elem, (r + 1) * n * elem), i * n * elem));
  return out;
}

class Surgery {
  readonly graph: GraphProto;
  readonly inits: Map<string, TensorProto>;
  readonly names: NameScope;
  readonly result: StructuredApplyResult = { resized: [], removedBlocks: [], blocks: [], removedCache: [], sweptInitializers: 0 };
  /** Values whose declared shapes no longer hold. */
  readonly staleShapes = new Set<string>();

  readonly scope: Pick<RewriteScope, 'reader' | 'spool'>;

  constructor(model: ModelProto, scope: Pick<RewriteScope, 'reader' | 'spool'>) {
    this.scope = scope;
    this.graph = model.graph!;
    this.inits = new Map(this.graph.initializer.map((t) => [t.name ?? '', t]));
    this.names = NameScope.fromModel(model);
  }

  tensor(name: string): TensorProto {
    const t = this.inits.get(name);
    if (!t) throw new WhittleError('UNSUPPORTED_MODEL', `Weight '${name}' is not an initializer of the main graph, so it cannot be resized.`, { weight: name });
    return t;
  }

  nodeByLabel(label: string): NodeProto {
    const n = this.graph.node.find((x) => nodeLabel(x) === label);
    if (!n) throw new WhittleError('INTERNAL', `Node '${label}' of the architecture map is not in the graph.`);
    return n;
  }

  /** The MatMul/Gemm reading `weight` (directly or through a Cast/Transpose). */
  projectionOf(weight: string): NodeProto {
    const consumers = consumerMap(this.graph);
    let values = [weight];
    for (let hops = 0; hops < 3; hops++) {
      const next: string[] = [];
      for (const v of values) {
        for (const r of consumers.get(v) ?? []) {
          if ((r.opType === 'MatMul' || r.opType === 'Gemm') && r.input[1] === v) return r;
          if (r.opType === 'Cast' || r.opType === 'Transpose' || r.opType === 'Identity') next.push(r.output[0]);
        }
      }
      values = next;
    }
    throw new WhittleError('UNSUPPORTED_MODEL', `No MatMul reads the weight '${weight}'.`, { weight });
  }

  /** Refuses weights read by more than one node (shared across blocks): resizing one would break the others. */
  checkUnshared(names: (string | null)[]): void {
    const consumers = consumerMap(this.graph);
    for (const name of names) {
      if (!name) continue;
      const readers = consumers.get(name) ?? [];
      if (readers.length > 1) {
        throw new WhittleError('UNSUPPORTED_MODEL', `Weight '${name}' is shared by ${readers.length} nodes (${readers.slice(0, 3).map(nodeLabel).join(', ')}); structured pruning needs every block to have its own weights.`, { weight: name });
      }
    }
  }

  /** Replaces a 2-D weight by the given rows or columns (kept indices). */
  async resize(name: string, keep: { rows?: number[]; cols?: number[] }): Promise<void> {
    const t = this.tensor(name);
    const dims = t.dims.map((d) => toNumber(d));
    const count = elementCount(t.dims);
    const elem = tensorByteLength(t) / count;
    if (!Number.isInteger(elem) || elem < 1) throw new WhittleError('UNSUPPORTED_MODEL', `Weight '${name}' is stored packed (${tensorByteLength(t)} bytes for ${count} elements); structured pruning needs unpacked float weights. Prune before quantizing.`, { weight: name });
    const bytes = await this.scope.reader.read(t);
    const [rows, cols] = dims.length === 1 ? [1, dims[0]] : [dims[0], dims[1]];
    let out: Uint8Array;
    let to: number[];
    if (keep.cols) {
      out = sliceColumns(bytes, rows, cols, elem, keep.cols);
      to = dims.length === 1 ? [keep.cols.length] : [rows, keep.cols.length];
    } else {
      out = sliceRows(bytes, cols, elem, keep.rows!);
      to = [keep.rows!.length, cols];
    }
    t.data = await this.scope.spool.append(out);
    t.dims = to;
    t.externalData = [];
    t.dataLocation = undefined;
    this.result.resized.push({ name, from: dims, to });
  }

  /** Values downstream of `starts` up to (not through) the `stop` nodes: their shapes change with the cut. */
  markStale(starts: string[], stop: Set<NodeProto>): void {
    const consumers = consumerMap(this.graph);
    const queue = [...starts];
    while (queue.length) {
      const v = queue.shift()!;
      if (this.staleShapes.has(v)) continue;
      this.staleShapes.add(v);
      for (const r of consumers.get(v) ?? []) if (!stop.has(r)) queue.push(...r.output.filter((x) => x));
    }
  }

  /** Graph outputs reached from the block's k and v projections without passing o: its cache outputs. */
  cacheOutputs(b: ArchitectureBlock): string[] {
    const a = b.attention;
    const consumers = consumerMap(this.graph);
    const stop = a.o ? this.projectionOf(a.o) : null;
    const outputs = new Set(this.graph.output.map((o) => o.name ?? ''));
    const found: string[] = [];
    const seen = new Set<string>();
    const queue: string[] = [];
    for (const w of [a.k, a.v, a.qkv]) {
      const p = w ? (consumerMap(this.graph).get(w) ?? []).find((r) => r.opType === 'MatMul' || r.opType === 'Gemm') : undefined;
      if (p) queue.push(p.output[0]);
    }
    // A com.microsoft attention op: its outputs after the first are the cache.
    if (a.nodes.attention) queue.push(...this.nodeByLabel(a.nodes.attention).output.slice(1).filter((x) => x));
    for (const c of [a.nodes.cache.key, a.nodes.cache.value, a.nodes.cache.kv]) if (c) queue.push(c);
    while (queue.length) {
      const v = queue.shift()!;
      if (seen.has(v)) continue;
      seen.add(v);
      if (outputs.has(v) && !found.includes(v)) found.push(v);
      for (const r of consumers.get(v) ?? []) {
        if (r === stop || r.opType === 'Shape') continue;
        // Through the attention itself only to its cache outputs (not to the attention output → o → …).
        queue.push(...r.output.filter((x) => x));
      }
    }
    return found.filter((o) => o !== '');
  }

  /** Writes a shape constant with new values: in place when only `node` reads it, else a copy for `node`. */
  setIntConstant(node: NodeProto, input: string, values: number[]): void {
    const consumers = consumerMap(this.graph);
    const readers = consumers.get(input) ?? [];
    const init = this.inits.get(input);
    const dataType = init?.dataType === DataType.int32 ? DataType.int32 : DataType.int64;
    const bytes = dataType === DataType.int32 ? new Uint8Array(Int32Array.from(values).buffer) : new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
    const dims = init ? init.dims : [values.length];
    if (init && readers.length === 1 && !this.graph.output.some((o) => o.name === input)) {
      init.data = { kind: 'bytes', bytes };
      init.externalData = [];
      init.dataLocation = undefined;
      return;
    }
    const name = this.names.fresh(`${input}_pruned`);
    const t: TensorProto = { name, dims, dataType, data: { kind: 'bytes', bytes }, stringData: [], externalData: [], metadataProps: [] };
    this.graph.initializer.push(t);
    this.inits.set(name, t);
    node.input = node.input.map((x) => (x === input ? name : x));
  }

  /** Rewrites the reads of `from` (node inputs and graph outputs) to `to`. */
  rewire(from: string, to: string, except?: NodeProto): void {
    for (const n of this.graph.node) if (n !== except) n.input = n.input.map((x) => (x === from ? to : x));
    for (const o of this.graph.output) {
      if (o.name !== from) continue;
      // A graph output keeps its name: an Identity carries the stream to it.
      const producer = producerMap(this.graph).get(from);
      if (producer) producer.output = producer.output.map((x) => (x === from ? this.names.fresh(`${from}_bypassed`) : x));
      this.graph.node.push(makeNode({ opType: 'Identity', inputs: [to], outputs: [from], name: this.names.fresh(`${from}_bypass`) }));
    }
  }
}

/** The shape values with the head counts replaced (see HeadCountNode; positions 1–2 hold the count for q/k/v paths). */
export function rewriteHeadValues(hc: HeadCountNode, values: number[], c: { heads: number; kvHeads: number; headSize: number; newHeads: number; newKv: number }): number[] {
  const out = [...values];
  if (hc.on === 'o') return out.map((v) => (v === c.heads * c.headSize ? c.newHeads * c.headSize : v));
  if (hc.op === 'Concat' || hc.op === 'Expand' || hc.op === 'Tile') {
    // [kv_heads, groups] (or a full target shape): the KV count, or the query count after the repeat.
    const i = out.findIndex((v) => v === c.kvHeads || v === c.heads);
    if (i >= 0) out[i] = out[i] === c.kvHeads ? c.newKv : c.newHeads;
    return out;
  }
  for (const i of [1, 2]) {
    if (hc.on === 'q' && out[i] === c.heads) { out[i] = c.newHeads; return out; }
    if (hc.on !== 'q' && (out[i] === c.kvHeads || out[i] === c.heads)) { out[i] = out[i] === c.kvHeads ? c.newKv : c.newHeads; return out; }
  }
  return out;
}

function setDim(v: ValueInfoProto | undefined, axis: number, value: number): void {
  const dim = v?.type?.tensorType?.shape?.dim?.[axis];
  if (dim && dim.dimValue !== undefined) dim.dimValue = value;
}

async function cutHeads(s: Surgery, map: ArchitectureMap, plan: StructuredPlan): Promise<void> {
  const G = plan.groupSize;
  s.checkUnshared(plan.cuts.flatMap((c) => { const a = map.blocks[c.block].attention; return [a.q, a.k, a.v, a.o, a.biases.q, a.biases.k, a.biases.v]; }));
  for (const cut of plan.cuts) {
    const b = map.blocks[cut.block];
    const a = b.attention;
    const d = a.headSize!, H = a.heads!, KV = a.kvHeads!;
    const qCols = keptIndices(KV, G * d, cut.remove);
    const kvCols = keptIndices(KV, d, cut.remove);
    const newKv = KV - cut.remove.length;
    const newHeads = newKv * G;
    await s.resize(a.q!, { cols: qCols });
    await s.resize(a.k!, { cols: kvCols });
    await s.resize(a.v!, { cols: kvCols });
    await s.resize(a.o!, { rows: qCols });
    if (a.biases.q) await s.resize(a.biases.q, { cols: qCols });
    if (a.biases.k) await s.resize(a.biases.k, { cols: kvCols });
    if (a.biases.v) await s.resize(a.biases.v, { cols: kvCols });
    const counts = { heads: H, kvHeads: KV, headSize: d, newHeads, newKv };
    for (const hc of a.nodes.headCounts) {
      const node = s.nodeByLabel(hc.node);
      if (hc.on === 'attention') {
        const nh = getAttribute(node, 'num_heads');
        if (nh) Object.assign(nh, intAttr('num_heads', newHeads));
        const kvh = getAttribute(node, 'kv_num_heads');
        if (kvh) Object.assign(kvh, intAttr('kv_num_heads', newKv));
        continue;
      }
      if (!hc.constant || !hc.values) continue;
      const values = rewriteHeadValues(hc, hc.values, counts);
      if (values.some((v, i) => v !== hc.values![i])) s.setIntConstant(node, hc.constant, values);
    }
    const caches = [a.nodes.cache.key, a.nodes.cache.value].filter((x): x is string => !!x);
    for (const c of caches) setDim(s.graph.input.find((v) => v.name === c), 1, newKv);
    for (const o of s.cacheOutputs(b)) setDim(s.graph.output.find((v) => v.name === o), 1, newKv);
    s.markStale([a.q!, a.k!, a.v!].map((w) => s.projectionOf(w).output[0]), new Set([s.projectionOf(a.o!)]));
    s.result.blocks.push({ block: b.index, heads: newHeads, kvHeads: newKv, intermediate: null });
  }
}

async function cutNeurons(s: Surgery, map: ArchitectureMap, plan: StructuredPlan): Promise<void> {
  s.checkUnshared(plan.cuts.flatMap((c) => { const m = map.blocks[c.block].mlp; return [m.gate, m.up, m.down, m.biases.gate, m.biases.up]; }));
  for (const cut of plan.cuts) {
    const m = map.blocks[cut.block].mlp;
    const keep = keptIndices(cut.of, 1, cut.remove);
    if (m.gate) await s.resize(m.gate, { cols: keep });
    await s.resize(m.up!, { cols: keep });
    await s.resize(m.down!, { rows: keep });
    if (m.biases.gate) await s.resize(m.biases.gate, { cols: keep });
    if (m.biases.up) await s.resize(m.biases.up, { cols: keep });
    s.markStale([m.gate, m.up].filter((w): w is string => !!w).map((w) => s.projectionOf(w).output[0]), new Set([s.projectionOf(m.down!)]));
    s.result.blocks.push({ block: cut.block, heads: null, kvHeads: null, intermediate: keep.length });
  }
}

/** True when `value` is computed from `node`'s output within a few hops (bias Add, Cast, Reshape). */
function comesFrom(producers: Map<string, NodeProto>, value: string, node: NodeProto): boolean {
  let frontier = [value];
  for (let hops = 0; hops < 4; hops++) {
    const next: string[] = [];
    for (const v of frontier) {
      const p = producers.get(v);
      if (!p) continue;
      if (p === node) return true;
      if (['Add', 'Cast', 'Reshape', 'Identity'].includes(p.opType ?? '')) next.push(...p.input);
    }
    frontier = next;
  }
  return false;
}

/** The join drops its branch (the output of `branchProj`): see the file header. */
function bypassJoin(s: Surgery, join: NodeProto, branchProj: NodeProto): void {
  const producers = producerMap(s.graph);
  const [x0, x1] = join.input;
  const stream = comesFrom(producers, x1, branchProj) ? x0 : comesFrom(producers, x0, branchProj) ? x1 : null;
  if (!stream) throw new WhittleError('UNSUPPORTED_MODEL', `The residual join ${nodeLabel(join)} does not add the block's output to a stream that could pass it.`);
  const op = join.opType ?? '';
  if (op === 'Add') {
    s.rewire(join.output[0], stream, join);
    return;
  }
  if (op === 'SkipSimplifiedLayerNormalization' || op === 'SkipLayerNormalization') {
    if (join.output[1] || join.output[2]) throw new WhittleError('UNSUPPORTED_MODEL', `${nodeLabel(join)} exposes its mean / inverse deviation, which a bypassed block cannot provide.`);
    const eps = attrFloat(join, 'epsilon', 1e-5);
    const simplified = op === 'SkipSimplifiedLayerNormalization';
    const inputs = simplified ? [stream, join.input[2]] : [stream, join.input[2], ...(join.input[3] ? [join.input[3]] : [])];
    const norm = makeNode({
      opType: simplified ? 'SimplifiedLayerNormalization' : 'LayerNormalization', inputs, outputs: [join.output[0]],
      name: s.names.fresh(`${nodeLabel(join)}_bypass`), attributes: [intAttr('axis', -1), floatAttr('epsilon', eps)],
    });
    const at = s.graph.node.indexOf(join);
    s.graph.node.splice(at, 1, norm);
    if (join.output[3]) s.rewire(join.output[3], stream);
    return;
  }
  throw new WhittleError('UNSUPPORTED_MODEL', `The residual join ${nodeLabel(join)} is a ${op}, which a block bypass does not handle yet.`);
}

/** Removes nodes none of whose outputs are read (repeatedly), keeping nodes that write graph outputs. */
function sweepDeadNodes(graph: GraphProto): number {
  let removed = 0;
  for (;;) {
    const read = new Set<string>(graph.output.map((o) => o.name ?? ''));
    for (const n of graph.node) for (const x of n.input) if (x) read.add(x);
    const before = graph.node.length;
    graph.node = graph.node.filter((n) => n.output.some((o) => o && read.has(o)));
    removed += before - graph.node.length;
    if (graph.node.length === before) return removed;
  }
}

/**
 * A Skip*LayerNormalization whose normalized output nobody reads any more (it normalized for a removed
 * block) only forms the residual sum: it becomes Add(input, skip [, bias]), and its scale goes with it.
 */
function unfuseUnreadNorms(s: Surgery): void {
  const read = new Set<string>(s.graph.output.map((o) => o.name ?? ''));
  for (const n of s.graph.node) for (const x of n.input) if (x) read.add(x);
  s.graph.node = s.graph.node.flatMap((n) => {
    if (!['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization'].includes(n.opType ?? '') || read.has(n.output[0]) || !n.output[3]) return [n];
    if (n.output[1] && read.has(n.output[1])) return [n];
    if (n.output[2] && read.has(n.output[2])) return [n];
    const bias = n.opType === 'SkipLayerNormalization' ? n.input[4] : undefined;
    if (!bias) return [makeNode({ opType: 'Add', inputs: [n.input[0], n.input[1]], outputs: [n.output[3]], name: s.names.fresh(`${nodeLabel(n)}_sum`) })];
    const mid = s.names.fresh(`${n.output[3]}_nobias`);
    return [
      makeNode({ opType: 'Add', inputs: [n.input[0], n.input[1]], outputs: [mid], name: s.names.fresh(`${nodeLabel(n)}_sum`) }),
      makeNode({ opType: 'Add', inputs: [mid, bias], outputs: [n.output[3]], name: s.names.fresh(`${nodeLabel(n)}_bias`) }),
    ];
  });
}

function renameValue(graph: GraphProto, from: string, to: string): void {
  for (const n of graph.node) {
    n.input = n.input.map((x) => (x === from ? to : x));
    n.output = n.output.map((x) => (x === from ? to : x));
  }
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) if (v.name === from) v.name = to;
}

async function cutBlocks(s: Surgery, map: ArchitectureMap, plan: StructuredPlan): Promise<void> {
  const gone = new Set(plan.layers);
  const keptBlocks = map.blocks.filter((b) => !gone.has(b.index));
  const cacheOutputs = new Map(map.blocks.map((b) => [b.index, s.cacheOutputs(b)]));
  for (const i of plan.layers) {
    const b = map.blocks[i];
    bypassJoin(s, s.nodeByLabel(b.residual.attentionJoin!), s.projectionOf(b.attention.o!));
    bypassJoin(s, s.nodeByLabel(b.residual.mlpJoin!), s.projectionOf(b.mlp.down!));
    const outs = new Set(cacheOutputs.get(i));
    s.graph.output = s.graph.output.filter((o) => !outs.has(o.name ?? ''));
    s.result.removedCache.push(...outs);
  }
  sweepDeadNodes(s.graph);
  unfuseUnreadNorms(s);
  sweepDeadNodes(s.graph);
  // Cache inputs of removed blocks still read elsewhere (e.g. the past length for the mask) read a kept block's.
  const roles = ['key', 'value', 'kv'] as const;
  for (const i of plan.layers) {
    const b = map.blocks[i];
    const substitute = keptBlocks.find((k) => k.index > i) ?? keptBlocks[keptBlocks.length - 1];
    for (const role of roles) {
      const c = b.attention.nodes.cache[role];
      if (!c) continue;
      const other = substitute.attention.nodes.cache[role];
      if (s.graph.node.some((n) => n.input.includes(c))) {
        if (!other) throw new WhittleError('UNSUPPORTED_MODEL', `Cache input '${c}' of block ${i} is read outside the block and no kept block has a ${role} cache to read instead.`);
        s.rewire(c, other);
      }
      s.graph.input = s.graph.input.filter((v) => v.name !== c);
      s.result.removedCache.push(c);
    }
  }
  // Renumber the remaining caches 0…n−1 where their names spell the block index (past_key_values.3.key → .2.).
  const renames: [string, string][] = [];
  keptBlocks.forEach((b, j) => {
    if (b.index === j) return;
    const names = [...Object.values(b.attention.nodes.cache).filter((x): x is string => !!x), ...(cacheOutputs.get(b.index) ?? [])];
    const pattern = new RegExp(`([._/])${b.index}([._/]|$)`);
    for (const n of names) if (pattern.test(n)) renames.push([n, n.replace(pattern, `$1${j}$2`)]);
  });
  // Two passes through temporary names so that no rename lands on a name still in use.
  const tmp = renames.map(([from], k) => [from, s.names.fresh(`__cache_${k}`)] as const);
  tmp.forEach(([from, t]) => renameValue(s.graph, from, t));
  tmp.forEach(([, t], k) => renameValue(s.graph, t, renames[k][1]));
  s.result.removedBlocks = [...plan.layers];
}

/**
 * Carries out `plan` on `model` (its main graph, mapped as `map`) in memory: new weight bytes through
 * `scope.spool`, read through `scope.reader`. See the file header.
 */
export async function applyStructured(model: ModelProto, map: ArchitectureMap, plan: StructuredPlan, scope: Pick<RewriteScope, 'reader' | 'spool'>): Promise<StructuredApplyResult> {
  if (!model.graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  const s = new Surgery(model, scope);
  if (plan.target === 'heads') await cutHeads(s, map, plan);
  else if (plan.target === 'neurons') await cutNeurons(s, map, plan);
  else await cutBlocks(s, map, plan);
  const graph = s.graph;
  const live = new Set<string>([...graph.input, ...graph.output].map((v) => v.name ?? ''));
  for (const n of graph.node) for (const o of n.output) live.add(o);
  graph.valueInfo = graph.valueInfo.filter((v) => live.has(v.name ?? '') && !s.staleShapes.has(v.name ?? ''));
  s.result.sweptInitializers = sweepUnusedInitializers(graph).length;
  return s.result;
}
