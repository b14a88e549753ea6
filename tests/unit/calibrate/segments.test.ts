/**
 * Levels and segments of sequential calibration, on small graphs built here: dependency order of the
 * targets, what each segment reads and produces, and what is recomputed rather than carried.
 */
import { describe, expect, it } from 'vitest';
import { planSegments } from '../../../main/engine/calibrate/segments.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { makeNode } from '../../../main/engine/onnx/graph.ts';
import type { GraphProto, NodeProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';

const init = (name: string): TensorProto => ({ name, dataType: 1, dims: [4, 4], data: { kind: 'bytes', bytes: new Uint8Array(64) }, stringData: [], externalData: [], metadataProps: [] });
const node = (opType: string, inputs: string[], output: string): NodeProto => makeNode({ opType, inputs, outputs: [output], name: output });

/**
 * A two-block "transformer" in miniature:
 *   x0 = Gather(E, ids); mask = f(Shape(x0))
 *   block b: n = Norm(x); q = n·Wq; k = n·Wk; v = n·Wv; a = Attn(q, k, v, mask); o = a·Wo; x' = x + o
 *            m = Norm(x'); g = m·Wg; u = m·Wu; h = g ⊙ u; d = h·Wd; x'' = x' + d
 *   logits = x''·Eᵀ (tied, not a target)
 */
function miniature(blocks = 2): { graph: GraphProto; targets: { weight: string; node: NodeProto }[] } {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [init('E')];
  const targets: { weight: string; node: NodeProto }[] = [];
  const mm = (x: string, w: string, out: string): void => {
    const n = node('MatMul', [x, w], out);
    nodes.push(n);
    inits.push(init(w));
    targets.push({ weight: w, node: n });
  };
  nodes.push(node('Gather', ['E', 'ids'], 'x0'));
  nodes.push(node('Shape', ['x0'], 'shape'));
  nodes.push(node('ConstantOfShape', ['shape'], 'mask'));
  let x = 'x0';
  for (let b = 0; b < blocks; b++) {
    nodes.push(node('Norm', [x], `n${b}`));
    for (const p of ['q', 'k', 'v']) mm(`n${b}`, `W${p}${b}`, `${p}${b}`);
    nodes.push(makeNode({ opType: 'Attn', inputs: [`q${b}`, `k${b}`, `v${b}`, 'mask'], outputs: [`a${b}`], name: `a${b}` }));
    mm(`a${b}`, `Wo${b}`, `o${b}`);
    nodes.push(node('Add', [x, `o${b}`], `r${b}`));
    nodes.push(node('Norm', [`r${b}`], `m${b}`));
    mm(`m${b}`, `Wg${b}`, `g${b}`);
    mm(`m${b}`, `Wu${b}`, `u${b}`);
    nodes.push(node('Mul', [`g${b}`, `u${b}`], `h${b}`));
    mm(`h${b}`, `Wd${b}`, `d${b}`);
    nodes.push(node('Add', [`r${b}`, `d${b}`], `x${b + 1}`));
    x = `x${b + 1}`;
  }
  nodes.push(node('Transpose', ['E'], 'Et'));
  nodes.push(node('MatMul', [x, 'Et'], 'logits'));
  const graph: GraphProto = {
    node: nodes, initializer: inits, sparseInitializer: [], input: [{ name: 'ids', metadataProps: [] }], output: [{ name: 'logits', metadataProps: [] }],
    valueInfo: [], quantizationAnnotation: [], metadataProps: [],
  };
  return { graph, targets };
}

const names = (ns: { name?: string }[]): string[] => ns.map((n) => n.name ?? '');

describe('planSegments', () => {
  it('orders the targets by dependency: q/k/v, o, gate/up, down, then the next block', () => {
    const { graph, targets } = miniature(2);
    const plan = planSegments(graph, targets, ['ids']);
    expect(plan.levels.map((l) => l.map((t) => t.weight))).toEqual([
      ['Wq0', 'Wk0', 'Wv0'], ['Wo0'], ['Wg0', 'Wu0'], ['Wd0'],
      ['Wq1', 'Wk1', 'Wv1'], ['Wo1'], ['Wg1', 'Wu1'], ['Wd1'],
    ]);
    expect(plan.segments).toHaveLength(8);
    expect(plan.activations.get('Wo1')).toBe('a1');
  });

  it('cuts segments at the compressed weights and carries the residual stream across them', () => {
    const { graph, targets } = miniature(2);
    const { segments, lastUse } = planSegments(graph, targets, ['ids']);
    // Segment −1: embedding and the first norm; the mask is not carried (it is recomputed where needed).
    expect(segments[0].level).toBe(-1);
    expect(names(segments[0].nodes)).toEqual(['x0', 'n0']);
    expect(segments[0].graphInputs).toEqual(['ids']);
    expect(segments[0].outputs).toEqual(['n0', 'x0']);
    // Segment 0 (after q/k/v): the attention, which needs the mask: recomputed from Shape(x0), so x0 is read.
    expect(names(segments[1].nodes)).toEqual(['shape', 'mask', 'q0', 'k0', 'v0', 'a0']);
    expect(segments[1].boundaryInputs).toEqual(['n0', 'x0']);
    expect(segments[1].initializers).toEqual(['Wk0', 'Wq0', 'Wv0']);
    expect(segments[1].outputs).toEqual(['a0']);
    // Segment 1 (after o): residual add and the MLP norm; the block input x0 is read here for the last time.
    expect(names(segments[2].nodes)).toEqual(['o0', 'r0', 'm0']);
    expect(segments[2].boundaryInputs).toEqual(['a0', 'x0']);
    expect(segments[2].outputs).toEqual(['m0', 'r0']);
    // Segment 3 (after down): the residual add and the next block's norm.
    expect(names(segments[4].nodes)).toEqual(['d0', 'x1', 'n1']);
    expect(segments[4].outputs).toEqual(['n1', 'x1']);
    // x0 is read by the mask of block 1's attention too (Shape), so it lives until segment 5.
    expect(segments[5].boundaryInputs).toContain('x0');
    expect(lastUse.get('x0')).toBe(5);
    expect(lastUse.get('a0')).toBe(2);
    // Nothing after the last level: the tied LM head is never run.
    expect(segments.flatMap((s) => names(s.nodes))).not.toContain('logits');
  });

  it('refuses a target whose input does not depend on the tokens', () => {
    const { graph, targets } = miniature(1);
    const odd = node('MatMul', ['mask', 'Wodd'], 'odd');
    graph.node.push(odd);
    graph.initializer.push(init('Wodd'));
    try {
      planSegments(graph, [...targets, { weight: 'Wodd', node: odd }], ['ids']);
      expect.unreachable();
    } catch (e) {
      expect(isWhittleError(e) && e.code).toBe('INVALID_INPUT');
      expect((e as Error).message).toMatch(/Wodd.*does not depend on the token ids/);
    }
  });
});
