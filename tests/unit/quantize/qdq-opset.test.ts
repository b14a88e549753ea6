import { describe, expect, it } from 'vitest';
import { intsAttr, NameScope } from '../../../main/engine/onnx/graph.ts';
import { prepareForBlockedDequantize } from '../../../main/engine/quantize/qdq-opset.ts';
import { buildModel, DataType, makeNode, valueInfo } from './build-model.ts';

const io = { inputs: [valueInfo('X', DataType.float32, [1, 8])], outputs: [valueInfo('Y', DataType.float32, [1, 1])], initializers: [] };

describe('prepareForBlockedDequantize', () => {
  it('raises opset 17 to 21 and IR to 10, moving ReduceMean axes from attribute to input', () => {
    const m = buildModel({ ...io, opset: 17, irVersion: 8, nodes: [makeNode({ opType: 'ReduceMean', inputs: ['X'], outputs: ['Y'], name: 'rm', attributes: [intsAttr('axes', [-1])] })] });
    const names = NameScope.fromModel(m);
    expect(prepareForBlockedDequantize(m, (b) => names.fresh(b))).toBe(1);
    expect(m.opsetImport).toEqual([{ domain: '', version: 21 }]);
    expect(m.irVersion).toBe(10);
    const node = m.graph!.node[0];
    expect(node.attribute).toEqual([]);
    expect(node.input).toEqual(['X', 'rm_axes']);
    const axes = m.graph!.initializer.find((t) => t.name === 'rm_axes')!;
    expect(axes.dataType).toBe(DataType.int64);
    expect(axes.dims).toEqual([1]);
    const bytes = axes.data!.kind === 'bytes' ? axes.data!.bytes : new Uint8Array(0);
    expect(Array.from(new BigInt64Array(bytes.slice().buffer))).toEqual([-1n]);
  });

  it('refuses opsets below 13 and ops whose meaning changed', () => {
    const old = buildModel({ ...io, opset: 11, nodes: [makeNode({ opType: 'Relu', inputs: ['X'], outputs: ['Y'] })] });
    expect(() => prepareForBlockedDequantize(old, (b) => b)).toThrow(/opset 11.*Use the MatMulNBits format/);
    const gn = buildModel({ ...io, opset: 18, nodes: [makeNode({ opType: 'GroupNormalization', inputs: ['X', 's', 'b'], outputs: ['Y'] })] });
    expect(() => prepareForBlockedDequantize(gn, (b) => b)).toThrow(/uses GroupNormalization, whose meaning changed/);
  });
});
