/**
 * Structured pruning, the plan (STYLE "Graph surgery"): which attention heads, MLP neurons or whole
 * blocks go, computed from the architecture map and importance scores alone — no ONNX is touched, so
 * the plan is printable and testable on its own. structured-apply.ts carries it out on the graph.
 *
 * Heads go by KV group: with grouped-query attention (heads = G · kvHeads) a KV head and the G query
 * heads that read it leave together, so every remaining query head still finds its KV head and the
 * q→kv mapping (query head h reads KV head ⌊h / G⌋) stays valid. With plain multi-head attention G = 1.
 * A head count is therefore a multiple of G. Neurons are MLP hidden units (a gate/up column and the down
 * row they feed). The same number of heads or neurons is removed from every block (the lowest scores
 * of each block), so the config files can still describe the model; blocks are ranked across the model.
 */
import type { PruneStructuredStep } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import type { ArchitectureBlock, ArchitectureMap } from '../rewrite/architecture.ts';

export type StructuredTarget = PruneStructuredStep['target'];

/** What the plan needs from a step: the target, how much, and names to keep. */
export interface StructuredRequest {
  target: StructuredTarget;
  ratio?: number | undefined;
  count?: number | undefined;
  keep?: readonly string[] | undefined;
}

/** The parts of one block that go (KV-group or neuron indices, ascending) and how many it had. */
export interface BlockCut {
  block: number;
  /** heads: KV-group indices; neurons: hidden-unit indices. */
  remove: number[];
  /** KV groups or neurons the block had. */
  of: number;
  /** Parameters the cut removes from the block. */
  params: number;
}

export interface StructuredPlan {
  target: StructuredTarget;
  /** heads / neurons: per pruned block. */
  cuts: BlockCut[];
  /** layers: the blocks removed, ascending, and the parameters each takes with it. */
  layers: number[];
  layerParams: number[];
  /** Query heads per KV group (heads only). */
  groupSize: number;
  /** Parameters (weight and bias elements) the plan removes, from the weight shapes. */
  removedParameters: number;
  /** One line per block, for logs and reports. */
  lines: string[];
}

/** Shapes of the model's initializers (name → dims). */
export type ShapeOf = (name: string) => number[] | null;

const elements = (dims: number[] | null): number => (dims ? dims.reduce((a, b) => a * b, 1) : 0);

function compileKeep(keep: readonly string[] | undefined): RegExp[] {
  return (keep ?? []).map((k) => {
    try { return new RegExp(k); } catch (e) {
      throw new WhittleError('INVALID_INPUT', `The keep pattern '${k}' is not a valid regular expression: ${(e as Error).message}`, { pattern: k });
    }
  });
}

const kept = (names: (string | null)[], keep: RegExp[]): boolean => names.some((n) => n !== null && keep.some((r) => r.test(n)));

function headWeights(b: ArchitectureBlock): (string | null)[] {
  const a = b.attention;
  return [a.q, a.k, a.v, a.o, a.biases.q, a.biases.k, a.biases.v];
}

function neuronWeights(b: ArchitectureBlock): (string | null)[] {
  const m = b.mlp;
  return [m.gate, m.up, m.down, m.biases.gate, m.biases.up];
}

/** How many of `of` parts a ratio or count removes; a clear error when nothing or everything would go. */
function howMany(req: StructuredRequest, of: number, what: string, unit = 1): number {
  if ((req.ratio === undefined) === (req.count === undefined)) {
    throw new WhittleError('INVALID_INPUT', 'Structured pruning needs exactly one of ratio (a fraction, e.g. 0.25) or count (how many parts).');
  }
  if (req.ratio !== undefined) {
    if (!(req.ratio > 0 && req.ratio < 1)) throw new WhittleError('INVALID_INPUT', `The ratio must be between 0 and 1 (exclusive); got ${req.ratio}.`, { ratio: req.ratio });
    const n = Math.round(req.ratio * of);
    if (n < 1) throw new WhittleError('INVALID_INPUT', `A ratio of ${req.ratio} removes none of the ${of} ${what}; give a larger ratio or a count.`, { ratio: req.ratio });
    if (n >= of) throw new WhittleError('INVALID_INPUT', `A ratio of ${req.ratio} would remove all ${of} ${what}; give a smaller ratio.`, { ratio: req.ratio });
    return n;
  }
  const count = req.count!;
  if (!Number.isInteger(count) || count < 1) throw new WhittleError('INVALID_INPUT', `The count must be a whole number ≥ 1; got ${count}.`, { count });
  if (count % unit !== 0) {
    throw new WhittleError('INVALID_INPUT', `Heads go by KV group of ${unit} (grouped-query attention); a count of ${count} heads is not a multiple of ${unit}.`, { count, groupSize: unit });
  }
  if (count / unit >= of) {
    throw new WhittleError('INVALID_INPUT', `A count of ${count} would remove all ${of * unit} ${what} (the count must be below that); give a smaller count.`, { count });
  }
  return count / unit;
}

/**
 * Checks that the model can be pruned structurally for `req` and returns how many parts go per block
 * (heads: KV groups; neurons; layers: blocks). Runs before any work; every failure is a typed error.
 */
export function checkStructured(map: ArchitectureMap, req: StructuredRequest): { perBlock: number; groupSize: number } {
  if (map.family === 'unknown' || map.blocks.length === 0) {
    const why = map.issues.length ? map.issues.slice(0, 4).join('; ') : 'no transformer blocks were found';
    throw new WhittleError('UNSUPPORTED_MODEL', `Structured pruning needs the model's architecture, which could not be mapped: ${why}.`, { issues: map.issues });
  }
  const blocks = map.blocks;
  if (req.target === 'layers') {
    const bad = blocks.filter((b) => !b.residual.input || !b.residual.attentionJoin || !b.residual.mlpJoin);
    if (bad.length) throw new WhittleError('UNSUPPORTED_MODEL', `Block ${bad[0].index}'s residual joins were not found, so it cannot be bypassed.`, { block: bad[0].index });
    return { perBlock: howMany(req, blocks.length, 'blocks'), groupSize: 1 };
  }
  if (req.target === 'neurons') {
    for (const b of blocks) {
      const m = b.mlp;
      if (!m.up || !m.down || !m.intermediate) throw new WhittleError('UNSUPPORTED_MODEL', `Block ${b.index}'s MLP projections (up and down) were not recognised, so its neurons cannot be removed.`, { block: b.index });
    }
    const widths = new Set(blocks.map((b) => b.mlp.intermediate));
    if (widths.size > 1) throw new WhittleError('UNSUPPORTED_MODEL', `The blocks' MLPs have different widths (${[...widths].join(', ')}); neuron pruning needs one width.`);
    return { perBlock: howMany(req, blocks[0].mlp.intermediate!, 'neurons of each MLP'), groupSize: 1 };
  }
  for (const b of blocks) {
    const a = b.attention;
    if (a.qkv) throw new WhittleError('UNSUPPORTED_MODEL', `Block ${b.index} has a fused QKV projection (${a.qkv}); head pruning needs separate q, k and v projections.`, { block: b.index });
    if (!a.q || !a.k || !a.v || !a.o || !a.heads || !a.kvHeads || !a.headSize) {
      throw new WhittleError('UNSUPPORTED_MODEL', `Block ${b.index}'s attention (q, k, v, o and head counts) was not fully recognised, so its heads cannot be removed.`, { block: b.index });
    }
  }
  const a0 = blocks[0].attention;
  if (blocks.some((b) => b.attention.heads !== a0.heads || b.attention.kvHeads !== a0.kvHeads)) {
    throw new WhittleError('UNSUPPORTED_MODEL', 'The blocks have different head counts; head pruning needs the same heads in every block.');
  }
  const groupSize = a0.heads! / a0.kvHeads!;
  const groups = req.ratio !== undefined ? howMany(req, a0.kvHeads!, 'KV groups of heads of each block') : howMany(req, a0.kvHeads!, 'heads of each block', groupSize);
  return { perBlock: groups, groupSize };
}

/** Indices of the `n` lowest scores (ties: the lower index first), ascending. */
export function lowest(scores: readonly number[], n: number): number[] {
  const order = scores.map((s, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
  return order.slice(0, n).sort((a, b) => a - b);
}

/** Parameters one KV group holds in block `b`: G query heads of q and o, one head of k and v, their biases. */
function groupParameters(b: ArchitectureBlock, groupSize: number, shapeOf: ShapeOf): number {
  const a = b.attention;
  const d = a.headSize!;
  const hidden = shapeOf(a.q!)![0];
  const out = shapeOf(a.o!)![1];
  let n = groupSize * d * hidden + 2 * d * hidden + groupSize * d * out;
  if (a.biases.q) n += groupSize * d;
  if (a.biases.k) n += d;
  if (a.biases.v) n += d;
  return n;
}

/** Parameters one neuron holds: a gate and an up column (and bias entries), a down row. */
function neuronParameters(b: ArchitectureBlock, shapeOf: ShapeOf): number {
  const m = b.mlp;
  let n = shapeOf(m.up!)![0] + shapeOf(m.down!)![1];
  if (m.gate) n += shapeOf(m.gate)![0];
  if (m.biases.up) n += 1;
  if (m.biases.gate) n += 1;
  return n;
}

/**
 * The plan: per block (heads, neurons) the parts with the lowest `scores[block][part]`, or (layers) the
 * blocks with the lowest `scores[block][0]`. Blocks whose weights match a keep pattern are not touched.
 */
export function planStructured(map: ArchitectureMap, req: StructuredRequest, scores: number[][], shapeOf: ShapeOf): StructuredPlan {
  const { perBlock, groupSize } = checkStructured(map, req);
  const keep = compileKeep(req.keep);
  const plan: StructuredPlan = { target: req.target, cuts: [], layers: [], layerParams: [], groupSize, removedParameters: 0, lines: [] };
  if (req.target === 'layers') {
    const candidates = map.blocks.filter((b) => !kept(b.weights, keep)).map((b) => b.index);
    if (candidates.length < perBlock) throw new WhittleError('INVALID_INPUT', `Only ${candidates.length} blocks are not kept by the keep patterns; ${perBlock} were to be removed.`);
    const order = candidates.sort((x, y) => scores[x][0] - scores[y][0] || x - y);
    plan.layers = order.slice(0, perBlock).sort((x, y) => x - y);
    // Weights a kept block also reads (tied across blocks) stay; each removed weight counts once.
    const stay = new Set(map.blocks.filter((b) => !plan.layers.includes(b.index)).flatMap((b) => b.weights));
    const counted = new Set<string>();
    for (const i of plan.layers) {
      let params = 0;
      for (const w of map.blocks[i].weights) {
        if (stay.has(w) || counted.has(w)) continue;
        counted.add(w);
        params += elements(shapeOf(w));
      }
      plan.layerParams.push(params);
      plan.removedParameters += params;
      plan.lines.push(`block ${i}: removed (importance ${scores[i][0].toPrecision(4)})`);
    }
    return plan;
  }
  for (const b of map.blocks) {
    const names = req.target === 'heads' ? headWeights(b) : neuronWeights(b);
    if (kept(names, keep)) { plan.lines.push(`block ${b.index}: kept (keep pattern)`); continue; }
    const of = req.target === 'heads' ? b.attention.kvHeads! : b.mlp.intermediate!;
    const s = scores[b.index];
    if (!s || s.length !== of) throw new WhittleError('INTERNAL', `Block ${b.index} has ${s?.length ?? 0} importance scores for ${of} parts.`);
    const remove = lowest(s, perBlock);
    const each = req.target === 'heads' ? groupParameters(b, groupSize, shapeOf) : neuronParameters(b, shapeOf);
    plan.cuts.push({ block: b.index, remove, of, params: remove.length * each });
    plan.removedParameters += remove.length * each;
    const what = req.target === 'heads' ? `KV group${remove.length > 1 ? 's' : ''} ${remove.join(', ')} (${remove.length * groupSize} of ${of * groupSize} heads)` : `${remove.length} of ${of} neurons`;
    plan.lines.push(`block ${b.index}: ${what} removed`);
  }
  return plan;
}
