/**
 * Reverse-mode differentiation of a static-shape ONNX graph into standard ONNX ops (opset ≥ 17).
 *
 * 1. The differentiable region: float tensors on a path from some `wrt` tensor to some seeded tensor.
 *    Integer and boolean tensors (shapes, masks, ids) and the outputs of NON_DIFFERENTIABLE ops carry
 *    no gradient, so Shape → Gather → Concat → Reshape arithmetic is never visited. Two exceptions for
 *    fake quantization: QuantizeLinear's integer output (and a Clip of it) carries its
 *    straight-through gradient (STRAIGHT_THROUGH), and ops listed in GRADIENT_INPUTS are followed back through those inputs only
 *    (a scale computed from the weight in the graph is not).
 * 2. The region's nodes in reverse topological order: each node's output gradients (the sum of every
 *    consumer's contribution — a weight used twice, like a tied embedding, gets an Add) go through the
 *    op's rule (rules/index.ts), which emits the input gradients of the inputs in the region only.
 * 3. Each `wrt` gets its summed gradient; one that no seed reaches gets zeros and is listed in
 *    `unreached`.
 */
import { WhittleError } from '../../errors.ts';
import { isFloatDtype } from '../../onnx/dtype.ts';
import type { GraphProto, NodeProto } from '../../onnx/proto-types.ts';
import { GradBuilder, MIN_OPSET, sameShape } from './builder.ts';
import { GRADIENT_INPUTS, NON_DIFFERENTIABLE, RULES, STRAIGHT_THROUGH, STRAIGHT_THROUGH_PASS, type Grad, type RuleContext } from './rules/index.ts';
import type { DifferentiateRequest, DifferentiateResult, MetaMap } from './types.ts';

const isDefaultDomain = (d: string | undefined): boolean => d === undefined || d === '' || d === 'ai.onnx';

function opName(node: NodeProto): string {
  return isDefaultDomain(node.domain) ? (node.opType ?? '') : `${node.domain}.${node.opType ?? ''}`;
}

function carriesGradient(node: NodeProto): boolean {
  return !(isDefaultDomain(node.domain) && NON_DIFFERENTIABLE.has(node.opType ?? ''));
}

/** The tensors on a path from `wrt` to a seeded tensor, and the nodes that connect them. */
export function differentiableRegion(graph: GraphProto, meta: MetaMap, wrt: readonly string[], seedTensors: readonly string[]): { tensors: Set<string>; nodes: NodeProto[] } {
  const straightThrough = new Set<string>();
  for (const node of graph.node) {
    if (!isDefaultDomain(node.domain)) continue;
    const op = node.opType ?? '';
    if (STRAIGHT_THROUGH.has(op) || (STRAIGHT_THROUGH_PASS.has(op) && straightThrough.has(node.input[0]))) for (const o of node.output) straightThrough.add(o);
  }
  const isFloat = (name: string): boolean => name !== '' && (isFloatDtype(meta.get(name)?.dtype) || straightThrough.has(name));
  const followed = (node: NodeProto, i: number): boolean => {
    const only = isDefaultDomain(node.domain) ? GRADIENT_INPUTS.get(node.opType ?? '') : undefined;
    return only === undefined || only.includes(i);
  };
  const forward = new Set(wrt.filter(isFloat));
  for (const node of graph.node) {
    if (!carriesGradient(node)) continue;
    if (node.input.some((i, j) => forward.has(i) && followed(node, j))) for (const o of node.output) if (isFloat(o)) forward.add(o);
  }
  const backward = new Set(seedTensors.filter(isFloat));
  for (let k = graph.node.length - 1; k >= 0; k--) {
    const node = graph.node[k];
    if (!carriesGradient(node)) continue;
    if (node.output.some((o) => backward.has(o))) node.input.forEach((i, j) => { if (isFloat(i) && followed(node, j)) backward.add(i); });
  }
  const tensors = new Set([...forward].filter((t) => backward.has(t)));
  const nodes = graph.node.filter((n) => carriesGradient(n) && n.output.some((o) => tensors.has(o)) && n.input.some((i) => tensors.has(i)));
  return { tensors, nodes };
}

/** Nodes on the differentiable path whose op has no backward rule (empty when the graph can be trained). */
export function findUndifferentiable(graph: GraphProto, meta: MetaMap, wrt: readonly string[], seedTensors: readonly string[]): { op: string; node: string }[] {
  const { nodes } = differentiableRegion(graph, meta, wrt, seedTensors);
  return nodes.filter((n) => !isDefaultDomain(n.domain) || !RULES.has(n.opType ?? '')).map((n) => ({ op: opName(n), node: n.name ?? '' }));
}

export function differentiate(req: DifferentiateRequest): DifferentiateResult {
  const { graph, meta, wrt, seeds } = req;
  const opset = req.opset ?? MIN_OPSET;
  if (opset < MIN_OPSET) {
    throw new WhittleError('UNSUPPORTED_MODEL', `Training needs a model of ONNX opset ${MIN_OPSET} or later; this one imports opset ${opset}. Convert it to a newer opset first.`, { opset });
  }
  const missing = findUndifferentiable(graph, meta, wrt, seeds.map((s) => s.tensor));
  if (missing.length > 0) {
    const list = missing.map((m) => `${m.op} (node '${m.node}')`).join(', ');
    throw new WhittleError('UNSUPPORTED_MODEL', `Whittle cannot train through ${list}: no gradient rule exists for ${missing.length === 1 ? 'this op' : 'these ops'}. Freeze the weights before ${missing.length === 1 ? 'it' : 'them'}, or decompose the op into supported ones.`,
      { ops: missing });
  }

  const { tensors: region, nodes } = differentiableRegion(graph, meta, wrt, seeds.map((s) => s.tensor));
  const b = new GradBuilder(graph, meta, opset);
  const pending = new Map<string, string[]>();
  const contribute = (tensor: string, grad: string): void => {
    const list = pending.get(tensor);
    if (list) list.push(grad);
    else pending.set(tensor, [grad]);
  };
  /** The total gradient of `tensor` (summed once, then reused). */
  const total = (tensor: string): Grad => {
    const list = pending.get(tensor);
    if (!list || list.length === 0) return null;
    if (list.length > 1) pending.set(tensor, [b.sum(list)]);
    return (pending.get(tensor) as string[])[0];
  };
  for (const s of seeds) contribute(s.tensor, s.grad);

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    const gy = node.output.map((o) => (region.has(o) ? total(o) : null));
    if (gy.every((g) => g === null)) continue;
    const rule = RULES.get(node.opType ?? '');
    if (!rule) throw new WhittleError('INTERNAL', `Autodiff: no rule for ${opName(node)} after the check.`);
    const ctx: RuleContext = { b, needs: (i) => node.input[i] !== undefined && region.has(node.input[i]) };
    const gx = rule(ctx, node, gy);
    node.input.forEach((input, i) => {
      const g = gx[i] ?? null;
      if (g === null || !region.has(input)) return;
      const want = b.shape(input);
      if (!sameShape(b.shape(g), want)) {
        throw new WhittleError('INTERNAL', `Autodiff: the ${node.opType} rule gave input '${input}' of node '${node.name ?? ''}' a gradient of shape [${b.shape(g).join(', ')}], expected [${want.join(', ')}].`);
      }
      contribute(input, g);
    });
  }

  const grads = new Map<string, string>();
  const unreached: string[] = [];
  const used = new Set<string>();
  for (const w of wrt) {
    const m = b.meta(w);
    let g = total(w);
    if (g === null) {
      unreached.push(w);
      g = b.zeros(m.shape, m.dtype);
    }
    if (b.dtype(g) !== m.dtype) g = b.cast(g, m.dtype);
    // A gradient that is a seed, a forward tensor or another weight's gradient gets its own name.
    if (!b.created.has(g) || used.has(g)) g = b.op('Identity', [g], m, [], 'grad');
    used.add(g);
    grads.set(w, g);
  }
  return { nodes: b.nodes, initializers: b.initializers, grads, meta: b.created, unreached };
}
