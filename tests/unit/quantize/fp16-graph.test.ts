/**
 * The float16 rewrite on small in-memory graphs: element type inference, which nodes compute in float32
 * and why, where Casts go (once per value, none between two float32 nodes), graph I/O with and without
 * keepIoTypes, attribute-typed producers, value_info types, and the range checks of the payload pass.
 */
import { describe, expect, it } from 'vitest';
import { f32ToF16 } from '../../../main/engine/native/index.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { floatsAttr, getAttribute, intAttr, intsAttr, NameScope } from '../../../main/engine/onnx/graph.ts';
import type { ModelProto, NodeProto } from '../../../main/engine/onnx/proto-types.ts';
import { checkFloat32, countFlushed, FP16_MAX } from '../../../main/engine/quantize/fp16.ts';
import { ALWAYS_FP32_OPS, normaliseFloatConstants, rewriteForFp16, type Fp16Decisions } from '../../../main/engine/quantize/fp16-graph.ts';
import { inferModelTypes } from '../../../main/engine/quantize/fp16-types.ts';
import { DEFAULT_FP16_BLOCK_OPS } from '../../../preload/recipe.ts';
import { buildModel, makeNode, makeTensor, valueInfo } from './build-model.ts';

const F = DataType.float32;
const H = DataType.float16;

/** x → LayerNormalization(scale) → Pow(2) → ReduceMean → Add(eps) → MatMul(W) → y, plus a Shape branch. */
function normModel(): ModelProto {
  return buildModel({
    nodes: [
      makeNode({ opType: 'LayerNormalization', inputs: ['x', 'ln_scale'], outputs: ['ln'], name: 'ln' }),
      makeNode({ opType: 'Pow', inputs: ['ln', 'two'], outputs: ['sq'], name: 'pow' }),
      makeNode({ opType: 'ReduceMean', inputs: ['sq'], outputs: ['mean'], name: 'mean', attributes: [intsAttr('axes', [-1])] }),
      makeNode({ opType: 'Add', inputs: ['mean', 'eps'], outputs: ['m2'], name: 'add' }),
      makeNode({ opType: 'Mul', inputs: ['ln', 'm2'], outputs: ['h'], name: 'mul' }),
      makeNode({ opType: 'MatMul', inputs: ['h', 'W'], outputs: ['y'], name: 'mm' }),
      makeNode({ opType: 'Shape', inputs: ['y'], outputs: ['shape'], name: 'shape' }),
      makeNode({ opType: 'Cast', inputs: ['shape'], outputs: ['shape_f'], name: 'cast', attributes: [intAttr('to', F)] }),
    ],
    initializers: [
      makeTensor('ln_scale', F, [4], Float32Array.of(1, 1, 1, 1)),
      makeTensor('two', F, [], Float32Array.of(2)),
      makeTensor('eps', F, [], Float32Array.of(1e-5)),
      makeTensor('W', F, [4, 3], new Float32Array(12).fill(0.5)),
    ],
    inputs: [valueInfo('x', F, ['batch', 4])],
    outputs: [valueInfo('y', F, ['batch', 3]), valueInfo('shape_f', F, [2])],
    opset: 17,
  });
}

const noDecisions = (): Fp16Decisions => ({ kept: new Map(), large: new Set() });

function rewrite(model: ModelProto, opts: { keepIoTypes?: boolean; blockOps?: string[]; keepNodes?: RegExp[]; decisions?: Fp16Decisions } = {}) {
  normaliseFloatConstants(model);
  const types = inferModelTypes(model);
  const names = NameScope.fromModel(model);
  return rewriteForFp16(model, types, opts.decisions ?? noDecisions(), {
    blockOps: new Set(opts.blockOps ?? DEFAULT_FP16_BLOCK_OPS), keepNodes: opts.keepNodes ?? [], keepIoTypes: opts.keepIoTypes ?? true,
    uniqueName: (b) => names.fresh(b),
  });
}

const byName = (model: ModelProto, name: string): NodeProto => model.graph!.node.find((n) => n.name === name)!;
const casts = (model: ModelProto): NodeProto[] => model.graph!.node.filter((n) => n.opType === 'Cast' && n.name !== 'cast');
const producer = (model: ModelProto, value: string): NodeProto | undefined => model.graph!.node.find((n) => n.output.includes(value));

describe('element type inference', () => {
  it('follows the operators\' type rules through the graph', () => {
    const model = normModel();
    const { main } = inferModelTypes(model);
    expect(main.get('x')).toBe(F);
    expect(main.get('mean')).toBe(F);
    expect(main.get('shape')).toBe(DataType.int64);
    expect(main.get('shape_f')).toBe(F);
  });

  it('types Where, comparisons, Constant and contrib ops', () => {
    const model = buildModel({
      nodes: [
        makeNode({ opType: 'Greater', inputs: ['x', 'x'], outputs: ['c'] }),
        makeNode({ opType: 'Constant', inputs: [], outputs: ['k'], attributes: [floatsAttr('value_floats', [1, 2])] }),
        makeNode({ opType: 'Where', inputs: ['c', 'x', 'x'], outputs: ['w'] }),
        makeNode({ opType: 'EmbedLayerNormalization', domain: 'com.microsoft', inputs: ['ids', '', 'emb'], outputs: ['e', 'mask', 'sum'] }),
        makeNode({ opType: 'SkipLayerNormalization', domain: 'com.microsoft', inputs: ['e', 'e', 'g'], outputs: ['s', 'mean', 'inv', 'skip'] }),
      ],
      initializers: [makeTensor('emb', H, [2, 2], new Uint16Array(4)), makeTensor('g', H, [2], new Uint16Array(2))],
      inputs: [valueInfo('x', F, [2]), valueInfo('ids', DataType.int32, [1, 2])],
      outputs: [valueInfo('w', F, [2])],
    });
    const { main } = inferModelTypes(model);
    expect([main.get('c'), main.get('k'), main.get('w')]).toEqual([DataType.bool, F, F]);
    expect([main.get('e'), main.get('mask'), main.get('sum')]).toEqual([H, DataType.int32, H]);
    expect([main.get('s'), main.get('mean'), main.get('skip')]).toEqual([H, F, H]);
  });
});

describe('rewriteForFp16', () => {
  it('blocked ops compute in float32 behind Casts; their own initializers stay float32; no float16 round trip between them', () => {
    const model = normModel();
    const r = rewrite(model);
    const fp32 = new Map(r.fp32Nodes.map((n) => [n.name, n.reason]));
    expect([...fp32.keys()].sort()).toEqual(['ln', 'mean', 'pow']);
    expect(fp32.get('pow')).toBe('Pow is in blockOps');

    // ln_scale is read only by LayerNormalization and `two` only by Pow: both stay float32.
    expect(r.kept.map((k) => k.name).sort()).toEqual(['ln_scale', 'two']);
    expect(r.kept.find((k) => k.name === 'ln_scale')!.reason).toBe('read only by float32 ops (LayerNormalization)');
    expect([...r.convert].map((t) => t.name).sort()).toEqual(['W', 'eps']);

    // x is a float32 input (keepIoTypes) read by a float32 node: no Cast before LayerNormalization.
    expect(byName(model, 'ln').input).toEqual(['x', 'ln_scale']);
    // Pow reads LayerNormalization's float32 output directly, ReduceMean reads Pow's.
    expect(byName(model, 'pow').input[0]).toBe('ln');
    expect(byName(model, 'mean').input[0]).toBe('sq');
    // The float16 nodes read Casts made once per value.
    const mulIn = byName(model, 'mul').input;
    expect(producer(model, mulIn[0])!.opType).toBe('Cast');
    expect(producer(model, mulIn[1])).toBe(byName(model, 'add'));
    expect(getAttribute(producer(model, mulIn[0])!, 'to')!.i).toBe(H);
    // Each Cast comes right after its value's producer (after other Casts of it at most), before any reader.
    const nodes = model.graph!.node;
    expect(casts(model).length).toBeGreaterThan(0);
    for (const c of casts(model)) {
      const src = producer(model, c.input[0]);
      const at = nodes.indexOf(c);
      const from = src ? nodes.indexOf(src) + 1 : 0;
      expect(nodes.slice(from, at).every((n) => casts(model).includes(n))).toBe(true);
      expect(at).toBeLessThan(Math.min(...nodes.filter((n) => n.input.includes(c.output[0])).map((n) => nodes.indexOf(n))));
    }
  });

  it('keepIoTypes: float32 outputs are made by a Cast from a renamed float16 value; Cast(to=FLOAT) in the float16 region → FLOAT16', () => {
    const model = normModel();
    rewrite(model);
    const g = model.graph!;
    expect(g.input[0].type!.tensorType!.elemType).toBe(F);
    expect(g.output.map((o) => o.type!.tensorType!.elemType)).toEqual([F, F]);
    const mm = byName(model, 'mm');
    expect(mm.output[0]).toBe('y_fp16');
    const toY = producer(model, 'y')!;
    expect(toY.opType).toBe('Cast');
    expect(toY.input).toEqual(['y_fp16']);
    expect(getAttribute(toY, 'to')!.i).toBe(F);
    // The user's Cast to FLOAT now makes float16, then a boundary Cast makes the float32 output.
    expect(getAttribute(byName(model, 'cast'), 'to')!.i).toBe(H);
    expect(byName(model, 'shape').input).toEqual(['y_fp16']);
  });

  it('keepIoTypes false: graph inputs and outputs become float16 and keep their names', () => {
    const model = normModel();
    rewrite(model, { keepIoTypes: false });
    const g = model.graph!;
    expect(g.input[0].type!.tensorType!.elemType).toBe(H);
    expect(g.output.map((o) => o.type!.tensorType!.elemType)).toEqual([H, H]);
    expect(byName(model, 'mm').output[0]).toBe('y');
    // LayerNormalization now reads a float32 Cast of the float16 input.
    const lnIn = producer(model, byName(model, 'ln').input[0])!;
    expect(lnIn.opType).toBe('Cast');
    expect(lnIn.input).toEqual(['x']);
  });

  it('keep patterns on node names and a custom blockOps list', () => {
    const model = normModel();
    const r = rewrite(model, { blockOps: [], keepNodes: [/^mm$/] });
    expect(r.fp32Nodes.map((n) => [n.name, n.reason])).toEqual([['mm', 'the node name matches a keep pattern (/^mm$/)']]);
    expect(r.kept.map((k) => k.name)).toEqual(['W']);
    expect(byName(model, 'mm').output[0]).toBe('y'); // float32 node writing a float32 output: no Cast
  });

  it('large tensors make their readers compute in float32, through data movement to the first computing op', () => {
    const model = buildModel({
      nodes: [
        makeNode({ opType: 'Reshape', inputs: ['big', 'shape'], outputs: ['big2'], name: 'reshape' }),
        makeNode({ opType: 'Mul', inputs: ['x', 'big2'], outputs: ['m'], name: 'mul' }),
        makeNode({ opType: 'Add', inputs: ['m', 'b'], outputs: ['y'], name: 'add' }),
      ],
      initializers: [
        makeTensor('big', F, [4], Float32Array.of(1e5, 1, 2, 3)),
        makeTensor('shape', DataType.int64, [1], BigInt64Array.of(4n)),
        makeTensor('b', F, [4], Float32Array.of(1, 2, 3, 4)),
      ],
      inputs: [valueInfo('x', F, [4])],
      outputs: [valueInfo('y', F, [4])],
    });
    const decisions: Fp16Decisions = { kept: new Map([['big', 'max |x| = 1.0e5 exceeds fp16\'s 65504; kept in float32']]), large: new Set(['big']) };
    const r = rewrite(model, { decisions });
    expect(r.fp32Nodes.map((n) => n.name).sort()).toEqual(['mul', 'reshape']);
    expect(r.fp32Nodes.find((n) => n.name === 'mul')!.reason).toBe('reads big, whose values exceed float16\'s range');
    expect(r.kept.map((k) => k.name)).toEqual(['big']);
    expect([...r.convert].map((t) => t.name)).toEqual(['b']);
    expect(byName(model, 'mul').input).toEqual(['x', 'big2']);
  });

  it('Constant and ConstantOfShape produce float16 in the float16 region; value_info types follow', () => {
    const model = buildModel({
      nodes: [
        makeNode({ opType: 'Constant', inputs: [], outputs: ['k'], name: 'k', attributes: [floatsAttr('value_floats', [0.5, 2])] }),
        makeNode({ opType: 'ConstantOfShape', inputs: ['shape'], outputs: ['z'], name: 'zeros' }),
        makeNode({ opType: 'Add', inputs: ['x', 'k'], outputs: ['s'], name: 'add' }),
        makeNode({ opType: 'Add', inputs: ['s', 'z'], outputs: ['y'], name: 'add2' }),
      ],
      initializers: [makeTensor('shape', DataType.int64, [1], BigInt64Array.of(2n))],
      inputs: [valueInfo('x', F, [2])],
      outputs: [valueInfo('y', F, [2])],
    });
    model.graph!.valueInfo.push(valueInfo('s', F, [2]), valueInfo('z', F, [2]));
    const r = rewrite(model);
    const k = byName(model, 'k');
    expect(k.attribute.map((a) => a.name)).toEqual(['value']);
    expect([...r.convert]).toContain(getAttribute(k, 'value')!.t);
    const zValue = getAttribute(byName(model, 'zeros'), 'value')!.t!;
    expect(zValue.dataType).toBe(H);
    expect(model.graph!.valueInfo.map((v) => v.type!.tensorType!.elemType)).toEqual([H, H]);
    expect(model.graph!.valueInfo[0].type!.tensorType!.shape!.dim.map((d) => d.dimValue)).toEqual([2]);
  });

  it('ops without a float16 schema always compute in float32', () => {
    expect(ALWAYS_FP32_OPS.get('Range')).toMatch(/no float16/);
    const model = buildModel({
      nodes: [makeNode({ opType: 'Range', inputs: ['a', 'b', 'd'], outputs: ['r'], name: 'range' })],
      initializers: [makeTensor('b', F, [], Float32Array.of(5)), makeTensor('d', F, [], Float32Array.of(1))],
      inputs: [valueInfo('a', F, [])],
      outputs: [valueInfo('r', F, ['n'])],
    });
    const r = rewrite(model, { keepIoTypes: false });
    expect(r.fp32Nodes[0].reason).toBe('Range: the ONNX schema of Range has no float16');
    expect(r.kept.map((k) => k.name).sort()).toEqual(['b', 'd']);
    expect(producer(model, 'r')!.opType).toBe('Cast');
  });
});

describe('payload checks', () => {
  it('finds the largest finite magnitude and the nonzero count', () => {
    expect(checkFloat32(Float32Array.of(0, -3, 2, Infinity, -0))).toEqual({ maxAbs: 3, nonzero: 3 });
    expect(checkFloat32(Float32Array.of(1, -(FP16_MAX + 1))).maxAbs).toBeGreaterThan(FP16_MAX);
  });

  it('counts nonzero values that become zero in float16', async () => {
    // float16's smallest subnormal is 2^-24 ≈ 5.96e-8; anything up to half of it rounds to ±0.
    const values = Float32Array.of(1e-9, 2e-8, 1e-3, 0, -1e-9, 2 ** -25, 2 ** -24);
    expect(countFlushed(values, await f32ToF16(values))).toBe(4);
  });
});
