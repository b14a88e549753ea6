/**
 * Contrib ops → standard ONNX ops, in the main graph of a training view (TRAINING.md: contrib ops are
 * decomposed before differentiation). Each op has one small decomposition (rule.ts) emitting standard
 * ops with static shapes into a DecomposeBuilder; this walker replaces the node by those nodes, names
 * their results as the node's own outputs, and records the meta of every tensor it creates.
 *
 * Nodes whose form a rule does not handle (and ops without a rule) stay as they are, listed in `kept`;
 * the caller decides whether that is acceptable. The default-domain opset is raised to 17 when lower
 * (LayerNormalization is emitted), which is refused for graphs below opset 13 that hold ops whose
 * signature changed at 13.
 */
import { WhittleError } from '../../errors.ts';
import { ensureOpset, makeNode, NameScope, opsetVersion, qualifiedOpType, replaceNode } from '../../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto } from '../../onnx/proto-types.ts';
import type { MetaMap } from '../autodiff/types.ts';
import { attention, groupQueryAttention, multiHeadAttention } from './attention.ts';
import { DecomposeBuilder, NotDecomposable } from './builder.ts';
import { biasGelu, fastGelu, gelu } from './gelu.ts';
import { contribLayerNorm, embedLayerNorm, simplifiedLayerNorm, skipLayerNorm, skipSimplifiedLayerNorm } from './norms.ts';
import { rotaryEmbedding } from './rotary.ts';
import type { Decomposition } from './rule.ts';

/** Decompositions by qualified op type ('com.microsoft.X'; onnxruntime registers the simplified norm in the default domain too). */
export const DECOMPOSITIONS: ReadonlyMap<string, Decomposition> = new Map([
  ['com.microsoft.RotaryEmbedding', rotaryEmbedding],
  ['SimplifiedLayerNormalization', simplifiedLayerNorm],
  ['com.microsoft.SimplifiedLayerNormalization', simplifiedLayerNorm],
  ['com.microsoft.SkipSimplifiedLayerNormalization', skipSimplifiedLayerNorm],
  ['com.microsoft.SkipLayerNormalization', skipLayerNorm],
  ['com.microsoft.LayerNormalization', contribLayerNorm],
  ['com.microsoft.EmbedLayerNormalization', embedLayerNorm],
  ['com.microsoft.Attention', attention],
  ['com.microsoft.MultiHeadAttention', multiHeadAttention],
  ['com.microsoft.GroupQueryAttention', groupQueryAttention],
  ['com.microsoft.FastGelu', fastGelu],
  ['com.microsoft.BiasGelu', biasGelu],
  ['com.microsoft.Gelu', gelu],
]);

export interface DecomposeResult {
  /** Replaced nodes per op type. */
  replaced: Record<string, number>;
  /** Contrib nodes left in place, with the reason. */
  kept: { node: string; opType: string; reason: string }[];
}

const TARGET_OPSET = 17;
/** Default-domain ops whose inputs/attributes changed at opset 13: raising a graph past 13 would change them. */
const CHANGED_AT_13 = new Set(['Split', 'Squeeze', 'Unsqueeze', 'ReduceSum', 'Softmax', 'LogSoftmax', 'Hardmax']);

function describe(node: NodeProto): string {
  return node.name || `${node.opType ?? '?'}(${node.output[0] ?? ''})`;
}

function raiseOpset(model: ModelProto, graph: GraphProto): number {
  const opset = opsetVersion(model, '') ?? 1;
  if (opset >= TARGET_OPSET) return opset;
  if (opset < 13) {
    const blocking = graph.node.filter((n) => (n.domain ?? '') === '' && CHANGED_AT_13.has(n.opType ?? ''));
    if (blocking.length > 0) {
      throw new WhittleError('UNSUPPORTED_MODEL',
        `The model is exported at opset ${opset} and holds ${blocking[0].opType} nodes, whose form changed at opset 13; training needs opset 17. Export the model again at opset 17 or later.`,
        { opset, op: blocking[0].opType });
    }
  }
  return ensureOpset(model, '', TARGET_OPSET);
}

/**
 * Names the rule's results as the node's outputs: the node emitting a result gets the output's name
 * (and later emitted nodes read it under that name); a result not emitted here (an input passed
 * through) or already named is copied by an Identity. Throws INTERNAL when a result's shape differs from
 * the probed shape of the output it stands for.
 */
function bindOutputs(node: NodeProto, produced: string[], b: DecomposeBuilder): void {
  const renamed = new Map<string, string>();
  node.output.forEach((out, i) => {
    if (out === '') return;
    const t = produced[i] ?? '';
    if (t === '') throw new NotDecomposable(`output ${i} (${out}) is not produced`);
    const got = b.metaOf(t);
    const want = b.meta.get(out);
    if (want && (want.dtype !== got.dtype || want.shape.length !== got.shape.length || want.shape.some((d, j) => d !== got.shape[j]))) {
      throw new WhittleError('INTERNAL', `Decomposing ${describe(node)}: output '${out}' came out as [${got.shape.join(', ')}] (dtype ${got.dtype}) but the model gives [${want.shape.join(', ')}] (dtype ${want.dtype}).`);
    }
    const emitter = b.nodes.find((n) => n.output.includes(t));
    const source = renamed.get(t) ?? t;
    if (!emitter || renamed.has(t)) {
      b.nodes.push(makeNode({ opType: 'Identity', inputs: [source], outputs: [out], name: b.fresh('Identity_node') }));
    } else {
      emitter.output = emitter.output.map((o) => (o === t ? out : o));
      for (const n of b.nodes) n.input = n.input.map((x) => (x === t ? out : x));
      renamed.set(t, out);
      b.meta.delete(t);
    }
    b.meta.set(out, { dtype: got.dtype, shape: [...got.shape] });
  });
}

/**
 * Replaces, in the main graph of `model`, each contrib op that has a decomposition by standard ops
 * (in place). `meta` must hold the static dtype and shape of every tensor (probe.ts); the meta of every
 * created tensor is added to it.
 */
export function decomposeContribOps(model: ModelProto, meta: MetaMap): DecomposeResult {
  const graph = model.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.');
  const result: DecomposeResult = { replaced: {}, kept: [] };
  const targets = graph.node.filter((n) => DECOMPOSITIONS.has(qualifiedOpType(n)));
  for (const n of graph.node) {
    if ((n.domain ?? '') === 'com.microsoft' && !DECOMPOSITIONS.has(qualifiedOpType(n))) result.kept.push({ node: describe(n), opType: n.opType ?? '', reason: 'no decomposition for this op' });
  }
  if (targets.length === 0) return result;
  const opset = raiseOpset(model, graph);
  const b = new DecomposeBuilder(graph, meta, NameScope.fromModel(model), opset);
  for (const node of targets) {
    const rule = DECOMPOSITIONS.get(qualifiedOpType(node))!;
    b.begin(node.name || `${node.opType ?? 'op'}_${node.output[0] ?? ''}`);
    try {
      bindOutputs(node, rule(node, b), b);
    } catch (e) {
      b.rollback();
      if (!(e instanceof NotDecomposable)) throw e;
      result.kept.push({ node: describe(node), opType: node.opType ?? '', reason: e.message });
      continue;
    }
    replaceNode(graph, node, b.nodes);
    result.replaced[node.opType ?? ''] = (result.replaced[node.opType ?? ''] ?? 0) + 1;
  }
  return result;
}

export { DecomposeBuilder, NotDecomposable } from './builder.ts';
export type { Decomposition } from './rule.ts';
