/**
 * The hand-written protobuf codec: varints (int64 extremes), every attribute kind, unknown fields kept,
 * typed tensor fields converted to little-endian bytes, and the float16 / bfloat16 conversions.
 */
import { describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { encodeModel, encodeTensor } from '../../../main/engine/onnx/encode.ts';
import { AttributeType, type AttributeProto, type ModelProto } from '../../../main/engine/onnx/proto-types.ts';
import { decodeModelBytes, decodeTensorBytes } from '../../../main/engine/onnx/reader.ts';
import { bfloat16ToFloat, bytesToFloat32, floatToHalf, halfToFloat, makeTensor, readTensorBytes, readTensorFloat32 } from '../../../main/engine/onnx/tensor-data.ts';
import { BufferSource, ProtoCursor, ProtoWriter, WIRE_LEN } from '../../../main/engine/onnx/wire.ts';
import { emptyGraph, modelOf, nodeOf, structure, valueInfo } from './helpers.ts';

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const noPlacement = { placement: () => null };

function attr(name: string, fill: Partial<AttributeProto>): AttributeProto {
  return { name, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [], ...fill };
}

describe('varints', () => {
  it('round-trip signed int64 values, including those beyond 2^53', () => {
    const values = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, -1, -300, Number.MIN_SAFE_INTEGER, 2n ** 53n + 1n, INT64_MAX, INT64_MIN, -(2n ** 60n)];
    for (const v of values) {
      const w = new ProtoWriter();
      w.rawVarint(v);
      const c = new ProtoCursor(new BufferSource(w.toBytes()));
      expect(c.int64()).toBe(v);
      expect(c.more()).toBe(false);
    }
  });

  it('encodes negative numbers as 10-byte two\'s complement', () => {
    const w = new ProtoWriter();
    w.rawVarint(-1);
    expect(Array.from(w.toBytes())).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });
});

describe('model messages', () => {
  function richModel(): ModelProto {
    const branch = emptyGraph({ name: 'then', node: [nodeOf('Identity', ['W'], ['t_out'])], output: [valueInfo('t_out', DataType.float32, [2])] });
    const ifNode = nodeOf('If', ['cond'], ['y'], 'if');
    ifNode.attribute = [attr('then_branch', { type: AttributeType.GRAPH, g: branch }), attr('else_branch', { type: AttributeType.GRAPH, g: branch })];
    const slice = nodeOf('Slice', ['x', 's', 'e'], ['sl'], 'slice');
    slice.attribute = [
      attr('ends', { type: AttributeType.INTS, ints: [INT64_MAX, -1, 0, 2n ** 53n + 1n] }),
      attr('i', { type: AttributeType.INT, i: INT64_MIN }),
      attr('f', { type: AttributeType.FLOAT, f: Math.fround(0.1) }),
      attr('floats', { type: AttributeType.FLOATS, floats: [1.5, -2.25, Number.POSITIVE_INFINITY] }),
      attr('s', { type: AttributeType.STRING, s: new TextEncoder().encode('héllo ✓') }),
      attr('strings', { type: AttributeType.STRINGS, strings: [new Uint8Array([0, 255, 1]), new Uint8Array()] }),
      attr('t', { type: AttributeType.TENSOR, t: makeTensor('c', DataType.int64, [2], BigInt64Array.of(INT64_MAX, -5n)) }),
      attr('tensors', { type: AttributeType.TENSORS, tensors: [makeTensor('d', DataType.float16, [1], Uint16Array.of(0x3c00))] }),
      attr('graphs', { type: AttributeType.GRAPHS, graphs: [branch] }),
      attr('tp', { type: AttributeType.TYPE_PROTO, tp: { sequenceType: { elemType: { tensorType: { elemType: 1 } } } } }),
      attr('sparse', { type: AttributeType.SPARSE_TENSOR, sparseTensor: { values: makeTensor('v', DataType.float32, [1], Float32Array.of(3)), indices: makeTensor('ix', DataType.int64, [1], BigInt64Array.of(4n)), dims: [10] } }),
      attr('ref', { refAttrName: 'outer', type: AttributeType.INT, docString: 'doc' }),
    ];
    slice.domain = 'com.example';
    slice.overload = 'v2';
    slice.metadataProps = [{ key: 'k', value: 'v' }];
    const g = emptyGraph({
      node: [ifNode, slice],
      initializer: [makeTensor('W', DataType.float32, [2], Float32Array.of(1, 2))],
      input: [
        valueInfo('cond', DataType.bool, []),
        { name: 'seq', type: { sequenceType: { elemType: { tensorType: { elemType: DataType.float32, shape: { dim: [{ dimParam: 'n' }, { dimValue: 3, denotation: 'DATA_FEATURE' }, {}] } } } } }, metadataProps: [] },
        { name: 'map', type: { mapType: { keyType: DataType.int64, valueType: { tensorType: { elemType: DataType.float32 } } } }, metadataProps: [] },
        { name: 'opt', type: { optionalType: { elemType: { tensorType: { elemType: DataType.int8 } } } }, docString: 'optional', metadataProps: [] },
      ],
      output: [valueInfo('y', DataType.float32, [2])],
      quantizationAnnotation: [{ tensorName: 'W', quantParameterTensorNames: [{ key: 'SCALE_TENSOR', value: 'W_scale' }] }],
      sparseInitializer: [{ values: makeTensor('sp', DataType.float32, [2], Float32Array.of(1, 2)), indices: makeTensor('spi', DataType.int64, [2], BigInt64Array.of(0n, 5n)), dims: [8] }],
      metadataProps: [{ key: 'graph', value: 'meta' }],
      docString: 'graph doc',
    });
    const m = modelOf(g, 21, [{ domain: 'com.microsoft', version: 1 }]);
    m.producerVersion = '1.0';
    m.modelVersion = 3;
    m.metadataProps = [{ key: 'author', value: 'tests' }];
    m.functions = [{
      name: 'F', domain: 'local', input: ['a'], output: ['b'], attribute: ['alpha'], attributeProto: [attr('beta', { type: AttributeType.INT, i: 2 })],
      node: [nodeOf('Relu', ['a'], ['b'])], opsetImport: [{ domain: '', version: 21 }], valueInfo: [], metadataProps: [], overload: 'o',
    }];
    m.trainingInfo = [{ algorithm: emptyGraph({ name: 'train' }), initializationBinding: [{ key: 'W', value: 'W0' }], updateBinding: [] }];
    return m;
  }

  it('decode(encode(model)) is the same model, every field kind included', () => {
    const m = richModel();
    const back = decodeModelBytes(encodeModel(m, noPlacement).toBytes());
    expect(structure(back)).toEqual(structure(m));
    const sliceBack = back.graph!.node[1];
    expect(sliceBack.attribute[0].ints).toEqual([INT64_MAX, -1, 0, 2n ** 53n + 1n]);
    expect(sliceBack.attribute[1].i).toBe(INT64_MIN);
    expect(sliceBack.attribute[2].f).toBe(Math.fround(0.1));
  });

  it('keeps fields it does not know, byte for byte', () => {
    const m = richModel();
    // Field 99 (varint) on the model, field 50 (bytes) on a node, field 30 (fixed64) on a tensor.
    const u = (fill: (w: ProtoWriter) => void): Uint8Array => { const w = new ProtoWriter(); fill(w); return w.toBytes(); };
    m.unknownFields = [u((w) => w.varintField(99, 12345))];
    m.graph!.node[0].unknownFields = [u((w) => w.bytesField(50, new Uint8Array([9, 8, 7])))];
    m.graph!.initializer[0].unknownFields = [u((w) => { w.tag(30, 1); w.rawBytes(new Uint8Array(8).fill(0xab)); })];
    const bytes = encodeModel(m, noPlacement).toBytes();
    const back = decodeModelBytes(bytes);
    expect(back.unknownFields).toEqual(m.unknownFields);
    expect(back.graph!.node[0].unknownFields).toEqual(m.graph!.node[0].unknownFields);
    expect(back.graph!.initializer[0].unknownFields).toEqual(m.graph!.initializer[0].unknownFields);
    expect(encodeModel(back, noPlacement).toBytes()).toEqual(bytes);
  });

  it('reads unpacked repeated ints and floats as well as packed ones', () => {
    const a = new ProtoWriter();
    a.stringField(1, 'axes');
    const packed = new ProtoWriter();
    for (const v of [3, -1, 7]) packed.rawVarint(v);
    a.messageField(8, packed);
    a.varintField(8, 9);                       // one more, unpacked
    a.floatField(7, 0.5);
    const node = new ProtoWriter();
    node.stringField(4, 'X');
    node.messageField(5, a);
    const graph = new ProtoWriter();
    graph.messageField(1, node);
    const model = new ProtoWriter();
    model.varintField(1, 8);
    model.messageField(7, graph);
    const back = decodeModelBytes(model.toBytes());
    expect(back.graph!.node[0].attribute[0].ints).toEqual([3, -1, 7, 9]);
    expect(back.graph!.node[0].attribute[0].floats).toEqual([0.5]);
  });
});

describe('tensor data', () => {
  function tensorWith(dataType: number, dims: number[], fill: (w: ProtoWriter) => void): Uint8Array {
    const w = new ProtoWriter();
    for (const d of dims) w.varintField(1, d);
    w.varintField(2, dataType);
    fill(w);
    w.stringField(8, 't');
    return w.toBytes();
  }
  const packedVarints = (field: number, values: (number | bigint)[]) => (w: ProtoWriter): void => {
    const body = new ProtoWriter();
    for (const v of values) body.rawVarint(v);
    w.messageField(field, body);
  };

  it('turns typed fields into little-endian raw bytes', async () => {
    const f32 = decodeTensorBytes(tensorWith(DataType.float32, [3], (w) => {
      const body = new ProtoWriter();
      body.rawBytes(new Uint8Array(Float32Array.of(1.5, -2, 3e-8).buffer));
      w.messageField(4, body);
    }));
    expect(await readTensorFloat32(f32)).toEqual(Float32Array.of(1.5, -2, 3e-8));

    const f16 = decodeTensorBytes(tensorWith(DataType.float16, [2], packedVarints(5, [0x3c00, 0xc000])));
    expect(Array.from(await readTensorBytes(f16))).toEqual([0x00, 0x3c, 0x00, 0xc0]);
    expect(await readTensorFloat32(f16)).toEqual(Float32Array.of(1, -2));

    const i8 = decodeTensorBytes(tensorWith(DataType.int8, [3], packedVarints(5, [-1, 127, -128])));
    expect(await readTensorFloat32(i8)).toEqual(Float32Array.of(-1, 127, -128));

    const i64 = decodeTensorBytes(tensorWith(DataType.int64, [2], packedVarints(7, [INT64_MAX, -3])));
    const b = await readTensorBytes(i64);
    expect(new BigInt64Array(b.slice().buffer)).toEqual(BigInt64Array.of(INT64_MAX, -3n));

    const u32 = decodeTensorBytes(tensorWith(DataType.uint32, [2], packedVarints(11, [4294967295, 7])));
    expect(new Uint32Array((await readTensorBytes(u32)).slice().buffer)).toEqual(Uint32Array.of(4294967295, 7));

    const f64 = decodeTensorBytes(tensorWith(DataType.float64, [2], (w) => {
      const body = new ProtoWriter();
      body.rawBytes(new Uint8Array(Float64Array.of(Math.PI, -1e300).buffer));
      w.messageField(10, body);
    }));
    expect(Array.from(await readTensorFloat32(f64))).toEqual([Math.fround(Math.PI), Number.NEGATIVE_INFINITY]);

    // int4: each int32_data element holds two values, low nibble first; 3 values → 2 bytes.
    const i4 = decodeTensorBytes(tensorWith(DataType.int4, [3], packedVarints(5, [0x7f, 0x08])));
    expect(Array.from(await readTensorBytes(i4))).toEqual([0x7f, 0x08]);
    expect(await readTensorFloat32(i4)).toEqual(Float32Array.of(-1, 7, -8));
  });

  it('writes a tensor back as raw_data with the same bytes', async () => {
    const t = decodeTensorBytes(tensorWith(DataType.int32, [2], packedVarints(5, [-7, 1 << 30])));
    const again = decodeTensorBytes(encodeTensor(t, noPlacement).toBytes());
    expect(Array.from(await readTensorBytes(again))).toEqual(Array.from(await readTensorBytes(t)));
    const c = new ProtoCursor(new BufferSource(encodeTensor(t, noPlacement).toBytes()));
    const fields: number[] = [];
    while (c.more()) { const tag = c.tag(); fields.push(tag >> 3); c.skip(tag & 7); }
    expect(fields).toEqual([1, 2, 8, 9]);                     // dims, data_type, name, raw_data
    expect(WIRE_LEN).toBe(2);
  });
});

describe('16-bit floats', () => {
  it('float16: every finite half converts to float and back to the same bits', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) { expect(h & 0x7c00).toBe(0x7c00); continue; }
      expect(floatToHalf(v)).toBe(h);
    }
  });

  it('float16: rounds to nearest, ties to even, overflows to infinity', () => {
    // Between 1 (0x3c00) and 1 + 2^-10 (0x3c01): the midpoint ties to the even 0x3c00.
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00);
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToHalf(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(floatToHalf(65520)).toBe(0x7c00);
    expect(floatToHalf(65519)).toBe(0x7bff);
    expect(floatToHalf(2 ** -25)).toBe(0);                   // halfway to the smallest subnormal → even (0)
    expect(floatToHalf(2 ** -25 + 2 ** -35)).toBe(1);
    expect(floatToHalf(-0)).toBe(0x8000);
  });

  it('bfloat16: the top half of a float32', () => {
    const f = Float32Array.of(1, -3.5, 2 ** 100, 2 ** -130);
    const bits = new Uint32Array(f.buffer);
    for (let i = 0; i < f.length; i++) expect(bfloat16ToFloat(bits[i] >>> 16)).toBe(f[i]);
    const bytes = new Uint8Array(Uint16Array.of(0x3f80, 0xc060).buffer);
    expect(bytesToFloat32(bytes, DataType.bfloat16, 2)).toEqual(Float32Array.of(1, -3.5));
  });
});
