/**
 * The architecture map: which MatMul is which (ARCHITECTURE seam 9). Quantization, pruning, training and
 * distillation ask it for roles (q, k, v, o, gate, up, down, LM head), head counts and blocks; none of
 * them matches names on its own.
 *
 * Derived from the dataflow, never from names: each attention unit (a com.microsoft attention op, or
 * MatMul(Q, Kᵀ) → Softmax → MatMul(P, V)) anchors one block (architecture-attention.ts). From the
 * attention output, o is the first projection; the node joining o's output to the residual stream (an Add
 * of two computed values, or a Skip*LayerNormalization) gives the stream entering the block (its other
 * input). Forward along the stream, the next join whose other input comes from a projection closes the
 * MLP: that projection is down, and the projections behind down's input are gate and up (the one behind
 * the nonlinearity is gate) or a single fc1. The LM head is the projection behind a graph output, tied
 * when it reads the embedding table (through a Transpose, or Gemm transB = 1).
 *
 * Family, as recognised: RMSNorm + gated MLP → 'llama'; LayerNorm + ungated MLP in a decoder → 'gpt2';
 * norms after the residual joins (post-norm) or no causal structure → 'bert'. Anything else is 'unknown'
 * with the parts that could not be recognised listed in `issues`; the map never throws for an unknown
 * architecture.
 */
import { attrInt } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, OnnxModel } from '../onnx/proto-types.ts';
import {
  CONTRIB_ATTENTION, findAttentionUnits, headCounts, outputProjection, type AttentionUnit, type HeadCountNode,
} from './architecture-attention.ts';
import { GraphView, isOp, MS_DOMAIN, nodeLabel, normBefore, type NormInfo, type Projection, SKIP_NORMS, skipCasts } from './architecture-graph.ts';

export type { HeadCountNode } from './architecture-attention.ts';
export type { NormInfo } from './architecture-graph.ts';

export type ArchitectureFamily = 'llama' | 'gpt2' | 'bert' | 'unknown';

export interface BlockAttention {
  q: string | null;
  k: string | null;
  v: string | null;
  o: string | null;
  /** Fused QKV weight (one MatMul, or com.microsoft.Attention's weight input), or null. */
  qkv: string | null;
  heads: number | null;
  kvHeads: number | null;
  headSize: number | null;
  biases: { q: string | null; k: string | null; v: string | null; o: string | null; qkv: string | null };
  nodes: {
    /** The com.microsoft attention op, or null for plain ops. */
    attention: string | null;
    /** Nodes whose constants or attributes spell head counts (Reshape/Expand/Concat shapes, num_heads). */
    headCounts: HeadCountNode[];
    rotary: string[];
    /** Cache graph inputs: key/value, or one combined [2, b, heads, t, d] tensor. */
    cache: { key: string | null; value: string | null; kv: string | null };
  };
}

export interface BlockMlp {
  gate: string | null;
  up: string | null;
  down: string | null;
  activation: string | null;
  /** Hidden width of the MLP (output features of up / fc1). */
  intermediate: number | null;
  biases: { gate: string | null; up: string | null; down: string | null };
}

export interface BlockNorm extends NormInfo {
  /** What it normalizes for: the attention input, the MLP input (or post-norm: after which join). */
  at: 'attention' | 'mlp';
}

export interface ArchitectureBlock {
  index: number;
  attention: BlockAttention;
  mlp: BlockMlp;
  norms: BlockNorm[];
  /** Every float initializer that belongs to the block (projections, biases, norm scales). */
  weights: string[];
  /**
   * The residual stream around the block: the value entering it, and the two joins (Add or
   * Skip*LayerNormalization node labels) where the attention and the MLP add their outputs to it.
   */
  residual: { input: string | null; attentionJoin: string | null; mlpJoin: string | null };
}

export interface ArchitectureMap {
  family: ArchitectureFamily;
  blocks: ArchitectureBlock[];
  /** Token embedding table (Gather indexed by the token ids), or null. */
  embedding: string | null;
  /** Other tables indexed by graph inputs (positions, token types). */
  otherEmbeddings: string[];
  lmHead: string | null;
  tiedEmbedding: boolean;
  finalNorm: NormInfo | null;
  /** Norm placement: before attention/MLP (pre) or after each residual join (post). */
  normPlacement: 'pre' | 'post' | null;
  issues: string[];
}

const ACTIVATIONS: Record<string, string> = {
  Sigmoid: 'silu', Silu: 'silu', FastGelu: 'gelu', Gelu: 'gelu', BiasGelu: 'gelu', Erf: 'gelu', Tanh: 'gelu_tanh',
  Relu: 'relu', QuickGelu: 'quick_gelu', Softplus: 'softplus', Elu: 'elu', Mish: 'mish',
};
const MLP_PATH = new Set(['Mul', 'Div', 'Add', 'Cast', 'Pow', 'Identity', ...Object.keys(ACTIVATIONS)]);

function asGraph(model: OnnxModel | ModelProto | GraphProto): GraphProto | null {
  if ('node' in model) return model;
  if ('proto' in model) return model.proto.graph ?? null;
  return model.graph ?? null;
}

/** A join of two computed values on the residual stream: Add, or the com.microsoft Skip*LayerNormalization. */
function isJoin(view: GraphView, n: NodeProto): boolean {
  if (SKIP_NORMS.has(n.opType ?? '') && n.domain === MS_DOMAIN) return true;
  return isOp(n, 'Add') && n.input.length === 2 && !view.isConstant(n.input[0]) && !view.isConstant(n.input[1]);
}

/** The residual join that `value` (an o or down output) flows into, through a bias Add. */
function joinAfter(view: GraphView, value: string): { join: NodeProto; bias: string | null } | null {
  const { value: v, bias } = view.afterBias(value);
  let cur = v;
  for (let hops = 0; hops < 3; hops++) {
    const readers = view.readers(cur);
    const j = readers.find((n) => isJoin(view, n));
    if (j) return { join: j, bias: bias ?? (SKIP_NORMS.has(j.opType ?? '') ? j.input[4] || null : null) };
    const pass = readers.find((n) => isOp(n, 'Cast', 'Identity', 'Reshape'));
    if (!pass) return null;
    cur = pass.output[0];
  }
  return null;
}

/** The projection whose output (through a bias Add and Casts) is `value`. */
function projectionBehind(view: GraphView, value: string): { proj: Projection; bias: string | null } | null {
  const { value: v, bias } = view.beforeBias(skipCasts(view, value));
  const proj = view.projection(view.producer(skipCasts(view, v)));
  return proj ? { proj, bias } : null;
}

/** The MLP behind `down`: gate and up (gated), or fc1 alone, and the activation between. */
function mlpBehind(view: GraphView, down: Projection): { gate: Projection | null; up: Projection | null; activation: string | null; gateBias: string | null; upBias: string | null } {
  const found = new Map<NodeProto, boolean>(); // projection → reached through an activation
  let activation: string | null = null;
  const seen = new Set<string>();
  const queue: { v: string; act: boolean }[] = [{ v: down.node.input[0], act: false }];
  while (queue.length && seen.size < 48) {
    const { v, act } = queue.shift()!;
    const key = `${v}|${act}`;
    if (!v || seen.has(key) || view.isConstant(v)) continue;
    seen.add(key);
    const p = view.producer(v);
    if (!p) continue;
    if (view.projection(p)) { found.set(p, (found.get(p) ?? false) || act); continue; }
    if (!isOp(p, ...MLP_PATH)) continue;
    const isAct = p.opType! in ACTIVATIONS;
    if (isAct && !activation) activation = ACTIVATIONS[p.opType!];
    for (const x of p.input) queue.push({ v: x, act: act || isAct });
  }
  const projs = [...found.entries()];
  const bias = (p: Projection | null): string | null => (p ? view.afterBias(p.node.output[0]).bias : null);
  if (projs.length === 1) {
    const up = view.projection(projs[0][0]);
    return { gate: null, up, activation, gateBias: null, upBias: bias(up) ?? (isOp(view.readers(projs[0][0].output[0])[0], 'FastGelu', 'BiasGelu') ? view.readers(projs[0][0].output[0])[0].input[1] || null : null) };
  }
  if (projs.length === 2 && projs[0][1] !== projs[1][1]) {
    const [g, u] = projs[0][1] ? [projs[0][0], projs[1][0]] : [projs[1][0], projs[0][0]];
    const gate = view.projection(g), up = view.projection(u);
    return { gate, up, activation, gateBias: bias(gate), upBias: bias(up) };
  }
  return { gate: null, up: null, activation, gateBias: null, upBias: null };
}

/**
 * The MLP's closing join after the attention join `j`: walking forward along the stream (not through
 * projections or other joins), the first join whose other input comes from a projection.
 */
function mlpJoin(view: GraphView, j: NodeProto): { join: NodeProto; down: Projection; downBias: string | null } | null {
  const stream = new Set<string>();
  const queue = j.output.filter((x) => x);
  let visited = 0;
  while (queue.length && visited++ < 256) {
    const v = queue.shift()!;
    if (stream.has(v)) continue;
    stream.add(v);
    for (const r of view.readers(v)) {
      if (isJoin(view, r)) {
        const other = r.input.slice(0, 2).find((x) => x !== v);
        const behind = other ? projectionBehind(view, other) : null;
        if (behind) {
          const downBias = behind.bias ?? (SKIP_NORMS.has(r.opType ?? '') ? r.input[4] || null : null);
          return { join: r, down: behind.proj, downBias };
        }
        continue;
      }
      if (view.projection(r)) continue;
      queue.push(...r.output.filter((x) => x));
    }
  }
  return null;
}

/** Token-indexed tables: Gather(table, ids) with ids from a graph input, or EmbedLayerNormalization. */
function findEmbeddings(view: GraphView): { word: string | null; others: string[] } {
  const fromInput = (v: string | undefined): number => {
    for (let hops = 0; v && hops < 6; hops++) {
      if (view.inputs.has(v)) return view.graph.input.findIndex((x) => x.name === v);
      const p = view.producer(v);
      if (!isOp(p, 'Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity')) return -1;
      v = p!.input[0];
    }
    return -1;
  };
  const tables: { name: string; input: number; rows: number }[] = [];
  for (const n of view.graph.node) {
    if (isOp(n, 'Gather') && attrInt(n, 'axis', 0) === 0 && view.floatWeight(n.input[0])?.dims.length === 2) {
      const input = fromInput(n.input[1]);
      if (input >= 0) tables.push({ name: n.input[0], input, rows: view.dims(n.input[0])[0] });
    } else if (n.opType === 'EmbedLayerNormalization' && n.domain === MS_DOMAIN) {
      // inputs: input_ids, segment_ids, word, position, segment embeddings, gamma, beta, mask, position_ids
      const ids = fromInput(n.input[0]);
      if (view.floatWeight(n.input[2])) tables.push({ name: n.input[2], input: ids >= 0 ? ids : 0, rows: view.dims(n.input[2])[0] });
      for (const i of [3, 4]) if (view.floatWeight(n.input[i])) tables.push({ name: n.input[i], input: Number.MAX_SAFE_INTEGER, rows: view.dims(n.input[i])[0] });
    }
  }
  const unique = tables.filter((t, i) => tables.findIndex((u) => u.name === t.name) === i);
  unique.sort((a, b) => a.input - b.input || b.rows - a.rows);
  return { word: unique[0]?.name ?? null, others: unique.slice(1).map((t) => t.name) };
}

/** The LM head: the widest projection behind a graph output. */
function findLmHead(view: GraphView): Projection | null {
  let best: Projection | null = null;
  for (const out of view.graph.output) {
    let v = out.name ?? '';
    for (let hops = 0; hops < 4; hops++) {
      const p = view.producer(v);
      if (!p) break;
      const proj = view.projection(p);
      if (proj) { if (!best || proj.outFeatures > best.outFeatures) best = proj; break; }
      if (isOp(p, 'Add')) { v = view.beforeBias(v).value; continue; }
      if (!isOp(p, 'Cast', 'Reshape', 'Identity', 'Squeeze')) break;
      v = p.input[0];
    }
  }
  return best;
}

/** Nodes between the stream entering a block and its closing join (forward from one, back from the other). */
function blockNodes(view: GraphView, starts: string[], end: NodeProto): Set<NodeProto> {
  const forward = new Set<NodeProto>();
  const queue = [...starts];
  const seenValues = new Set<string>();
  while (queue.length) {
    const v = queue.shift()!;
    if (seenValues.has(v)) continue;
    seenValues.add(v);
    for (const r of view.readers(v)) {
      if (forward.has(r)) continue;
      forward.add(r);
      if (r !== end) queue.push(...r.output.filter((x) => x));
    }
  }
  const inside = new Set<NodeProto>([end]);
  const back = [...end.input];
  while (back.length) {
    const p = view.producer(back.pop());
    if (!p || inside.has(p) || !forward.has(p)) continue;
    inside.add(p);
    back.push(...p.input);
  }
  return inside;
}

function mapBlock(view: GraphView, unit: AttentionUnit, index: number, issues: string[]): { block: ArchitectureBlock; streamIn: string | null; streamOut: string[]; postNorm: boolean; causal: boolean } {
  const counts = headCounts(view, unit, index);
  issues.push(...counts.issues);
  const o = outputProjection(view, unit);
  if (!o) issues.push(`block ${index}: no output projection (o) reads the attention output`);
  const attnJoin = o ? joinAfter(view, o.node.output[0]) : null;
  if (o && !attnJoin) issues.push(`block ${index}: the o projection's output does not join a residual stream (Add or SkipLayerNormalization)`);
  const oOut = o ? view.afterBias(o.node.output[0]).value : null;
  const streamIn = attnJoin ? attnJoin.join.input.slice(0, 2).find((x) => x !== oOut && skipCasts(view, x) !== oOut) ?? null : null;
  const postNorm = !!streamIn && normBefore(view, streamIn) !== null;
  const mj = attnJoin ? mlpJoin(view, attnJoin.join) : null;
  if (attnJoin && !mj) issues.push(`block ${index}: no MLP found after the attention (no later residual join fed by a projection)`);
  const mlp = mj ? mlpBehind(view, mj.down) : { gate: null, up: null, activation: null, gateBias: null, upBias: null };
  if (mj && !mlp.up) issues.push(`block ${index}: the MLP's input projections (gate/up or fc1) behind ${mj.down.weight} were not recognised`);

  // Norms: pre-norm reads them before q/qkv and before up; post-norm after each join.
  const norms: BlockNorm[] = [];
  const attnInput = unit.op && !unit.q && !unit.qkv ? unit.op.input[0] : (unit.q ?? unit.qkv ?? unit.k)?.node.input[0];
  const upInput = mlp.up?.node.input[0];
  if (postNorm) {
    const afterAttn = upInput ? normBefore(view, upInput) : null;
    if (afterAttn) norms.push({ ...afterAttn, at: 'attention' });
    const ln = mj ? view.readers(mj.join.output[0]).map((r) => normBefore(view, r.output[0])).find((n) => n) : null;
    if (ln) norms.push({ ...ln, at: 'mlp' });
  } else {
    const n1 = attnInput ? normBefore(view, attnInput) : null;
    if (n1) norms.push({ ...n1, at: 'attention' });
    const n2 = upInput ? normBefore(view, upInput) : null;
    if (n2) norms.push({ ...n2, at: 'mlp' });
  }

  // Weights: float initializers of the nodes between the stream in and the MLP join, plus the norms.
  const weights: string[] = [];
  const add = (w: string | null | undefined): void => { if (w && view.floatWeight(w) && view.dims(w).length >= 1 && !weights.includes(w)) weights.push(w); };
  if (streamIn && mj) {
    const p = view.producer(streamIn);
    const starts = p && (SKIP_NORMS.has(p.opType ?? '') || p.opType === 'EmbedLayerNormalization') ? p.output.filter((x) => x) : [streamIn];
    const inside = blockNodes(view, starts, mj.join);
    for (const n of view.graph.node) {
      if (!inside.has(n)) continue;
      if (n === mj.join && SKIP_NORMS.has(n.opType ?? '')) { add(n.input[4]); continue; }
      // RotaryEmbedding's cos/sin caches are position tables shared by every block, not block weights.
      (isOp(n, 'RotaryEmbedding') ? n.input.slice(0, 2) : n.input).forEach(add);
    }
  } else {
    for (const p of [unit.q, unit.k, unit.v, unit.qkv, o]) add(p?.weight);
    add(unit.fusedWeight);
  }
  for (const n of norms) { add(n.weight); add(n.bias); }

  const streamOut: string[] = [];
  if (mj) {
    streamOut.push(...mj.join.output.filter((x) => x));
    for (const r of view.readers(mj.join.output[0])) if (normBefore(view, r.output[0])) streamOut.push(r.output[0]);
  }
  const causal = !!(unit.cache.key || unit.cache.value || unit.cache.kv) || (unit.op !== null && attrInt(unit.op, 'unidirectional', 0) === 1) || unit.op?.opType === 'GroupQueryAttention';
  const bias = (p: Projection | null): string | null => (p ? view.afterBias(p.node.output[0]).bias : null);
  const block: ArchitectureBlock = {
    index,
    attention: {
      q: unit.q?.weight ?? null, k: unit.k?.weight ?? null, v: unit.v?.weight ?? null, o: o?.weight ?? null,
      qkv: unit.qkv?.weight ?? unit.fusedWeight,
      heads: counts.heads, kvHeads: counts.kvHeads, headSize: counts.headSize,
      biases: { q: bias(unit.q), k: bias(unit.k), v: bias(unit.v), o: attnJoin?.bias ?? null, qkv: unit.fusedBias ?? bias(unit.qkv) },
      nodes: { attention: unit.op ? nodeLabel(unit.op) : null, headCounts: unit.nodes, rotary: unit.rotary, cache: unit.cache },
    },
    mlp: {
      gate: mlp.gate?.weight ?? null, up: mlp.up?.weight ?? null, down: mj?.down.weight ?? null, activation: mlp.activation,
      intermediate: mlp.up?.outFeatures ?? mlp.gate?.outFeatures ?? null,
      biases: { gate: mlp.gateBias, up: mlp.upBias, down: mj?.downBias ?? null },
    },
    norms,
    weights,
    residual: { input: streamIn, attentionJoin: attnJoin ? nodeLabel(attnJoin.join) : null, mlpJoin: mj ? nodeLabel(mj.join) : null },
  };
  return { block, streamIn, streamOut, postNorm, causal };
}

/** The architecture map of a model's main graph (see the header). Never throws for unknown layouts. */
export function mapArchitecture(model: OnnxModel | ModelProto | GraphProto): ArchitectureMap {
  const graph = asGraph(model);
  const map: ArchitectureMap = {
    family: 'unknown', blocks: [], embedding: null, otherEmbeddings: [], lmHead: null, tiedEmbedding: false,
    finalNorm: null, normPlacement: null, issues: [],
  };
  if (!graph) { map.issues.push('the model has no graph'); return map; }
  const view = new GraphView(graph);
  const issues = map.issues;

  const emb = findEmbeddings(view);
  map.embedding = emb.word;
  map.otherEmbeddings = emb.others;
  if (!emb.word) issues.push('no embedding table: no Gather of a 2-D float initializer indexed by a graph input');

  const units = findAttentionUnits(view);
  let postNorm = false, causal = false;
  let prevOut: string[] | null = null;
  units.forEach((unit, i) => {
    const r = mapBlock(view, unit, i, issues);
    map.blocks.push(r.block);
    if (i === 0) postNorm = r.postNorm;
    causal ||= r.causal;
    if (prevOut && r.streamIn && !prevOut.includes(r.streamIn)) issues.push(`block ${i}: its residual input is not the output of block ${i - 1}`);
    prevOut = r.streamOut;
  });
  if (units.length) map.normPlacement = postNorm ? 'post' : 'pre';
  const noHeads = map.blocks.filter((b) => b.attention.heads === null).map((b) => b.index);
  if (noHeads.length) issues.push(`head counts not found for block${noHeads.length > 1 ? 's' : ''} ${noHeads.join(', ')} (no Reshape after q, num_heads attribute or cache shape)`);

  const head = findLmHead(view);
  const inBlocks = new Set(map.blocks.flatMap((b) => [b.attention.q, b.attention.k, b.attention.v, b.attention.o, b.attention.qkv, b.mlp.gate, b.mlp.up, b.mlp.down]));
  if (head && !inBlocks.has(head.weight)) {
    map.lmHead = head.weight;
    map.tiedEmbedding = head.weight === map.embedding;
    map.finalNorm = normBefore(view, head.node.input[0]);
  }

  if (!units.length) {
    const contrib = graph.node.filter((n) => n.domain === MS_DOMAIN && CONTRIB_ATTENTION.has(n.opType ?? '')).length;
    issues.push(contrib ? `${contrib} attention op(s) found but none could be mapped` : 'no attention found (neither MatMul → Softmax → MatMul nor a com.microsoft attention op), so no transformer blocks');
    return map;
  }
  const b0 = map.blocks[0];
  const normKind = b0.norms[0]?.kind ?? null;
  const gated = b0.mlp.gate !== null;
  if (postNorm || (!causal && !map.lmHead)) map.family = 'bert';
  else if (normKind === 'rms' && gated) map.family = 'llama';
  else if (normKind === 'layer' && !gated && b0.mlp.up) map.family = 'gpt2';
  else issues.push(`family not recognised: ${normKind === null ? 'no normalization found before attention' : `${normKind === 'rms' ? 'RMSNorm' : 'LayerNorm'}`} with ${gated ? 'a gated' : b0.mlp.up ? 'an ungated' : 'no recognised'} MLP`);
  return map;
}
