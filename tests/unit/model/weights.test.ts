/**
 * Quantizable weight discovery on a model built to contain every case: plain MatMul, Gemm with transB,
 * a weight shared by two nodes, a 3-D weight, int8 and DequantizeLinear weights (already quantized),
 * a Transpose'd tied embedding, a Constant-node weight, a weight that is also a graph input, an
 * embedding Gather behind a Cast, a position-table Gather, and a MatMul inside an If branch reading an
 * outer initializer.
 */
import { describe, expect, it } from 'vitest';
import { findWeightCandidates, toQuantizableWeights } from '../../../main/engine/model/weights.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { intAttr, tensorAttr } from '../../../main/engine/onnx/graph.ts';
import { AttributeType, type ModelProto } from '../../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { emptyGraph, modelOf, nodeOf, valueInfo } from '../onnx/helpers.ts';

const f32 = (name: string, dims: number[]) => makeTensor(name, DataType.float32, dims, new Float32Array(dims.reduce((a, b) => a * b, 1)));

function zoo(): ModelProto {
  const gemm = nodeOf('Gemm', ['x', 'gemm_w', 'gemm_b'], ['g_out'], 'gemm');
  gemm.attribute = [intAttr('transB', 1)];
  const emb = nodeOf('Gather', ['embed', 'ids32'], ['h0'], 'embed_lookup');
  const rope = nodeOf('Gather', ['rope', 'positions'], ['r'], 'rope_lookup');
  const constant = nodeOf('Constant', [], ['const_w'], 'const');
  constant.attribute = [tensorAttr('value', f32('const_value', [4, 4]))];
  const branch = emptyGraph({
    name: 'then',
    node: [nodeOf('MatMul', ['x', 'branch_w'], ['b_out'], 'branch_mm')],
    output: [valueInfo('b_out', DataType.float32, [1, 4])],
  });
  const ifNode = nodeOf('If', ['cond'], ['if_out'], 'if');
  ifNode.attribute = [{ name: 'then_branch', type: AttributeType.GRAPH, g: branch, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }];
  return modelOf(emptyGraph({
    node: [
      nodeOf('Cast', ['input_ids'], ['ids32'], 'cast_ids'),
      nodeOf('Range', ['start', 'limit', 'delta'], ['positions'], 'range'),
      emb,
      rope,
      nodeOf('MatMul', ['x', 'w_plain'], ['a'], 'mm_plain'),
      gemm,
      nodeOf('MatMul', ['x', 'w_shared'], ['s1'], 'mm_shared_1'),
      nodeOf('MatMul', ['x', 'w_shared'], ['s2'], 'mm_shared_2'),
      nodeOf('MatMul', ['x', 'w_3d'], ['t3'], 'mm_3d'),
      nodeOf('MatMul', ['x', 'w_int8'], ['i8'], 'mm_int8'),
      nodeOf('DequantizeLinear', ['w_q', 'w_scale'], ['w_dq'], 'dq'),
      nodeOf('MatMul', ['x', 'w_dq'], ['dqo'], 'mm_dq'),
      nodeOf('Transpose', ['embed'], ['embed_t'], 'tie'),
      nodeOf('MatMul', ['h0', 'embed_t'], ['logits'], 'lm_head'),
      constant,
      nodeOf('MatMul', ['x', 'const_w'], ['c'], 'mm_const'),
      nodeOf('MatMul', ['x', 'w_input'], ['wi'], 'mm_input'),
      nodeOf('MatMul', ['x', 'y_act'], ['act'], 'mm_activations'),
      ifNode,
    ],
    initializer: [
      f32('embed', [16, 4]), f32('rope', [32, 2]), f32('w_plain', [4, 8]), f32('gemm_w', [8, 4]), f32('gemm_b', [8]),
      f32('w_shared', [4, 4]), f32('w_3d', [2, 4, 4]), makeTensor('w_int8', DataType.int8, [4, 4], new Int8Array(16)),
      makeTensor('w_q', DataType.int8, [4, 4], new Int8Array(16)), f32('w_scale', [1]), f32('w_input', [4, 4]), f32('branch_w', [4, 4]),
    ],
    input: [
      valueInfo('input_ids', DataType.int64, ['batch', 'seq']), valueInfo('x', DataType.float32, [1, 4]), valueInfo('pos', DataType.int64, ['seq']),
      valueInfo('y_act', DataType.float32, [4, 4]), valueInfo('cond', DataType.bool, []), valueInfo('w_input', DataType.float32, [4, 4]),
    ],
    output: [valueInfo('logits', DataType.float32, ['batch', 'seq', 16])],
  }));
}

describe('findWeightCandidates', () => {
  const list = findWeightCandidates(zoo());
  const byNode = Object.fromEntries(toQuantizableWeights(list).map((w) => [w.node, w]));

  it('lists each weight with its consumer, op, shape, dtype and skip reason', () => {
    expect(byNode).toEqual({
      embed_lookup: { name: 'embed', node: 'embed_lookup', op: 'Gather', shape: [16, 4], dtype: 'float32', skipReason: 'used by more than one node (embed_lookup, tie): tied embeddings' },
      rope_lookup: { name: 'rope', node: 'rope_lookup', op: 'Gather', shape: [32, 2], dtype: 'float32', skipReason: 'a table indexed by computed positions, not by token ids (for example rotary cos/sin)' },
      mm_plain: { name: 'w_plain', node: 'mm_plain', op: 'MatMul', shape: [4, 8], dtype: 'float32' },
      gemm: { name: 'gemm_w', node: 'gemm', op: 'Gemm', shape: [8, 4], dtype: 'float32' },
      mm_shared_1: { name: 'w_shared', node: 'mm_shared_1', op: 'MatMul', shape: [4, 4], dtype: 'float32', skipReason: 'used by more than one node (mm_shared_1, mm_shared_2)' },
      mm_shared_2: { name: 'w_shared', node: 'mm_shared_2', op: 'MatMul', shape: [4, 4], dtype: 'float32', skipReason: 'used by more than one node (mm_shared_2, mm_shared_1)' },
      mm_3d: { name: 'w_3d', node: 'mm_3d', op: 'MatMul', shape: [2, 4, 4], dtype: 'float32', skipReason: 'weight is 3-D; only 2-D weights are quantized' },
      mm_int8: { name: 'w_int8', node: 'mm_int8', op: 'MatMul', shape: [4, 4], dtype: 'int8', skipReason: 'already quantized (int8)' },
      mm_dq: { name: 'w_q', node: 'mm_dq', op: 'MatMul', shape: [4, 4], dtype: 'int8', skipReason: 'already quantized (DequantizeLinear of int8)' },
      lm_head: { name: 'embed', node: 'lm_head', op: 'MatMul', shape: [16, 4], dtype: 'float32', skipReason: "reached through a Transpose of 'embed', which is also used by embed_lookup (tied embeddings)" },
      mm_const: { name: 'const_w', node: 'mm_const', op: 'MatMul', shape: [4, 4], dtype: 'float32', skipReason: 'stored in a Constant node, not an initializer' },
      mm_input: { name: 'w_input', node: 'mm_input', op: 'MatMul', shape: [4, 4], dtype: 'float32', skipReason: 'the weight is also a graph input, so it can be replaced at run time' },
      branch_mm: { name: 'branch_w', node: 'branch_mm', op: 'MatMul', shape: [4, 4], dtype: 'float32' },
    });
    expect(byNode.mm_activations).toBeUndefined();   // activations × activations is not a weight
  });

  it('gives the rewrite what it needs: graphs, node, input index, initializer, transB', () => {
    const m = zoo();
    const cands = findWeightCandidates(m);
    const gemm = cands.find((c) => c.node === 'gemm')!;
    expect(gemm.transB).toBe(true);
    expect(gemm.inputIndex).toBe(1);
    expect(gemm.consumer).toBe(m.graph!.node[5]);
    expect(gemm.tensor).toBe(m.graph!.initializer[3]);
    const branch = cands.find((c) => c.node === 'branch_mm')!;
    expect(branch.graph.name).toBe('then');          // the node lives in the branch…
    expect(branch.ownerGraph).toBe(m.graph);         // …the initializer in the main graph
    expect(cands.find((c) => c.node === 'embed_lookup')!.inputIndex).toBe(0);
    expect(cands.find((c) => c.node === 'mm_plain')!.transB).toBe(false);
  });
});
