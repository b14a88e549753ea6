/**
 * Every backward rule against central finite differences of the float64 reference: one entry per case
 * (op, shapes with broadcasting, attribute variants), the backward run in onnxruntime-node.
 */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { floatAttr, intAttr, intsAttr, makeNode, stringAttr } from '../../../main/engine/onnx/graph.ts';
import type { AttributeProto, TensorProto } from '../../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { checkGradients, type GradCase, type InputSpec } from './grad-check.ts';

const f = (name: string, dims: number[], extra: Partial<InputSpec> = {}): InputSpec => ({ name, dims, ...extra });
const pos = (name: string, dims: number[]): InputSpec => ({ name, dims, range: 'positive' });
const f64 = (name: string, dims: number[], extra: Partial<InputSpec> = {}): InputSpec => ({ name, dims, dtype: DataType.float64, ...extra });
const i64 = (name: string, dims: number[], values: number[]): InputSpec => ({ name, dims, values, dtype: DataType.int64 });
let nodeCount = 0;
const node = (opType: string, inputs: string[], outputs: string[] = ['y'], attributes: AttributeProto[] = []) =>
  makeNode({ opType, inputs, outputs, name: `${opType.toLowerCase()}_${nodeCount++}`, attributes });
const ints = (name: string, values: number[]): TensorProto => makeTensor(name, DataType.int64, [values.length], BigInt64Array.from(values.map(BigInt)));
const scalarF = (name: string, v: number): TensorProto => makeTensor(name, DataType.float32, [], Float32Array.from([v]));

/** One op over the given inputs. */
function one(opType: string, inputs: InputSpec[], attributes: AttributeProto[] = [], extra: Partial<GradCase> & { inputNames?: string[] } = {}): GradCase {
  return { nodes: [node(opType, extra.inputNames ?? inputs.map((s) => s.name), ['y'], attributes)], inputs, ...extra };
}

const CASES: Record<string, GradCase> = {
  'Add same shape': one('Add', [f('a', [3, 4]), f('b', [3, 4])]),
  'Add broadcast (rank and 1-axes)': one('Add', [f('a', [2, 3, 4]), f('b', [3, 1])]),
  'Add broadcast both ways': one('Add', [f('a', [2, 1, 4]), f('b', [3, 1])]),
  'Sub broadcast': one('Sub', [f('a', [4]), f('b', [2, 3, 4])]),
  'Mul broadcast': one('Mul', [f('a', [2, 3, 4]), f('b', [1, 3, 1])]),
  'Mul by a constant': { ...one('Mul', [f('a', [2, 3])], [], { inputNames: ['a', 'c'] }), initializers: [scalarF('c', 0.7)] },
  'Mul of a tensor by itself': one('Mul', [f('a', [5])], [], { inputNames: ['a', 'a'] }),
  'Div broadcast': one('Div', [f('a', [2, 3, 4]), pos('b', [3, 1])]),
  'Sum of three, broadcasting': one('Sum', [f('a', [2, 3]), f('b', [3]), f('c', [2, 1])]),
  'Max of two, broadcasting': one('Max', [f('a', [3, 4]), f('b', [4])]),
  'Min of two': one('Min', [f('a', [3, 4]), f('b', [3, 4])]),
  'Neg': one('Neg', [f('x', [3, 4])]),
  'Exp': one('Exp', [f('x', [3, 4])]),
  'Log': one('Log', [pos('x', [3, 4])]),
  'Sqrt': one('Sqrt', [pos('x', [3, 4])]),
  'Reciprocal': one('Reciprocal', [pos('x', [3, 4])]),
  'Pow, exponent 2': { ...one('Pow', [f('x', [3, 4])], [], { inputNames: ['x', 'p'] }), initializers: [scalarF('p', 2)] },
  'Pow, exponent 0.5': { ...one('Pow', [pos('x', [3, 4])], [], { inputNames: ['x', 'p'] }), initializers: [scalarF('p', 0.5)] },
  'Pow, exponent 3 (int64)': { ...one('Pow', [f('x', [3, 4])], [], { inputNames: ['x', 'p'] }), initializers: [makeTensor('p', DataType.int64, [], BigInt64Array.from([3n]))] },
  'Pow, exponent -1.5 as a frozen input': one('Pow', [pos('x', [3, 4]), { name: 'p', dims: [4], values: [-1.5, 2, 0.5, 3], trainable: false }]),
  'Tanh': one('Tanh', [f('x', [3, 4])]),
  'Sigmoid': one('Sigmoid', [f('x', [3, 4])]),
  'Relu': one('Relu', [f('x', [3, 4])]),
  'Clip to [-0.5, 0.3]': { ...one('Clip', [f('x', [3, 4])], [], { inputNames: ['x', 'lo', 'hi'] }), initializers: [scalarF('lo', -0.5), scalarF('hi', 0.3)] },
  'Clip with only a maximum': { ...one('Clip', [f('x', [3, 4])], [], { inputNames: ['x', '', 'hi'] }), initializers: [scalarF('hi', 0.2)] },
  'Erf': one('Erf', [f('x', [3, 4], { values: Array.from({ length: 12 }, (_, i) => Math.fround(-2.5 + i * 0.45)) })]),
  'Cast float32 → float64 → float32': {
    nodes: [node('Cast', ['x'], ['x64'], [intAttr('to', DataType.float64)]), node('Mul', ['x64', 'x64'], ['sq']), node('Cast', ['sq'], ['y'], [intAttr('to', DataType.float32)])],
    inputs: [f('x', [3, 4])],
  },
  'MatMul 2-D': one('MatMul', [f('a', [3, 4]), f('b', [4, 5])]),
  'MatMul linear layer [b,t,k]·[k,n]': one('MatMul', [f('a', [2, 3, 4]), f('b', [4, 5])]),
  'MatMul batched, broadcast batch': one('MatMul', [f('a', [2, 3, 3, 4]), f('b', [3, 4, 5])]),
  'MatMul batched both': one('MatMul', [f('a', [2, 3, 4]), f('b', [2, 4, 5])]),
  'MatMul 2-D times batched': one('MatMul', [f('a', [3, 4]), f('b', [2, 4, 5])]),
  'MatMul 1-D · 2-D': one('MatMul', [f('a', [4]), f('b', [4, 5])]),
  'MatMul batched · 1-D': one('MatMul', [f('a', [2, 3, 4]), f('b', [4])]),
  'Gemm plain with C row': one('Gemm', [f('a', [3, 4]), f('b', [4, 5]), f('c', [5])]),
  'Gemm transA transB alpha beta, C column': one('Gemm', [f('a', [4, 3]), f('b', [5, 4]), f('c', [3, 1])],
    [intAttr('transA', 1), intAttr('transB', 1), floatAttr('alpha', 0.5), floatAttr('beta', 1.5)]),
  'Gemm transA only, no C': one('Gemm', [f('a', [4, 3]), f('b', [4, 5])], [intAttr('transA', 1)]),
  'Gemm transB only, scalar C': one('Gemm', [f('a', [3, 4]), f('b', [5, 4]), f('c', [])], [intAttr('transB', 1), floatAttr('alpha', 2)]),
  'Softmax last axis': one('Softmax', [f('x', [2, 3, 5])]),
  'Softmax axis 1': one('Softmax', [f('x', [2, 3, 5])], [intAttr('axis', 1)]),
  'LogSoftmax axis -2': one('LogSoftmax', [f('x', [2, 4, 3])], [intAttr('axis', -2)]),
  'LayerNormalization last axis': one('LayerNormalization', [f('x', [2, 3, 6]), f('g', [6]), f('b', [6])], [floatAttr('epsilon', 1e-5)]),
  'LayerNormalization axis 1, no bias': one('LayerNormalization', [f('x', [2, 3, 4]), f('g', [3, 4])], [intAttr('axis', 1)]),
  'LayerNormalization float64 (recomputed statistics)': one('LayerNormalization', [f64('x', [2, 5]), f64('g', [5]), f64('b', [5])]),
  'Gather axis 0 with duplicate ids': one('Gather', [f('w', [6, 4]), i64('ids', [2, 3], [1, 5, 1, 0, 5, 5])]),
  'Gather axis 0 with duplicate ids (opset 17)': { ...one('Gather', [f('w', [4, 3]), i64('ids', [5], [2, 2, 0, 2, 3])]), opset: 17 },
  'Gather axis 0, negative ids, scalar id': {
    nodes: [node('Gather', ['w', 'ids'], ['a']), node('Gather', ['w', 'one'], ['b']), node('Add', ['a', 'b'], ['y'])],
    inputs: [f('w', [5, 3]), i64('ids', [4], [-1, 2, -5, 4]), i64('one', [], [-2])],
  },
  'Gather axis 1, 2-D ids': one('Gather', [f('w', [2, 5, 3]), i64('ids', [2, 2], [4, 0, 4, -1])], [intAttr('axis', 1)]),
  'Gather axis -1': one('Gather', [f('w', [2, 3, 4]), i64('ids', [3], [3, 3, 1])], [intAttr('axis', -1)]),
  'GatherElements axis 1 with repeats': one('GatherElements', [f('x', [3, 4]), i64('ids', [3, 2], [0, 3, 3, 3, -1, 1])], [intAttr('axis', 1)]),
  'Reshape': { ...one('Reshape', [f('x', [2, 3, 4])], [], { inputNames: ['x', 's'] }), initializers: [ints('s', [4, -1])] },
  'Squeeze / Unsqueeze': {
    nodes: [node('Unsqueeze', ['x', 'ax'], ['u']), node('Mul', ['u', 'u'], ['m']), node('Squeeze', ['m', 'ax'], ['y'])],
    inputs: [f('x', [2, 3])], initializers: [ints('ax', [0, -1])],
  },
  'Flatten axis 2': one('Flatten', [f('x', [2, 3, 2, 2])], [intAttr('axis', 2)]),
  'Identity': one('Identity', [f('x', [3])]),
  'Transpose perm': one('Transpose', [f('x', [2, 3, 4])], [intsAttr('perm', [1, 2, 0])]),
  'Transpose default perm': one('Transpose', [f('x', [2, 3, 4])]),
  'Slice steps 1, clamped end': {
    ...one('Slice', [f('x', [4, 6])], [], { inputNames: ['x', 's', 'e', 'a'] }),
    initializers: [ints('s', [1, 2]), ints('e', [3, 1000]), ints('a', [0, 1])],
  },
  'Slice negative starts, step 2': {
    ...one('Slice', [f('x', [3, 7])], [], { inputNames: ['x', 's', 'e', 'a', 'st'] }),
    initializers: [ints('s', [-6]), ints('e', [7]), ints('a', [-1]), ints('st', [2])],
  },
  'Slice step 3 on two axes (opset 17)': {
    ...one('Slice', [f('x', [7, 8])], [], { inputNames: ['x', 's', 'e', 'a', 'st'] }),
    initializers: [ints('s', [0, 1]), ints('e', [7, -1]), ints('a', [0, 1]), ints('st', [3, 2])], opset: 17,
  },
  'Slice negative step (reverse), step -2 and INT64 bounds': {
    ...one('Slice', [f('x', [5, 6])], [], { inputNames: ['x', 's', 'e', 'a', 'st'] }),
    initializers: [makeTensor('s', DataType.int64, [2], BigInt64Array.from([9223372036854775807n, 4n])), makeTensor('e', DataType.int64, [2], BigInt64Array.from([-9223372036854775807n, 0n])),
      ints('a', [0, 1]), ints('st', [-1, -3])],
  },
  'Concat axis 1 of three': one('Concat', [f('a', [2, 1, 3]), f('b', [2, 2, 3]), f('c', [2, 3, 3])], [intAttr('axis', 1)]),
  'Concat with a frozen input': one('Concat', [f('a', [2, 3]), { name: 'b', dims: [1, 3], trainable: false }], [intAttr('axis', 0)]),
  'Split by sizes input, one output unused': {
    nodes: [node('Split', ['x', 'sz'], ['p', 'q', 'r'], [intAttr('axis', -1)]), node('Mul', ['p', 'r'], ['y'])],
    inputs: [f('x', [2, 7])], initializers: [ints('sz', [2, 3, 2])],
  },
  'Split num_outputs (opset 18), uneven': {
    nodes: [node('Split', ['x'], ['p', 'q', 'r'], [intAttr('axis', 0), intAttr('num_outputs', 3)]), node('Concat', ['r', 'p'], ['y'], [intAttr('axis', 0)])],
    inputs: [f('x', [5, 2])],
  },
  'Split equal (opset 17, no split input)': {
    nodes: [node('Split', ['x'], ['p', 'q'], [intAttr('axis', 1)]), node('Sub', ['p', 'q'], ['y'])],
    inputs: [f('x', [2, 6])], opset: 17,
  },
  'Expand': { ...one('Expand', [f('x', [3, 1])], [], { inputNames: ['x', 's'] }), initializers: [ints('s', [2, 3, 4])] },
  'Where with broadcasting condition': one('Where', [{ name: 'c', dims: [3, 1], dtype: DataType.bool, values: [1, 0, 1] }, f('a', [3, 4]), f('b', [4])]),
  'ReduceSum axes input, keepdims 0': { ...one('ReduceSum', [f('x', [2, 3, 4])], [intAttr('keepdims', 0)], { inputNames: ['x', 'ax'] }), initializers: [ints('ax', [0, -1])] },
  'ReduceSum all axes': one('ReduceSum', [f('x', [2, 3])]),
  'ReduceMean axes attribute (opset 17), keepdims 1': { ...one('ReduceMean', [f('x', [2, 3, 4])], [intsAttr('axes', [1])]), opset: 17 },
  'ReduceMean axes input (opset 18), keepdims 0': { ...one('ReduceMean', [f('x', [2, 3, 4])], [intAttr('keepdims', 0)], { inputNames: ['x', 'ax'] }), initializers: [ints('ax', [-1, 0])] },
  'Tile': { ...one('Tile', [f('x', [2, 3])], [], { inputNames: ['x', 'r'] }), initializers: [ints('r', [2, 1])] },
  'Pad constant, positive and negative pads': {
    ...one('Pad', [f('x', [3, 4])], [stringAttr('mode', 'constant')], { inputNames: ['x', 'p'] }),
    initializers: [ints('p', [1, -1, 0, 2])],
  },
  'Pad with axes input': {
    ...one('Pad', [f('x', [2, 3, 4])], [], { inputNames: ['x', 'p', '', 'ax'] }),
    initializers: [ints('p', [2, 1]), ints('ax', [-1])],
  },
  'float64 graph: MatMul + Softmax + Mul broadcast': {
    nodes: [node('MatMul', ['a', 'b'], ['m']), node('Softmax', ['m'], ['s']), node('Mul', ['s', 'c'], ['y'])],
    inputs: [f64('a', [2, 3, 4]), f64('b', [4, 5]), f64('c', [5])],
  },
};

/** Every op the backward may emit: standard ONNX ops that exist in opset 17 with the forms used. */
const OPSET_17_BACKWARD_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Sum', 'Exp', 'Pow', 'Sqrt', 'Reciprocal', 'Equal', 'Less', 'Greater', 'Where', 'Cast', 'Identity',
  'MatMul', 'Gemm', 'Transpose', 'Reshape', 'Expand', 'ReduceSum', 'Slice', 'Pad', 'Split', 'Concat', 'ConstantOfShape', 'ScatterND', 'ScatterElements',
]);

describe('autodiff rules against finite differences', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(name, async () => {
      const report = await checkGradients(c);
      expect(report.errors.size).toBeGreaterThan(0);
      for (const [input, err] of report.errors) {
        expect(Math.max(...Array.from(report.fd.get(input) ?? [0], Math.abs)), `∂L/∂${input} is not all zeros`).toBeGreaterThan(1e-3);
        expect(err, `∂L/∂${input}: onnx ${Array.from(report.grads.get(input) ?? []).slice(0, 6).map((v) => v.toFixed(5)).join(' ')} vs fd ${Array.from(report.fd.get(input) ?? []).slice(0, 6).map((v) => v.toFixed(5)).join(' ')}`).toBeLessThanOrEqual(1e-3);
      }
      expect(report.unreached).toEqual([]);
      for (const op of report.backwardOps) expect(OPSET_17_BACKWARD_OPS.has(op), op).toBe(true);
    });
  }
});
