/**
 * How sequential calibration cuts a model: the compression targets in dependency order ("levels") and,
 * between two levels, the part of the graph ("segment") that turns the outputs of the already-compressed
 * weights into the inputs of the next ones.
 *
 * Sequential ("true-sequential") calibration, as in GPTQ (arXiv 2210.17323, §4 and its code) and SparseGPT
 * (arXiv 2301.00774): compress the first weights from statistics of their inputs, then run the calibration
 * data through the *compressed* weights to get the next weights' inputs, and so on, so that later weights
 * compensate the errors of earlier ones. One pass over the original model cannot do that.
 *
 * Everything here is derived from the dataflow, not from names:
 *   hidden tensor  a value that depends on the token ids' values (not only on their shape): the residual
 *                  stream and everything computed from it. Shape/Size outputs are not hidden; neither are
 *                  attention masks, position ids, rotary tables or empty caches, which are the same for
 *                  every calibration batch (fixed batch and length, all-ones mask, positions 0..L−1).
 *   level          of a target weight W read as MatMul(X, W): 1 + the highest level among the targets X
 *                  depends on (0 when none). In a Llama block: q, k, v → level ℓ; o → ℓ+1; gate, up → ℓ+2;
 *                  down → ℓ+3; the next block's q, k, v → ℓ+4. Weights of one level share no dependency,
 *                  so they are compressed together from one pass.
 *   segment s      the hidden nodes whose value depends on level-s weights but on no later level (s = −1: on
 *                  none, e.g. the embedding), plus the non-hidden nodes they need (recomputed: they are
 *                  cheap and identical for every batch). Its inputs are hidden tensors made by earlier
 *                  segments ("boundary" tensors: the residual stream, and inside a block the values a later
 *                  residual Add reads), graph inputs and initializers; its outputs are the boundary tensors
 *                  later segments read, which include the inputs of the level s+1 weights.
 * Running segment −1, compressing level 0, running segment 0, compressing level 1, … touches every node
 * once, so sequential calibration costs about one forward pass over the calibration data, and memory holds
 * only the boundary tensors in flight (samples × length × width of a few tensors) and one level's
 * statistics.
 */
import { WhittleError } from '../errors.ts';
import { nodeReads, producerMap } from '../onnx/graph.ts';
import type { GraphProto, NodeProto } from '../onnx/proto-types.ts';

/** A weight to compress: a MatMul/Gemm node whose input 1 is the initializer `weight` (planTargets' QuantTarget fits). */
export interface SegmentTarget {
  weight: string;
  node: NodeProto;
}

export interface Segment {
  /** The level whose weights this segment applies: −1 for the part before the first targets. */
  level: number;
  /** The nodes to run, in graph order. */
  nodes: NodeProto[];
  /** Original graph inputs the nodes read (token ids, mask, positions, past cache …). */
  graphInputs: string[];
  /** Hidden tensors made by earlier segments. */
  boundaryInputs: string[];
  /** Initializers the nodes read (target weights among them are fed with their compressed values). */
  initializers: string[];
  /** Tensors this segment must produce: the boundary tensors later segments read. */
  outputs: string[];
}

export interface SegmentPlan<T extends SegmentTarget = SegmentTarget> {
  /** levels[ℓ]: the targets compressed at level ℓ, in graph order. */
  levels: T[][];
  /** segments[i] has level i − 1; the last level's segment is not needed (nothing after it is compressed). */
  segments: Segment[];
  /** For each level ℓ, the activation (input 0 of the MatMul/Gemm) of each of its targets. */
  activations: Map<string, string>;
  /** Tensor → index of the last segment that reads it as a boundary input (when it can be dropped). */
  lastUse: Map<string, number>;
}

/** Ops whose output depends only on the shape of their input, never on its values. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

const describe = (n: NodeProto): string => n.name || `${n.opType ?? '?'}(${n.output[0] ?? ''})`;

/**
 * Plans sequential calibration of `targets` in `graph` (the main graph, nodes in topological order, as
 * ONNX requires). `hiddenSeeds` are the graph inputs whose values carry the tokens (input_ids; an encoder's
 * inputs_embeds). Throws INVALID_INPUT when a target's activation does not depend on the seeds.
 */
export function planSegments<T extends SegmentTarget>(graph: GraphProto, targets: readonly T[], hiddenSeeds: readonly string[]): SegmentPlan<T> {
  const byNode = new Map<NodeProto, T>(targets.map((t) => [t.node, t]));
  const hidden = new Set<string>(hiddenSeeds);
  const level = new Map<string, number>(); // tensor → level (absent: −1)
  const nodeLevel = new Map<NodeProto, number>();
  const nodeHidden = new Set<NodeProto>();
  const targetLevel = new Map<T, number>();

  for (const node of graph.node) {
    const reads = nodeReads(node);
    let m = -1;
    for (const r of reads) m = Math.max(m, level.get(r) ?? -1);
    const target = byNode.get(node);
    if (target) {
      m += 1;
      targetLevel.set(target, m);
    }
    nodeLevel.set(node, m);
    const isHidden = !SHAPE_ONLY.has(node.opType ?? '') && reads.some((r) => hidden.has(r));
    if (isHidden) nodeHidden.add(node);
    for (const o of node.output) {
      if (!o) continue;
      if (m >= 0) level.set(o, m);
      if (isHidden) hidden.add(o);
    }
  }

  const activations = new Map<string, string>();
  const levels: T[][] = [];
  for (const t of targets) {
    const l = targetLevel.get(t);
    if (l === undefined) throw new WhittleError('INTERNAL', `Target ${t.weight} is not in the main graph.`);
    const activation = t.node.input[0] ?? '';
    if (!hidden.has(activation)) {
      throw new WhittleError('INVALID_INPUT', `The input of ${describe(t.node)} (weight ${t.weight}) does not depend on the token ids, so sequential calibration cannot reach it. Use one-pass calibration for this model.`, { weight: t.weight });
    }
    activations.set(t.weight, activation);
    (levels[l] ??= []).push(t);
  }

  const producer = producerMap(graph);
  const initializers = new Set(graph.initializer.map((t) => t.name ?? ''));
  const graphInputs = new Set(graph.input.map((v) => v.name ?? ''));
  const order = new Map(graph.node.map((n, i) => [n, i]));

  /** The nodes needed to compute `roots` in segment `s`, stopping at hidden tensors of earlier segments. */
  const closure = (s: number, roots: Iterable<string>): Omit<Segment, 'outputs' | 'level'> => {
    const nodes = new Set<NodeProto>();
    const inputs = new Set<string>();
    const boundary = new Set<string>();
    const inits = new Set<string>();
    const seen = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const t = stack.pop() as string;
      if (seen.has(t)) continue;
      seen.add(t);
      const p = producer.get(t);
      if (!p) {
        if (initializers.has(t)) inits.add(t);
        else if (graphInputs.has(t)) inputs.add(t);
        else throw new WhittleError('MODEL_PARSE', `Tensor '${t}' is read but nothing in the main graph defines it.`, { tensor: t });
        continue;
      }
      if (nodeHidden.has(p)) {
        const pl = nodeLevel.get(p) as number;
        if (pl < s) { boundary.add(t); continue; }
        if (pl > s) throw new WhittleError('INTERNAL', `Sequential calibration: ${describe(p)} (level ${pl}) is needed before level ${s}.`);
      }
      if (nodes.has(p)) continue;
      nodes.add(p);
      for (const r of nodeReads(p)) stack.push(r);
    }
    return {
      nodes: [...nodes].sort((a, b) => (order.get(a) as number) - (order.get(b) as number)),
      graphInputs: [...inputs].sort(),
      boundaryInputs: [...boundary].sort(),
      initializers: [...inits].sort(),
    };
  };

  // Backwards from the last segment that runs (level L−2): a segment outputs what later ones read.
  const L = levels.length;
  const segments: Segment[] = new Array<Segment>(Math.max(0, L));
  const wanted = new Map<string, number>(); // boundary tensor → its first reader's segment index
  const lastUse = new Map<string, number>();
  for (let s = L - 2; s >= -1; s--) {
    const produced = new Set<string>();
    for (const t of levels[s + 1]) produced.add(activations.get(t.weight) as string);
    for (const [tensor] of wanted) {
      const p = producer.get(tensor);
      if (p && nodeHidden.has(p) && nodeLevel.get(p) === s) produced.add(tensor);
    }
    // A graph input (e.g. inputs_embeds) read as an activation is produced by segment −1 as a copy.
    const outputs = [...produced].sort();
    const c = closure(s, outputs);
    segments[s + 1] = { level: s, ...c, outputs };
    for (const b of c.boundaryInputs) {
      wanted.set(b, s + 1);
      if (!lastUse.has(b)) lastUse.set(b, s + 1);
    }
    for (const o of outputs) wanted.delete(o);
  }
  if (wanted.size > 0) {
    throw new WhittleError('INTERNAL', `Sequential calibration: no segment produces ${[...wanted.keys()].slice(0, 3).join(', ')}.`);
  }
  return { levels, segments: segments.slice(0, Math.max(0, L)), activations, lastUse };
}
