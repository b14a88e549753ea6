/**
 * The INT8 dynamic node rewrite: which nodes replace a MatMul/Gemm in each format, that one
 * DynamicQuantizeLinear (and one float32 Cast) serves every projection of the same activation, and how a
 * Gemm's bias and beta and float16 activations are handled.
 */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { floatAttr, getAttribute, intAttr, NameScope } from '../../../main/engine/onnx/graph.ts';
import type { ModelProto, NodeProto } from '../../../main/engine/onnx/proto-types.ts';
import { toDynamicInt8, type Int8DynamicContext, type Int8DynamicFormat } from '../../../main/engine/quantize/int8-dynamic-rewrite.ts';
import { planTargets } from '../../../main/engine/quantize/targets.ts';
import { buildModel, makeNode, makeTensor, valueInfo } from './build-model.ts';

const F = DataType.float32;

function qkvModel(dtype: number = F): ModelProto {
  const w = (name: string) => makeTensor(name, dtype, [8, 4], dtype === F ? new Float32Array(32) : new Uint16Array(32));
  return buildModel({
    nodes: [
      makeNode({ opType: 'MatMul', inputs: ['x', 'wq'], outputs: ['q'], name: 'q_proj' }),
      makeNode({ opType: 'MatMul', inputs: ['x', 'wk'], outputs: ['k'], name: 'k_proj' }),
      makeNode({ opType: 'Gemm', inputs: ['x2', 'wg', 'bias'], outputs: ['g'], name: 'gemm', attributes: [intAttr('transB', 1), floatAttr('beta', 2)] }),
      makeNode({ opType: 'Gemm', inputs: ['x2', 'wh', 'bias'], outputs: ['h'], name: 'gemm_b1' }),
    ],
    initializers: [w('wq'), w('wk'), makeTensor('wg', dtype, [4, 8], dtype === F ? new Float32Array(32) : new Uint16Array(32)), w('wh'),
      makeTensor('bias', dtype, [4], dtype === F ? new Float32Array(4) : new Uint16Array(4))],
    inputs: [valueInfo('x', dtype, [2, 8]), valueInfo('x2', dtype, [2, 8])],
    outputs: ['q', 'k', 'g', 'h'].map((n) => valueInfo(n, dtype, [2, 4])),
  });
}

function rewriteAll(model: ModelProto, format: Int8DynamicFormat): Map<string, NodeProto[]> {
  const graph = model.graph!;
  const names = NameScope.fromModel(model);
  const ctx: Int8DynamicContext = { format, uniqueName: (b) => names.fresh(b), initializer: (n) => graph.initializer.find((t) => t.name === n), shared: new Map() };
  const plan = planTargets(graph, { blockSize: 1, keep: [] });
  expect(plan.targets.map((t) => t.weight)).toEqual(['wq', 'wk', 'wg', 'wh']);
  const out = new Map<string, NodeProto[]>();
  for (const t of plan.targets) out.set(t.node.name!, toDynamicInt8(t, `${t.weight}_Q8`, `${t.weight}_scales`, t.dtype === 'float16', ctx).nodes);
  return out;
}

const ops = (nodes: NodeProto[]): string[] => nodes.map((n) => n.opType!);

describe('matmulinteger format', () => {
  it('quantizes each activation once and rescales the integer product', () => {
    const r = rewriteAll(qkvModel(), 'matmulinteger');
    expect(ops(r.get('q_proj')!)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
    expect(ops(r.get('k_proj')!)).toEqual(['MatMulInteger', 'Cast', 'Mul', 'Mul']);
    const [dql, mmi, cast, scaleMul, mul] = r.get('q_proj')!;
    expect(dql.input).toEqual(['x']);
    expect(mmi.input).toEqual([dql.output[0], 'wq_Q8', dql.output[2]]);
    expect(getAttribute(cast, 'to')!.i).toBe(F);
    expect(scaleMul.input).toEqual([dql.output[1], 'wq_scales']);
    expect(mul.output).toEqual(['q']);
    expect(r.get('k_proj')![0].input).toEqual([dql.output[0], 'wk_Q8', dql.output[2]]);
  });

  it('Gemm: beta·C is added after the product', () => {
    const r = rewriteAll(qkvModel(), 'matmulinteger');
    const g = r.get('gemm')!;
    expect(ops(g)).toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul', 'Mul', 'Add']);
    expect(g[5].input).toEqual(['bias', 'gemm_beta']);
    expect(g.at(-1)!.output).toEqual(['g']);
    expect(ops(r.get('gemm_b1')!)).toEqual(['MatMulInteger', 'Cast', 'Mul', 'Mul', 'Add']);
  });
});

describe('dynamic-quantize-matmul format', () => {
  it('one fused node; a 1-D float32 bias with beta 1 becomes its bias input', () => {
    const r = rewriteAll(qkvModel(), 'dynamic-quantize-matmul');
    const q = r.get('q_proj')!;
    expect(ops(q)).toEqual(['DynamicQuantizeMatMul']);
    expect(q[0].domain).toBe('com.microsoft');
    expect(q[0].input).toEqual(['x', 'wq_Q8', 'wq_scales']);
    expect(q[0].output).toEqual(['q']);
    expect(r.get('gemm_b1')![0].input).toEqual(['x2', 'wh_Q8', 'wh_scales', '', 'bias']);
    expect(ops(r.get('gemm')!)).toEqual(['DynamicQuantizeMatMul', 'Mul', 'Add']);
  });
});

describe('float16 activations', () => {
  it('are cast to float32 once per activation and the result back to float16', () => {
    const r = rewriteAll(qkvModel(DataType.float16), 'matmulinteger');
    const q = r.get('q_proj')!;
    expect(ops(q)).toEqual(['Cast', 'DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul', 'Cast']);
    expect(getAttribute(q[0], 'to')!.i).toBe(F);
    expect(getAttribute(q.at(-1)!, 'to')!.i).toBe(DataType.float16);
    expect(q.at(-1)!.output).toEqual(['q']);
    expect(ops(r.get('k_proj')!)).toEqual(['MatMulInteger', 'Cast', 'Mul', 'Mul', 'Cast']);
    // The bias is added in float16 after the Cast back.
    expect(ops(r.get('gemm_b1')!).slice(-2)).toEqual(['Cast', 'Add']);
  });
});
