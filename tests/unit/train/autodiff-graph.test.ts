/**
 * The autodiff on whole graphs: a tiny BERT-style encoder with a classification loss (gradients of every
 * weight against float64 finite differences), a tied embedding, refusal of ops without a rule, integer
 * shape arithmetic left alone, and weights no seed reaches.
 */
import { describe, expect, it } from 'vitest';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { floatAttr, intAttr, intsAttr, makeNode } from '../../../main/engine/onnx/graph.ts';
import type { AttributeProto, NodeProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { differentiableRegion, differentiate, findUndifferentiable } from '../../../main/engine/train/autodiff/differentiate.ts';
import { evaluateGraph, loadInitializers, refTensor } from '../../helpers/reference-ops.ts';
import { checkGradients, graphOf, metaFrom, type InputSpec } from './grad-check.ts';

let count = 0;
const n = (opType: string, inputs: string[], outputs: string[], attributes: AttributeProto[] = []): NodeProto =>
  makeNode({ opType, inputs, outputs, name: `${opType}_${count++}`, attributes });
const ints = (name: string, values: number[]): TensorProto => makeTensor(name, DataType.int64, [values.length], BigInt64Array.from(values.map(BigInt)));
const scalar = (name: string, v: number): TensorProto => makeTensor(name, DataType.float32, [], Float32Array.from([v]));
const intScalar = (name: string, v: number): TensorProto => makeTensor(name, DataType.int64, [], BigInt64Array.from([BigInt(v)]));

const B = 2, T = 4, H = 8, NH = 2, DH = 4, F = 16, V = 11, C = 3;

/** Linear layer: y = x·W + b. */
function linear(x: string, w: string, bias: string, y: string): NodeProto[] {
  return [n('MatMul', [x, w], [`${y}_mm`]), n('Add', [`${y}_mm`, bias], [y])];
}

/** [B, T, H] → heads [B, NH, T, DH] (perm) through a Reshape whose shape is computed from Shape(x). */
function heads(x: string, y: string, perm: number[]): NodeProto[] {
  return [
    n('Shape', [x], [`${y}_shape`]),
    n('Gather', [`${y}_shape`, 'first_two'], [`${y}_bt`], [intAttr('axis', 0)]),
    n('Concat', [`${y}_bt`, 'head_dims'], [`${y}_target`], [intAttr('axis', 0)]),
    n('Reshape', [x, `${y}_target`], [`${y}_split`]),
    n('Transpose', [`${y}_split`], [y], [intsAttr('perm', perm)]),
  ];
}

function layerNorm(x: string, name: string, y: string): NodeProto {
  return n('LayerNormalization', [x, `${name}_g`, `${name}_b`], [y], [intAttr('axis', -1), floatAttr('epsilon', 1e-5)]);
}

function encoder(): { nodes: NodeProto[]; initializers: TensorProto[]; inputs: InputSpec[] } {
  const nodes: NodeProto[] = [
    n('Gather', ['wemb', 'ids'], ['we']),
    n('Gather', ['pemb', 'pos'], ['pe']),
    n('Add', ['we', 'pe'], ['emb']),
    layerNorm('emb', 'ln0', 'x0'),
    ...linear('x0', 'wq', 'bq', 'q'), ...heads('q', 'qh', [0, 2, 1, 3]),
    ...linear('x0', 'wk', 'bk', 'k'), ...heads('k', 'kh', [0, 2, 3, 1]),
    ...linear('x0', 'wv', 'bv', 'v'), ...heads('v', 'vh', [0, 2, 1, 3]),
    n('MatMul', ['qh', 'kh'], ['scores']),
    n('Mul', ['scores', 'inv_sqrt_dh'], ['scaled']),
    // Additive mask from the int mask: (1 − float(mask)) · −10000, broadcast over heads and queries.
    n('Cast', ['mask'], ['maskf'], [intAttr('to', DataType.float32)]),
    n('Sub', ['one', 'maskf'], ['masked']),
    n('Mul', ['masked', 'big_negative'], ['mask_add']),
    n('Unsqueeze', ['mask_add', 'axes12'], ['mask4']),
    n('Add', ['scaled', 'mask4'], ['logits_att']),
    n('Softmax', ['logits_att'], ['probs'], [intAttr('axis', -1)]),
    n('MatMul', ['probs', 'vh'], ['ctx']),
    n('Transpose', ['ctx'], ['ctx_t'], [intsAttr('perm', [0, 2, 1, 3])]),
    n('Reshape', ['ctx_t', 'bth'], ['ctx_m']),
    ...linear('ctx_m', 'wo', 'bo', 'attn'),
    n('Add', ['x0', 'attn'], ['r1']),
    layerNorm('r1', 'ln1', 'x1'),
    ...linear('x1', 'w1', 'b1', 'h'),
    // Gelu(h) = h · ½ · (1 + erf(h / √2))
    n('Div', ['h', 'sqrt2'], ['h_s']), n('Erf', ['h_s'], ['h_erf']), n('Add', ['h_erf', 'one'], ['h_1']),
    n('Mul', ['h', 'h_1'], ['h_m']), n('Mul', ['h_m', 'half'], ['gelu']),
    ...linear('gelu', 'w2', 'b2', 'ffn'),
    n('Add', ['x1', 'ffn'], ['r2']),
    layerNorm('r2', 'ln2', 'x2'),
    n('Gather', ['x2', 'zero_index'], ['cls'], [intAttr('axis', 1)]),
    ...linear('cls', 'wc', 'bc', 'class_logits'),
    n('LogSoftmax', ['class_logits'], ['logp'], [intAttr('axis', 1)]),
    n('GatherElements', ['logp', 'labels'], ['picked'], [intAttr('axis', 1)]),
    n('ReduceMean', ['picked'], ['mean_logp'], [intAttr('keepdims', 0)]),
    n('Neg', ['mean_logp'], ['loss']),
  ];
  const initializers = [
    ints('pos', [0, 1, 2, 3]), ints('first_two', [0, 1]), ints('head_dims', [NH, DH]), ints('axes12', [1, 2]), ints('bth', [B, T, H]),
    scalar('inv_sqrt_dh', 1 / Math.sqrt(DH)), scalar('one', 1), scalar('big_negative', -10000), scalar('sqrt2', Math.SQRT2), scalar('half', 0.5),
    intScalar('zero_index', 0),
  ];
  const w = (name: string, dims: number[]): InputSpec => ({ name, dims });
  const gain = (name: string): InputSpec => ({ name, dims: [H], range: 'positive' });
  const inputs: InputSpec[] = [
    { name: 'ids', dims: [B, T], dtype: DataType.int64, values: [3, 7, 3, 10, 0, 5, 5, 2] },
    { name: 'mask', dims: [B, T], dtype: DataType.int64, values: [1, 1, 1, 0, 1, 1, 0, 0] },
    { name: 'labels', dims: [B, 1], dtype: DataType.int64, values: [2, 0] },
    w('wemb', [V, H]), w('pemb', [T, H]), gain('ln0_g'), w('ln0_b', [H]),
    w('wq', [H, H]), w('bq', [H]), w('wk', [H, H]), w('bk', [H]), w('wv', [H, H]), w('bv', [H]), w('wo', [H, H]), w('bo', [H]),
    gain('ln1_g'), w('ln1_b', [H]), w('w1', [H, F]), w('b1', [F]), w('w2', [F, H]), w('b2', [H]), gain('ln2_g'), w('ln2_b', [H]),
    w('wc', [H, C]), w('bc', [C]),
  ];
  return { nodes, initializers, inputs };
}

describe('autodiff on whole graphs', () => {
  it('a tiny BERT-style encoder: the gradient of every weight matches float64 finite differences (relative error ≤ 1e-3)', async () => {
    const { nodes, initializers, inputs } = encoder();
    const report = await checkGradients({ nodes, initializers, inputs, outputs: ['loss'], opset: 18, seed: 3 });
    expect(report.errors.size).toBe(inputs.filter((s) => s.dtype === undefined).length);
    for (const [name, err] of report.errors) {
      if (name === 'bk') {
        // The key bias adds q·bk to every score of a query alike, which the softmax ignores: ∂loss/∂bk = 0.
        expect(Math.max(...Array.from(report.grads.get(name) ?? [1], Math.abs))).toBeLessThan(1e-5);
        continue;
      }
      expect(Math.max(...Array.from(report.fd.get(name) ?? [0], Math.abs)), `∂loss/∂${name} is not all zeros`).toBeGreaterThan(1e-6);
      expect(err, `∂loss/∂${name}`).toBeLessThanOrEqual(1e-3);
    }
    expect(report.unreached).toEqual([]);
    // The Shape → Gather → Concat → Reshape arithmetic and the integer mask get no backward nodes.
    expect(report.backwardOps).not.toContain('Shape');
    // Linear layers with a 2-D weight: one Gemm per weight gradient, no batched MatMul for them.
    expect(report.backwardOps.filter((o) => o === 'Gemm').length).toBeGreaterThanOrEqual(7 * 2 - 1);
  });

  it('a tied embedding (Gather and the output projection share one table) accumulates both gradients', async () => {
    const nodes = [
      n('Gather', ['table', 'ids'], ['e']),
      n('Tanh', ['e'], ['hid']),
      n('Transpose', ['table'], ['table_t'], [intsAttr('perm', [1, 0])]),
      n('MatMul', ['hid', 'table_t'], ['logits']),
    ];
    const report = await checkGradients({ nodes, inputs: [{ name: 'table', dims: [7, 5] }, { name: 'ids', dims: [2, 3], dtype: DataType.int64, values: [1, 4, 1, 6, 0, 1] }] });
    expect(report.errors.get('table')).toBeLessThanOrEqual(1e-3);
    expect(report.backwardOps).toContain('ScatterND');
    expect(report.backwardOps).toContain('Add');
  });

  it('refuses an op without a rule on the gradient path, naming the op and the node', async () => {
    const nodes = [
      makeNode({ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['h'], name: 'proj' }),
      makeNode({ opType: 'HardSwish', inputs: ['h'], outputs: ['y'], name: 'act_7' }),
      makeNode({ opType: 'Celu', inputs: ['x'], outputs: ['unused'], name: 'side' }),
    ];
    const graph = graphOf(nodes);
    const values = new Map([['x', refTensor(DataType.float32, [2, 3], [1, 2, 3, 4, 5, 6])], ['w', refTensor(DataType.float32, [3, 4], new Array<number>(12).fill(0.5))]]);
    const meta = metaFrom(values);
    meta.set('h', { dtype: DataType.float32, shape: [2, 4] });
    meta.set('y', { dtype: DataType.float32, shape: [2, 4] });
    meta.set('unused', { dtype: DataType.float32, shape: [2, 3] });
    meta.set('gy', { dtype: DataType.float32, shape: [2, 4] });
    // Celu is off the path (its output is not seeded): only HardSwish is reported.
    expect(findUndifferentiable(graph, meta, ['w'], ['y'])).toEqual([{ op: 'HardSwish', node: 'act_7' }]);
    let caught: unknown;
    try {
      differentiate({ graph, meta, wrt: ['w'], seeds: [{ tensor: 'y', grad: 'gy' }] });
    } catch (e) {
      caught = e;
    }
    expect(isWhittleError(caught)).toBe(true);
    const err = caught as Error & { code: string };
    expect(err.code).toBe('UNSUPPORTED_MODEL');
    expect(err.message).toContain('HardSwish');
    expect(err.message).toContain("'act_7'");
    // Seeded below the unsupported op, the same graph differentiates.
    const res = differentiate({ graph, meta, wrt: ['w'], seeds: [{ tensor: 'h', grad: 'gy' }] });
    expect(res.grads.has('w')).toBe(true);
  });

  it('refuses a Pow whose exponent is trainable', () => {
    const graph = graphOf([makeNode({ opType: 'Pow', inputs: ['x', 'p'], outputs: ['y'], name: 'pow_9' })]);
    const meta = metaFrom(new Map([['x', refTensor(DataType.float32, [3], [1, 2, 3])], ['p', refTensor(DataType.float32, [], [2])], ['y', refTensor(DataType.float32, [3], [1, 4, 9])], ['gy', refTensor(DataType.float32, [3], [1, 1, 1])]]));
    expect(() => differentiate({ graph, meta, wrt: ['x', 'p'], seeds: [{ tensor: 'y', grad: 'gy' }] })).toThrow(/Pow node 'pow_9' has a trainable exponent/);
    expect(differentiate({ graph, meta, wrt: ['x'], seeds: [{ tensor: 'y', grad: 'gy' }] }).grads.has('x')).toBe(true);
  });

  it('leaves integer paths alone: Shape → Gather → Concat → Reshape arithmetic, masks and ids are not in the region', async () => {
    const { nodes, initializers, inputs } = encoder();
    const graph = graphOf(nodes, initializers);
    const values = await loadInitializers(graph);
    for (const s of inputs) values.set(s.name, refTensor(s.dtype ?? DataType.float32, s.dims, s.values ?? new Array<number>(s.dims.reduce((a, d) => a * d, 1)).fill(0.5)));
    const meta = metaFrom(evaluateGraph(graph, values));
    const wrt = inputs.filter((s) => s.dtype === undefined).map((s) => s.name);
    const region = differentiableRegion(graph, meta, wrt, ['loss']);
    const ops = new Set(region.nodes.map((x) => x.opType));
    for (const op of ['Shape', 'Concat', 'Cast', 'Unsqueeze']) expect(ops.has(op), op).toBe(false);
    for (const t of ['qh_shape', 'qh_bt', 'qh_target', 'maskf', 'mask4', 'ids', 'labels']) expect(region.tensors.has(t), t).toBe(false);
    expect(region.tensors.has('qh_split')).toBe(true);
  });

  it('gives zeros to a weight no seed reaches and reports it', async () => {
    const nodes = [makeNode({ opType: 'Mul', inputs: ['x', 'a'], outputs: ['y'], name: 'm' }), makeNode({ opType: 'Exp', inputs: ['b'], outputs: ['z'], name: 'e' })];
    const report = await checkGradients({ nodes, inputs: [{ name: 'x', dims: [3] }, { name: 'a', dims: [3] }, { name: 'b', dims: [2] }], outputs: ['y'] });
    expect(report.unreached).toEqual(['b']);
    expect(Array.from(report.grads.get('b') ?? [])).toEqual([0, 0]);
    expect(report.errors.get('a')).toBeLessThanOrEqual(1e-3);
  });
});
