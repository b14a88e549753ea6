/**
 * One attention unit of a transformer block, found from the dataflow: either a com.microsoft attention
 * op (Attention with a fused QKV weight, MultiHeadAttention, GroupQueryAttention, …) or the plain pattern
 *   scores = MatMul(Q [b, h, s, d], Kᵀ [b, h, d, t]) (· scale, + mask) → Softmax → MatMul(P, V [b, h, t, d])
 * From there the q, k and v projections are found by walking back through the shape and rotary ops
 * (Reshape, Transpose, Split, Concat with the cache, Expand for grouped-query attention, RotaryEmbedding),
 * and o by walking forward from the attention output. Head counts come from the graph: the attention op's
 * `num_heads` / `kv_num_heads`, the Reshape right after each projection ([b, s, heads, head_size] or
 * [b, s, heads, 2, head_size/2]), and the cache input shapes; they are checked against each other.
 */
import { attrInt, toNumber } from '../onnx/graph.ts';
import type { NodeProto } from '../onnx/proto-types.ts';
import { type GraphView, isOp, MS_DOMAIN, nodeLabel, type Projection } from './architecture-graph.ts';

export const CONTRIB_ATTENTION = new Set(['Attention', 'MultiHeadAttention', 'GroupQueryAttention', 'DecoderMaskedMultiHeadAttention', 'DecoderMaskedSelfAttention', 'PackedMultiHeadAttention', 'SparseAttention', 'PagedAttention']);

/** A node whose constant input spells a head count (for structured surgery to rewrite). */
export interface HeadCountNode {
  node: string;
  op: string;
  /** Which projection's path it is on ('attention' for the attention op's attributes). */
  on: 'q' | 'k' | 'v' | 'qkv' | 'o' | 'attention';
  /** The constant input (initializer or Constant output) holding the shape, or null for attributes. */
  constant: string | null;
  values: number[] | null;
}

export interface AttentionUnit {
  /** The com.microsoft op, or null for the plain pattern. */
  op: NodeProto | null;
  /** For the plain pattern: the scores MatMul and the Softmax. */
  scores: NodeProto | null;
  /** The value the attention outputs ([b, s, heads · head_size]) before o. */
  output: string;
  q: Projection | null;
  k: Projection | null;
  v: Projection | null;
  qkv: Projection | null;
  /** QKV weight read by the op itself (com.microsoft.Attention input 1), not by a MatMul. */
  fusedWeight: string | null;
  fusedBias: string | null;
  nodes: HeadCountNode[];
  rotary: string[];
  /** Graph inputs reached as cache: key/value, or one combined [2, b, h, t, d] tensor. */
  cache: { key: string | null; value: string | null; kv: string | null };
}

/** Ops a projection output passes through on its way to the attention. */
const PATH_OPS = new Set(['Reshape', 'Transpose', 'Split', 'Slice', 'Squeeze', 'Unsqueeze', 'Concat', 'Mul', 'Sub', 'Add', 'Div', 'Neg', 'Expand', 'Cast', 'Identity', 'Tile', 'RotaryEmbedding', 'Gather']);

interface Walk {
  found: NodeProto[];
  nodes: NodeProto[];
  inputs: string[];
}

/**
 * Walks back from `value` through shape and elementwise ops to the projections (constant-weight
 * MatMul/Gemm) that feed it. Constant inputs are not followed; nor is anything behind Shape, a Gather of
 * a table (rotary cos/sin) or a MatMul of two computed values.
 */
function walkBack(view: GraphView, value: string, limit = 64): Walk {
  const out: Walk = { found: [], nodes: [], inputs: [] };
  const seen = new Set<string>();
  const queue = [value];
  while (queue.length && seen.size < limit) {
    const v = queue.shift()!;
    if (!v || seen.has(v) || view.isConstant(v)) continue;
    seen.add(v);
    if (view.inputs.has(v)) { out.inputs.push(v); continue; }
    const p = view.producer(v);
    if (!p) continue;
    if (view.projection(p)) { if (!out.found.includes(p)) out.found.push(p); continue; }
    if (!isOp(p, ...PATH_OPS)) continue;
    if (isOp(p, 'Gather') && view.inits.has(p.input[0])) continue;
    out.nodes.push(p);
    if (isOp(p, 'RotaryEmbedding')) { queue.push(p.input[0]); continue; }
    if (isOp(p, 'Reshape', 'Expand', 'Tile')) { queue.push(p.input[0]); continue; }
    for (const x of p.input) queue.push(x);
  }
  return out;
}

/** The walk's nodes that lie downstream of the projections it found (not on side branches such as rotary tables). */
function downstreamOf(view: GraphView, w: Walk): Set<NodeProto> {
  const inWalk = new Set(w.nodes);
  const out = new Set<NodeProto>();
  const queue = w.found.map((p) => p.output[0]);
  while (queue.length) {
    for (const r of view.readers(queue.shift())) {
      if (!inWalk.has(r) || out.has(r)) continue;
      out.add(r);
      queue.push(...r.output);
    }
  }
  return out;
}

/** The first Reshape after a projection (through a bias Add), and the head count it spells. */
function headsAfter(view: GraphView, proj: Projection, on: HeadCountNode['on']): { heads: number; headSize: number; node: HeadCountNode } | null {
  let v = view.afterBias(proj.node.output[0]).value;
  for (let hops = 0; hops < 3; hops++) {
    const readers = view.readers(v);
    const r = readers.find((n) => isOp(n, 'Reshape'));
    if (r) {
      const shape = view.intValues(r.input[1]);
      const node: HeadCountNode = { node: nodeLabel(r), op: 'Reshape', on, constant: r.input[1], values: shape };
      if (!shape || shape.length < 4) return null;
      // [batch, seq, heads, …head_size factors]; a -1 among them is inferred from the projection's width.
      const tail = shape.slice(3);
      const n = proj.outFeatures;
      let heads = shape[2];
      let headSize = tail.every((d) => d > 0) ? tail.reduce((a, b) => a * b, 1) : -1;
      if (heads <= 0 && headSize > 0) heads = n / headSize;
      if (headSize <= 0 && heads > 0) headSize = n / heads;
      if (!Number.isInteger(heads) || !Number.isInteger(headSize) || heads * headSize !== n) return null;
      return { heads, headSize, node };
    }
    const cast = readers.find((n) => isOp(n, 'Cast'));
    if (!cast) return null;
    v = cast.output[0];
  }
  return null;
}

/** The plain attention pattern around a Softmax, or null. */
function plainUnit(view: GraphView, softmax: NodeProto): { qk: NodeProto; pv: NodeProto } | null {
  // Back from the Softmax through scale, mask and casts (breadth first, a few nodes deep) to Q·Kᵀ.
  let qk: NodeProto | undefined;
  let frontier = [softmax.input[0]];
  for (let depth = 0; depth < 4 && !qk; depth++) {
    const next: string[] = [];
    for (const v of frontier) {
      const p = view.producer(v);
      if (!p) continue;
      if (isOp(p, 'MatMul') && !view.isConstant(p.input[0]) && !view.isConstant(p.input[1])) { qk = p; break; }
      if (isOp(p, 'Add', 'Mul', 'Div', 'Where', 'Cast', 'Sub', 'Tanh')) next.push(...p.input.filter((x) => !view.isConstant(x)));
    }
    frontier = next;
  }
  if (!qk) return null;
  let out = softmax.output[0];
  for (let hops = 0; hops < 3; hops++) {
    const readers = view.readers(out);
    const pv = readers.find((n) => isOp(n, 'MatMul') && n.input[0] === out);
    if (pv) return { qk, pv };
    const pass = readers.find((n) => isOp(n, 'Cast', 'Dropout', 'Identity'));
    if (!pass) return null;
    out = pass.output[0];
  }
  return null;
}

/** Every attention unit of the graph, in graph order. */
export function findAttentionUnits(view: GraphView): AttentionUnit[] {
  const units: AttentionUnit[] = [];
  for (const node of view.graph.node) {
    if (node.domain === MS_DOMAIN && CONTRIB_ATTENTION.has(node.opType ?? '')) units.push(contribUnit(view, node));
    else if (isOp(node, 'Softmax')) {
      const m = plainUnit(view, node);
      if (m) units.push(plainAttention(view, node, m.qk, m.pv));
    }
  }
  return units;
}

function emptyUnit(op: NodeProto | null, scores: NodeProto | null, output: string): AttentionUnit {
  return { op, scores, output, q: null, k: null, v: null, qkv: null, fusedWeight: null, fusedBias: null, nodes: [], rotary: [], cache: { key: null, value: null, kv: null } };
}

/** Assigns the projections reached from the q, k and v sides: one shared projection is a fused QKV. */
function assign(view: GraphView, unit: AttentionUnit, sides: { q?: Walk; k?: Walk; v?: Walk }): void {
  const one = (w?: Walk): Projection | null => (w && w.found.length === 1 ? view.projection(w.found[0]) : null);
  const q = one(sides.q), k = one(sides.k), v = one(sides.v);
  const shared = [q, k, v].filter((p): p is Projection => !!p);
  if (shared.length > 1 && shared.every((p) => p.node === shared[0].node)) unit.qkv = shared[0];
  else { unit.q = q; unit.k = k; unit.v = v; }
  for (const [side, w] of Object.entries(sides) as ['q' | 'k' | 'v', Walk | undefined][]) {
    if (!w) continue;
    const onPath = downstreamOf(view, w);
    const record = (n: NodeProto): void => {
      const constant = n.input.find((x, i) => (isOp(n, 'Concat') || i === 1) && view.intValues(x) !== null) ?? null;
      const label = nodeLabel(n);
      if (!constant || unit.nodes.some((x) => x.node === label)) return;
      unit.nodes.push({ node: label, op: n.opType!, on: unit.qkv ? 'qkv' : side, constant, values: view.intValues(constant) });
    };
    for (const n of w.nodes) {
      if (!onPath.has(n)) continue;
      if (isOp(n, 'RotaryEmbedding')) { if (!unit.rotary.includes(nodeLabel(n))) unit.rotary.push(nodeLabel(n)); continue; }
      if (isOp(n, 'Reshape')) record(n);
      if (isOp(n, 'Expand', 'Tile')) {
        // Grouped-query attention repeats each KV head: the target shape is often a Concat spelling [kv_heads, groups].
        record(n);
        const shape = view.producer(n.input[1]);
        if (isOp(shape, 'Concat')) record(shape!);
      }
    }
    for (const input of w.inputs) {
      if (side === 'k' && !unit.cache.key) unit.cache.key = input;
      if (side === 'v' && !unit.cache.value) unit.cache.value = input;
    }
  }
}

function plainAttention(view: GraphView, softmax: NodeProto, qk: NodeProto, pv: NodeProto): AttentionUnit {
  const unit = emptyUnit(null, qk, pv.output[0]);
  unit.scores = softmax;
  assign(view, unit, { q: walkBack(view, qk.input[0]), k: walkBack(view, qk.input[1]), v: walkBack(view, pv.input[1]) });
  return unit;
}

function contribUnit(view: GraphView, node: NodeProto): AttentionUnit {
  const unit = emptyUnit(node, null, node.output[0]);
  const op = node.opType!;
  unit.nodes.push({ node: nodeLabel(node), op, on: 'attention', constant: null, values: [attrInt(node, 'num_heads', 0), ...(op === 'GroupQueryAttention' ? [attrInt(node, 'kv_num_heads', 0)] : [])] });
  if (op === 'Attention' || op === 'DecoderMaskedSelfAttention') {
    // input 0 hidden [b, s, hidden], input 1 QKV weight [hidden, 3·hidden], input 2 bias, input 4 past [2, b, h, t, d]
    if (view.floatWeight(node.input[1])) unit.fusedWeight = node.input[1];
    if (view.floatWeight(node.input[2])) unit.fusedBias = node.input[2];
    if (node.input[4] && view.inputs.has(node.input[4])) unit.cache.kv = node.input[4];
    return unit;
  }
  // MultiHeadAttention: q, k, v, bias, …, past_key (6), past_value (7); GroupQueryAttention: q, k, v, past_key (3), past_value (4).
  const [pk, pvIdx] = op === 'GroupQueryAttention' ? [3, 4] : [6, 7];
  const hasKv = !!node.input[1] && !!node.input[2];
  assign(view, unit, hasKv
    ? { q: walkBack(view, node.input[0]), k: walkBack(view, node.input[1]), v: walkBack(view, node.input[2]) }
    : { q: walkBack(view, node.input[0]) });
  if (!hasKv && unit.q) { unit.qkv = unit.q; unit.q = null; }
  if (op === 'MultiHeadAttention' && view.floatWeight(node.input[3])) unit.fusedBias = node.input[3];
  if (node.input[pk] && view.inputs.has(node.input[pk])) unit.cache.key = node.input[pk];
  if (node.input[pvIdx] && view.inputs.has(node.input[pvIdx])) unit.cache.value = node.input[pvIdx];
  return unit;
}

/** o: the first projection reading the attention output (through Transpose/Reshape/Cast). */
export function outputProjection(view: GraphView, unit: AttentionUnit): Projection | null {
  let values = [unit.output];
  for (let hops = 0; hops < 4; hops++) {
    const next: string[] = [];
    for (const v of values) {
      for (const r of view.readers(v)) {
        const p = view.projection(r);
        if (p && r.input[0] === v) return p;
        if (isOp(r, 'Reshape') && view.intValues(r.input[1]) && !unit.nodes.some((x) => x.node === nodeLabel(r))) {
          unit.nodes.push({ node: nodeLabel(r), op: 'Reshape', on: 'o', constant: r.input[1], values: view.intValues(r.input[1]) });
        }
        if (isOp(r, 'Transpose', 'Reshape', 'Cast', 'Identity')) next.push(r.output[0]);
      }
    }
    values = next;
  }
  return null;
}

export interface HeadCounts {
  heads: number | null;
  kvHeads: number | null;
  headSize: number | null;
  issues: string[];
}

/** Cache tensor shape facts: [b, kv_heads, t, d] (key/value) or [2, b, heads, t, d] (combined). */
function cacheShape(view: GraphView, name: string | null, combined: boolean): { heads: number; headSize: number } | null {
  if (!name) return null;
  const vi = view.graph.input.find((x) => x.name === name);
  const dims = vi?.type?.tensorType?.shape?.dim;
  if (!dims) return null;
  const at = (i: number): number => (dims[i]?.dimValue !== undefined ? toNumber(dims[i].dimValue) : -1);
  const [h, d] = combined ? [at(2), at(4)] : [at(1), at(3)];
  return h > 0 && d > 0 ? { heads: h, headSize: d } : null;
}

/** Heads, KV heads and head size from every source the graph has, and the disagreements in words. */
export function headCounts(view: GraphView, unit: AttentionUnit, block: number): HeadCounts {
  const issues: string[] = [];
  const seen: { what: string; heads?: number; kvHeads?: number; headSize?: number }[] = [];
  if (unit.op) {
    const h = attrInt(unit.op, 'num_heads', 0);
    const kv = unit.op.opType === 'GroupQueryAttention' ? attrInt(unit.op, 'kv_num_heads', 0) : 0;
    if (h > 0) seen.push({ what: `${unit.op.opType} num_heads`, heads: h, ...(kv > 0 ? { kvHeads: kv } : {}) });
  }
  const fromReshape = (p: Projection | null, on: 'q' | 'k' | 'v'): void => {
    const r = p ? headsAfter(view, p, on) : null;
    if (!r) return;
    if (!unit.nodes.some((n) => n.node === r.node.node)) unit.nodes.push(r.node);
    seen.push(on === 'q' ? { what: `Reshape after q (${r.node.node})`, heads: r.heads, headSize: r.headSize } : { what: `Reshape after ${on} (${r.node.node})`, kvHeads: r.heads, headSize: r.headSize });
  };
  fromReshape(unit.q, 'q');
  fromReshape(unit.k, 'k');
  fromReshape(unit.v, 'v');
  const kc = cacheShape(view, unit.cache.key, false) ?? cacheShape(view, unit.cache.value, false);
  if (kc) seen.push({ what: `cache input ${unit.cache.key ?? unit.cache.value}`, kvHeads: kc.heads, headSize: kc.headSize });
  const cc = cacheShape(view, unit.cache.kv, true);
  if (cc) seen.push({ what: `cache input ${unit.cache.kv}`, heads: cc.heads, kvHeads: cc.heads, headSize: cc.headSize });

  const pick = (key: 'heads' | 'kvHeads' | 'headSize'): number | null => {
    const vals = seen.filter((s) => s[key] !== undefined);
    if (!vals.length) return null;
    const first = vals[0][key]!;
    const bad = vals.filter((s) => s[key] !== first);
    if (bad.length) issues.push(`block ${block}: ${key} disagree: ${vals.map((s) => `${s.what} says ${s[key]}`).join(', ')}`);
    return first;
  };
  let heads = pick('heads');
  let headSize = pick('headSize');
  let kvHeads = pick('kvHeads');
  // Fill in from the projection widths: q is [hidden, heads·d], k/v [hidden, kv_heads·d], fused QKV [hidden, (heads + 2·kv_heads)·d].
  const qN = unit.q?.outFeatures ?? null;
  const kN = unit.k?.outFeatures ?? unit.v?.outFeatures ?? null;
  if (headSize === null && heads && qN) headSize = qN / heads;
  if (heads === null && headSize && qN) heads = qN / headSize;
  if (kvHeads === null && headSize && kN) kvHeads = kN / headSize;
  const fusedN = unit.qkv?.outFeatures ?? (unit.fusedWeight ? view.dims(unit.fusedWeight)[1] : null);
  if (fusedN && heads) {
    if (kvHeads === null && headSize === null) { headSize = fusedN / (3 * heads); kvHeads = heads; }
    else if (headSize === null && kvHeads !== null) headSize = fusedN / (heads + 2 * kvHeads);
    else if (kvHeads === null && headSize !== null) kvHeads = (fusedN / headSize - heads) / 2;
  }
  if (kvHeads === null && heads !== null && unit.op?.opType !== 'GroupQueryAttention') kvHeads = heads;
  for (const [k, v] of [['heads', heads], ['kvHeads', kvHeads], ['headSize', headSize]] as const) {
    if (v !== null && (!Number.isInteger(v) || v <= 0)) issues.push(`block ${block}: ${k} works out to ${v}, which is not a whole positive number`);
  }
  if (qN && heads && headSize && heads * headSize !== qN) issues.push(`block ${block}: q has ${qN} outputs but heads × head size = ${heads} × ${headSize}`);
  if (heads && kvHeads && heads % kvHeads !== 0) issues.push(`block ${block}: ${heads} heads do not split into ${kvHeads} KV groups`);
  return { heads, kvHeads, headSize, issues };
}
