/**
 * Which weights a rewrite (weight-only or int8 quantization; later pruning) touches, and why the others
 * stay as they are: decided once, here, for the rewrite and for the size estimate alike.
 *
 * A target is a float (fp32/fp16) 2-D initializer W feeding exactly one node, as
 *   MatMul(A, W)                      W: [K, N]
 *   Gemm(A, W[, C]) with transA = 0   W: [K, N] (transB = 0) or [N, K] (transB = 1)
 * Everything else that looks like a weight is listed with the reason it is skipped, so the user sees
 * what stayed in float: shared or tied weights, embeddings, non-float or already quantized weights,
 * weights behind a Transpose, batched (3-D+) weights, names matching a `keep` pattern, K below one block.
 * Which table is the token embedding, which projection is the LM head and whether the two are tied come
 * from the architecture map (architecture.ts), and so does each target's role and block.
 */
import { dtypeName } from '../onnx/dtype.ts';
import { attrFloat, attrInt, consumerMap, initializerMap, producerMap, subgraphsOf, toNumber } from '../onnx/graph.ts';
import type { GraphProto, Int64, NodeProto, TensorProto } from '../onnx/proto-types.ts';
import { type ArchitectureMap, mapArchitecture } from './architecture.ts';

export type WeightRole = 'q' | 'k' | 'v' | 'o' | 'qkv' | 'gate' | 'up' | 'down' | 'fc1' | 'fc2' | 'lm_head' | 'other';

/** Where a weight sits in the model: its block (null outside the blocks) and its role there. */
export interface WeightPlace {
  block: number | null;
  role: WeightRole;
}

/** Every mapped weight's place; weights not in the map are { block: null, role: 'other' }. */
export function weightPlaces(map: ArchitectureMap): Map<string, WeightPlace> {
  const out = new Map<string, WeightPlace>();
  const put = (w: string | null, block: number | null, role: WeightRole): void => { if (w && !out.has(w)) out.set(w, { block, role }); };
  for (const b of map.blocks) {
    const a = b.attention;
    put(a.q, b.index, 'q'); put(a.k, b.index, 'k'); put(a.v, b.index, 'v'); put(a.qkv, b.index, 'qkv'); put(a.o, b.index, 'o');
    const gated = b.mlp.gate !== null;
    put(b.mlp.gate, b.index, 'gate');
    put(b.mlp.up, b.index, gated ? 'up' : 'fc1');
    put(b.mlp.down, b.index, gated ? 'down' : 'fc2');
  }
  put(map.lmHead, null, 'lm_head');
  return out;
}

export const placeOf = (places: Map<string, WeightPlace>, weight: string): WeightPlace => places.get(weight) ?? { block: null, role: 'other' };

export interface QuantTarget {
  /** Initializer name. */
  weight: string;
  node: NodeProto;
  op: 'MatMul' | 'Gemm';
  /** Shape as stored ([K, N], or [N, K] for Gemm transB = 1). */
  shape: number[];
  dtype: 'float32' | 'float16';
  k: number;
  n: number;
  /** Gemm transB = 1: the stored weight is [N, K] and is transposed before quantizing. */
  transposed: boolean;
  /** Gemm alpha, folded into the scales (1 for MatMul). */
  alpha: number;
  /** Block index from the architecture map (null outside the blocks); planTargets always sets it. */
  block?: number | null;
  /** Role from the architecture map; planTargets always sets it ('other' when the map has none). */
  role?: WeightRole;
}

export interface SkippedWeight {
  name: string;
  op: string;
  shape: number[];
  dtype: string;
  reason: string;
}

export interface TargetPlan {
  targets: QuantTarget[];
  skipped: SkippedWeight[];
  /** Nodes that already carry quantized weights (MatMulNBits, GatherBlockQuantized, DQ → MatMul). */
  alreadyQuantized: number;
}

export interface TargetOptions {
  blockSize: number;
  /** Regular expressions on initializer names; a match keeps the weight in float. */
  keep: RegExp[];
}

export const EMBEDDING_REASON = 'embeddings stay in float (GatherBlockQuantized comes later)';
export const POSITION_TABLE_REASON = 'a table indexed by computed positions, not by token ids (for example rotary cos/sin)';

/** The reasons a rewrite step adds on top of the graph's own: a keep pattern, K below one block. */
export function stepBlocker(weight: { name: string; k: number }, options: TargetOptions): string | null {
  const hit = options.keep.find((re) => re.test(weight.name));
  if (hit) return `kept in full precision: the name matches a keep pattern (${hit})`;
  if (weight.k < options.blockSize) return `K = ${weight.k} is smaller than one block (${options.blockSize})`;
  return null;
}

const ONNX_DOMAINS = new Set(['', 'ai.onnx']);
const QUANTIZED_OPS = new Set(['MatMulNBits', 'GatherBlockQuantized', 'MatMulInteger', 'QLinearMatMul', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat']);

const num = (v: Int64 | undefined): number => toNumber(v);

const isOnnxOp = (node: NodeProto, op: string): boolean => node.opType === op && ONNX_DOMAINS.has(node.domain ?? '');

function countSubgraphMatMuls(graph: GraphProto): number {
  let count = 0;
  for (const node of graph.node) {
    for (const g of subgraphsOf(node)) {
      count += g.node.filter((n) => isOnnxOp(n, 'MatMul') || isOnnxOp(n, 'Gemm')).length + countSubgraphMatMuls(g);
    }
  }
  return count;
}

/**
 * Chooses the MatMul/Gemm weights to quantize in the main graph and records why others are skipped.
 * `map` defaults to the graph's own architecture map.
 */
export function planTargets(graph: GraphProto, options: TargetOptions, map: ArchitectureMap = mapArchitecture(graph)): TargetPlan {
  const places = weightPlaces(map);
  const tokenTables = new Set([map.embedding, ...map.otherEmbeddings].filter((x): x is string => !!x));
  const tiedWeights = new Set([map.lmHead, map.tiedEmbedding ? map.embedding : null].filter((x): x is string => !!x));
  const inits = initializerMap(graph);
  const graphInputs = new Set(graph.input.map((v) => v.name));
  const graphOutputs = new Set(graph.output.map((v) => v.name));
  // A value read inside an If/Loop/Scan body counts as read by the node holding the body.
  const consumers = consumerMap(graph);
  const producer = producerMap(graph);

  const targets: QuantTarget[] = [];
  const skipped: SkippedWeight[] = [];
  const decided = new Set<string>();
  let alreadyQuantized = 0;

  const describe = (t: TensorProto) => ({ shape: t.dims.map(num), dtype: dtypeName(t.dataType) });
  const skip = (name: string, op: string, reason: string): void => {
    if (decided.has(name)) return;
    decided.add(name);
    const t = inits.get(name);
    skipped.push({ name, op, ...(t ? describe(t) : { shape: [], dtype: 'unknown' }), reason });
  };

  /** The reason W (feeding `node` as input `index`) cannot be rewritten, or null when it can. */
  const blocker = (name: string, t: TensorProto): string | null => {
    const kept = stepBlocker({ name, k: Number.MAX_SAFE_INTEGER }, options);
    if (kept) return kept;
    const dtype = dtypeName(t.dataType);
    if (dtype !== 'float32' && dtype !== 'float16') {
      return dtype === 'bfloat16' ? 'bfloat16 weights are not supported yet' : `weight type ${dtype} is not float (already quantized or integer)`;
    }
    if (t.dims.length !== 2) return `${t.dims.length}-D weight (batched MatMul); only 2-D weights are quantized`;
    const users = consumers.get(name) ?? [];
    if (users.length > 1) return `shared by ${users.length} nodes (${users.map((n) => n.opType ?? '?').join(', ')}); shared weights are kept`;
    if (graphInputs.has(name)) return 'also a graph input (may be overridden at run time)';
    if (graphOutputs.has(name)) return 'also a graph output';
    return null;
  };

  for (const node of graph.node) {
    if (QUANTIZED_OPS.has(node.opType ?? '')) { alreadyQuantized++; continue; }

    if (isOnnxOp(node, 'MatMul') || isOnnxOp(node, 'Gemm')) {
      const op = node.opType as 'MatMul' | 'Gemm';
      const b = node.input[1];
      const t = b ? inits.get(b) : undefined;
      if (!t) {
        const p = b ? producer.get(b) : undefined;
        if (p && isOnnxOp(p, 'Transpose') && inits.has(p.input[0])) {
          const w = p.input[0];
          const shared = (consumers.get(w)?.length ?? 0) > 1 ? `; also used by ${consumers.get(w)!.filter((c) => c !== p).map((c) => c.opType).join(', ')}` : '';
          skip(w, op, `weight behind a Transpose${tiedWeights.has(w) ? ' (tied embeddings)' : ''}${shared}`);
        } else if (p && isOnnxOp(p, 'DequantizeLinear')) {
          alreadyQuantized++;
        } else if (p && isOnnxOp(p, 'Constant')) {
          skip(b, op, 'weight is the output of a Constant node, not an initializer');
        }
        continue;
      }
      if (decided.has(b)) continue;
      const shape = t.dims.map(num);
      const reason = blocker(b, t);
      if (reason) { skip(b, op, reason); continue; }

      let transposed = false;
      let alpha = 1;
      if (op === 'Gemm') {
        if (attrInt(node, 'transA', 0) !== 0) { skip(b, op, 'Gemm with transA = 1 is not rewritten'); continue; }
        transposed = attrInt(node, 'transB', 0) !== 0;
        alpha = attrFloat(node, 'alpha', 1);
      }
      const [k, n] = transposed ? [shape[1], shape[0]] : [shape[0], shape[1]];
      const small = stepBlocker({ name: b, k }, { ...options, keep: [] });
      if (small) { skip(b, op, small); continue; }
      if (k === 0 || n === 0) { skip(b, op, 'empty weight'); continue; }
      decided.add(b);
      targets.push({ weight: b, node, op, shape, dtype: dtypeName(t.dataType) as 'float32' | 'float16', k, n, transposed, alpha, ...placeOf(places, b) });
      continue;
    }

    if (isOnnxOp(node, 'Gather') && inits.has(node.input[0])) {
      const w = node.input[0];
      const uses = consumers.get(w)?.length ?? 0;
      const base = tokenTables.has(w) ? EMBEDDING_REASON : POSITION_TABLE_REASON;
      skip(w, 'Gather', uses > 1 ? `${base}; shared by ${uses} nodes (${consumers.get(w)!.map((c) => c.opType).join(', ')})` : base);
      continue;
    }

    if (node.opType === 'Attention' && node.domain === 'com.microsoft' && inits.has(node.input[1])) {
      skip(node.input[1], 'Attention', 'fused com.microsoft.Attention QKV weight (not a MatMul input)');
    }
  }

  const inner = countSubgraphMatMuls(graph);
  if (inner > 0) skipped.push({ name: '(subgraphs)', op: 'MatMul', shape: [], dtype: '', reason: `${inner} MatMul/Gemm node(s) inside If/Loop/Scan bodies are not rewritten` });

  return { targets, skipped, alreadyQuantized };
}

/** One row of the inspection's weight list: a MatMul/Gemm/Gather weight as one consumer reads it. */
export interface EligibleWeight {
  name: string;
  node: string;
  op: 'MatMul' | 'Gemm' | 'Gather';
  shape: number[];
  dtype: string;
  /** Input features K and output features N of a MatMul/Gemm weight (transB taken into account). */
  k?: number;
  n?: number;
  block: number | null;
  role: WeightRole;
  skipReason?: string;
}

/**
 * The weights of the main graph in node order, each with the reason it cannot be rewritten (from
 * planTargets, without any step's keep patterns or block size: stepBlocker adds those). The size estimate
 * reads these rows, the rewrite calls planTargets: one decision for both.
 */
export function eligibleWeights(graph: GraphProto, map: ArchitectureMap = mapArchitecture(graph)): EligibleWeight[] {
  const plan = planTargets(graph, { blockSize: 1, keep: [] }, map);
  const places = weightPlaces(map);
  const targets = new Map(plan.targets.map((t) => [t.weight, t]));
  const skipped = new Map(plan.skipped.map((s) => [s.name, s]));
  const inits = initializerMap(graph);
  const producer = producerMap(graph);
  const rows: EligibleWeight[] = [];
  const label = (n: NodeProto): string => n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`;
  for (const node of graph.node) {
    const op = node.opType as EligibleWeight['op'];
    if ((op !== 'MatMul' && op !== 'Gemm' && op !== 'Gather') || !ONNX_DOMAINS.has(node.domain ?? '')) continue;
    let name = node.input[op === 'Gather' ? 0 : 1];
    let via: NodeProto | undefined;
    if (!inits.has(name)) {
      via = producer.get(name);
      if (!via || op === 'Gather' || !(isOnnxOp(via, 'Transpose') || isOnnxOp(via, 'DequantizeLinear') || isOnnxOp(via, 'Cast') || isOnnxOp(via, 'Identity')) || !inits.has(via.input[0])) continue;
      name = via.input[0];
    }
    const t = inits.get(name)!;
    const base = { name, node: label(node), op, shape: t.dims.map(num), dtype: dtypeName(t.dataType), ...placeOf(places, name) };
    const target = targets.get(name);
    if (target && !via) { rows.push({ ...base, k: target.k, n: target.n }); continue; }
    const tied = map.tiedEmbedding && name === map.embedding && name === map.lmHead;
    const reason = via && isOnnxOp(via, 'DequantizeLinear') ? `already quantized (DequantizeLinear of ${dtypeName(t.dataType)})`
      : via && isOnnxOp(via, 'Transpose') ? `weight behind a Transpose${tied ? ' (tied embeddings: the LM head reads the embedding table)' : ''}`
        : via ? `reached through a ${via.opType} of '${name}'`
          : skipped.get(name)?.reason ?? 'not rewritten';
    rows.push({ ...base, skipReason: reason });
  }
  return rows;
}
