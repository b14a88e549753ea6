/**
 * Decoders for the onnx.proto messages (field numbers from the spec; names in proto-types.ts).
 * Tensor payloads are not copied: `raw_data` (and packed `float_data`/`double_data`) at or above
 * `inlineBelow` bytes become `{ kind: 'file', path, offset, length }` references into the model file, and
 * external data becomes a reference into its data file (resolved and checked by `resolveExternal`).
 */
import type {
  AttributeProto, FunctionProto, GraphProto, Int64, ModelProto, NodeProto, OperatorSetIdProto, SparseTensorProto,
  StringStringEntryProto, TensorAnnotation, TensorProto, TensorSegment, TensorShapeDimension, TensorShapeProto,
  TensorSource, TrainingInfoProto, TypeProto, TypeProtoMap, TypeProtoOpaque, TypeProtoOptional, TypeProtoSequence,
  TypeProtoTensor, ValueInfoProto,
} from './proto-types.ts';
import { dtypeBits } from './dtype.ts';
import { ProtoError, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, type ProtoCursor } from './wire.ts';

export interface DecodeOptions {
  /** raw_data shorter than this is copied into memory; longer payloads stay references into the file. */
  inlineBelow: number;
  /** Turns a tensor's external_data entries into a file reference (validating the location). */
  resolveExternal?: (tensor: TensorProto) => TensorSource;
}

const L = (field: number): number => field * 8 + WIRE_LEN;
const V = (field: number): number => field * 8 + WIRE_VARINT;

/** Field names for error messages ("the file ends inside TensorProto.raw_data"). */
export const FIELD_NAMES: Record<string, Record<number, string>> = {
  ModelProto: { 1: 'ir_version', 2: 'producer_name', 3: 'producer_version', 4: 'domain', 5: 'model_version', 6: 'doc_string', 7: 'graph', 8: 'opset_import', 14: 'metadata_props', 20: 'training_info', 25: 'functions', 26: 'configuration' },
  GraphProto: { 1: 'node', 2: 'name', 5: 'initializer', 10: 'doc_string', 11: 'input', 12: 'output', 13: 'value_info', 14: 'quantization_annotation', 15: 'sparse_initializer', 16: 'metadata_props' },
  NodeProto: { 1: 'input', 2: 'output', 3: 'name', 4: 'op_type', 5: 'attribute', 6: 'doc_string', 7: 'domain', 8: 'overload', 9: 'metadata_props', 10: 'device_configurations' },
  AttributeProto: { 1: 'name', 2: 'f', 3: 'i', 4: 's', 5: 't', 6: 'g', 7: 'floats', 8: 'ints', 9: 'strings', 10: 'tensors', 11: 'graphs', 13: 'doc_string', 14: 'tp', 15: 'type_protos', 20: 'type', 21: 'ref_attr_name', 22: 'sparse_tensor', 23: 'sparse_tensors' },
  TensorProto: { 1: 'dims', 2: 'data_type', 3: 'segment', 4: 'float_data', 5: 'int32_data', 6: 'string_data', 7: 'int64_data', 8: 'name', 9: 'raw_data', 10: 'double_data', 11: 'uint64_data', 12: 'doc_string', 13: 'external_data', 14: 'data_location', 16: 'metadata_props' },
  ValueInfoProto: { 1: 'name', 2: 'type', 3: 'doc_string', 4: 'metadata_props' },
  TypeProto: { 1: 'tensor_type', 4: 'sequence_type', 5: 'map_type', 6: 'denotation', 7: 'opaque_type', 8: 'sparse_tensor_type', 9: 'optional_type' },
  StringStringEntryProto: { 1: 'key', 2: 'value' },
  OperatorSetIdProto: { 1: 'domain', 2: 'version' },
  'TensorProto.Segment': { 1: 'begin', 2: 'end' },
  SparseTensorProto: { 1: 'values', 2: 'indices', 3: 'dims' },
  TensorShapeProto: { 1: 'dim' },
  'TensorShapeProto.Dimension': { 1: 'dim_value', 2: 'dim_param', 3: 'denotation' },
  'TypeProto.Tensor': { 1: 'elem_type', 2: 'shape' },
  'TypeProto.SparseTensor': { 1: 'elem_type', 2: 'shape' },
  'TypeProto.Sequence': { 1: 'elem_type' },
  'TypeProto.Optional': { 1: 'elem_type' },
  'TypeProto.Map': { 1: 'key_type', 2: 'value_type' },
  TensorAnnotation: { 1: 'tensor_name', 2: 'quant_parameter_tensor_names' },
  TrainingInfoProto: { 1: 'initialization', 2: 'algorithm', 3: 'initialization_binding', 4: 'update_binding' },
  FunctionProto: { 1: 'name', 4: 'input', 5: 'output', 6: 'attribute', 7: 'node', 8: 'doc_string', 9: 'opset_import', 10: 'domain', 11: 'attribute_proto', 12: 'value_info', 13: 'overload', 14: 'metadata_props' },
};

export function fieldName(message: string, field: number): string {
  return FIELD_NAMES[message]?.[field] ?? `field ${field}`;
}

/** Runs `body` over the length-delimited submessage at the cursor, then restores the outer bounds. */
function sub<T>(c: ProtoCursor, message: string, body: () => T): T {
  const { len, truncated } = c.messageLength();
  const outerEnd = c.end;
  const outerMessage = c.message;
  const outerField = c.field;
  const outerLabel = c.label;
  c.end = c.pos + len;
  c.message = message;
  c.field = 0;
  c.label = '';
  const value = body();
  if (truncated) throw new ProtoError('truncated', c.pos);
  if (c.pos !== c.end) throw new ProtoError('malformed', c.pos, `${message} did not end where its length said`);
  c.end = outerEnd;
  c.message = outerMessage;
  c.field = outerField;
  c.label = outerLabel;
  return value;
}

function unknown(c: ProtoCursor, into: { unknownFields?: Uint8Array[] }, start: number, tag: number): void {
  (into.unknownFields ??= []).push(c.unknownField(start, tag & 7));
}

function str(c: ProtoCursor): string {
  return c.string(c.length());
}

function bytes(c: ProtoCursor): Uint8Array {
  return c.bytes(c.length());
}

/** End position of a packed repeated field whose length prefix is at the cursor. */
function packedEnd(c: ProtoCursor): number {
  const len = c.length();
  return c.pos + len;
}

function packedDone(c: ProtoCursor, end: number): void {
  if (c.pos !== end) throw new ProtoError('malformed', c.pos, `a packed ${c.message}.${fieldName(c.message, c.field)} does not end on a value boundary`);
}

/** Repeated int64, packed or not. */
function int64s(c: ProtoCursor, tag: number, into: Int64[]): void {
  if ((tag & 7) === WIRE_LEN) {
    const end = packedEnd(c);
    while (c.pos < end) into.push(c.int64());
    packedDone(c, end);
  } else if ((tag & 7) === WIRE_VARINT) {
    into.push(c.int64());
  } else {
    throw new ProtoError('malformed', c.pos, 'repeated int64 field with a wrong wire type');
  }
}

/** Checks the wire type of a known field; a mismatch means the bytes are not this message. */
function expect(c: ProtoCursor, tag: number, wire: number): void {
  if ((tag & 7) !== wire) throw new ProtoError('malformed', c.pos, `${c.message}.${fieldName(c.message, c.field)} has wire type ${tag & 7}, expected ${wire}`);
}

function entry(c: ProtoCursor): StringStringEntryProto {
  return sub(c, 'StringStringEntryProto', () => {
    const e: StringStringEntryProto = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) e.key = str(c);
      else if (tag === L(2)) e.value = str(c);
      else unknown(c, e, start, tag);
    }
    return e;
  });
}

function opsetId(c: ProtoCursor): OperatorSetIdProto {
  return sub(c, 'OperatorSetIdProto', () => {
    const o: OperatorSetIdProto = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) o.domain = str(c);
      else if (tag === V(2)) o.version = c.int64();
      else unknown(c, o, start, tag);
    }
    return o;
  });
}

function segment(c: ProtoCursor): TensorSegment {
  return sub(c, 'TensorProto.Segment', () => {
    const s: TensorSegment = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === V(1)) s.begin = c.int64();
      else if (tag === V(2)) s.end = c.int64();
      else unknown(c, s, start, tag);
    }
    return s;
  });
}

/** Pieces of a tensor payload as they were found (typed fields may come in several runs). */
type Chunk = TensorSource;

function elementCount(dims: Int64[]): number {
  let n = 1;
  for (const d of dims) n *= Number(d);
  return n;
}

export function decodeTensor(c: ProtoCursor, opts: DecodeOptions): TensorProto {
  return sub(c, 'TensorProto', () => decodeTensorBody(c, opts));
}

/** Decodes the fields of a TensorProto from the cursor up to its end (used for standalone .pb files too). */
export function decodeTensorBody(c: ProtoCursor, opts: DecodeOptions): TensorProto {
  const t: TensorProto = { dims: [], stringData: [], externalData: [], metadataProps: [] };
  const raw: Chunk[] = [];        // raw_data, float_data, double_data: already little-endian bytes
  let int32s: number[] | null = null;
  let int64s_: Int64[] | null = null;
  let uint64s: (number | bigint)[] | null = null;
  const filePath = c.src.path;

  const takeBytes = (len: number): Chunk => {
    if (filePath !== null && len >= opts.inlineBelow && len > 0) {
      const ref: Chunk = { kind: 'file', path: filePath, offset: c.pos, length: len };
      c.pos += len;
      return ref;
    }
    return { kind: 'bytes', bytes: c.bytes(len) };
  };

  while (c.more()) {
    const start = c.pos;
    const tag = c.tag();
    switch (c.field) {
      case 1: int64s(c, tag, t.dims); break;
      case 2: expect(c, tag, WIRE_VARINT); t.dataType = c.int32(); break;
      case 3: expect(c, tag, WIRE_LEN); t.segment = segment(c); break;
      case 4: // float_data: packed fixed32 (or unpacked fixed32)
        if ((tag & 7) === WIRE_LEN) raw.push(takeBytes(c.length()));
        else { expect(c, tag, WIRE_FIXED32); raw.push({ kind: 'bytes', bytes: c.bytes(4) }); }
        break;
      case 5: {
        int32s ??= [];
        if ((tag & 7) === WIRE_LEN) { const end = packedEnd(c); while (c.pos < end) int32s.push(c.int32()); packedDone(c, end); }
        else { expect(c, tag, WIRE_VARINT); int32s.push(c.int32()); }
        break;
      }
      case 6: expect(c, tag, WIRE_LEN); t.stringData.push(bytes(c)); break;
      case 7: int64s_ ??= []; int64s(c, tag, int64s_); break;
      case 8: expect(c, tag, WIRE_LEN); t.name = str(c); c.label = `tensor '${t.name}'`; break;
      case 9: expect(c, tag, WIRE_LEN); raw.push(takeBytes(c.length())); break;
      case 10: // double_data: packed fixed64
        if ((tag & 7) === WIRE_LEN) raw.push(takeBytes(c.length()));
        else { expect(c, tag, WIRE_FIXED64); raw.push({ kind: 'bytes', bytes: c.bytes(8) }); }
        break;
      case 11: {
        uint64s ??= [];
        if ((tag & 7) === WIRE_LEN) { const end = packedEnd(c); while (c.pos < end) uint64s.push(c.varint()); packedDone(c, end); }
        else { expect(c, tag, WIRE_VARINT); uint64s.push(c.varint()); }
        break;
      }
      case 12: expect(c, tag, WIRE_LEN); t.docString = str(c); break;
      case 13: expect(c, tag, WIRE_LEN); t.externalData.push(entry(c)); break;
      case 14: expect(c, tag, WIRE_VARINT); t.dataLocation = c.int32(); break;
      case 16: expect(c, tag, WIRE_LEN); t.metadataProps.push(entry(c)); break;
      default: unknown(c, t, start, tag);
    }
  }

  if (int32s) raw.push({ kind: 'bytes', bytes: int32sToBytes(int32s, t.dataType) });
  if (int64s_) raw.push({ kind: 'bytes', bytes: int64sToBytes(int64s_) });
  if (uint64s) raw.push({ kind: 'bytes', bytes: uint64sToBytes(uint64s, t.dataType) });

  if (t.dataLocation === 1) {
    if (!opts.resolveExternal) throw new ProtoError('malformed', c.pos, `tensor '${t.name ?? ''}' uses external data, which needs a model file`);
    t.data = opts.resolveExternal(t);
  } else if (raw.length === 1) {
    t.data = raw[0];
  } else if (raw.length > 1) {
    t.data = { kind: 'bytes', bytes: concatChunks(raw, c) };
  }
  // Sub-byte types in int32_data: one byte per int32 holds two (4-bit) or four (2-bit) elements.
  if (int32s && t.data?.kind === 'bytes' && dtypeBits(t.dataType) < 8) {
    const need = Math.ceil((elementCount(t.dims) * dtypeBits(t.dataType)) / 8);
    if (t.data.bytes.length > need) t.data = { kind: 'bytes', bytes: t.data.bytes.subarray(0, need) };
  }
  return t;
}

function concatChunks(chunks: Chunk[], c: ProtoCursor): Uint8Array {
  let total = 0;
  for (const ch of chunks) total += ch.kind === 'bytes' ? ch.bytes.length : ch.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const ch of chunks) {
    if (ch.kind === 'bytes') { out.set(ch.bytes, at); at += ch.bytes.length; }
    else { out.set(c.src.view(ch.offset, ch.length), at); at += ch.length; }
  }
  return out;
}

/** int32_data → little-endian element bytes of the tensor's dtype (16-bit floats are stored as their bits). */
function int32sToBytes(values: number[], dataType: number | undefined): Uint8Array {
  const bits = dtypeBits(dataType);
  const width = bits >= 8 ? bits / 8 : 1;
  const out = new Uint8Array(values.length * width);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (width === 4) dv.setInt32(i * 4, values[i], true);
    else if (width === 2) dv.setUint16(i * 2, values[i] & 0xffff, true);
    else out[i] = values[i] & 0xff;
  }
  return out;
}

function int64sToBytes(values: Int64[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setBigInt64(i * 8, BigInt(values[i]), true);
  return out;
}

function uint64sToBytes(values: (number | bigint)[], dataType: number | undefined): Uint8Array {
  const width = dataType === 12 ? 4 : 8; // UINT32 or UINT64
  const out = new Uint8Array(values.length * width);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (width === 4) dv.setUint32(i * 4, Number(values[i]), true);
    else dv.setBigUint64(i * 8, BigInt(values[i]), true);
  }
  return out;
}

function sparseTensor(c: ProtoCursor, opts: DecodeOptions): SparseTensorProto {
  return sub(c, 'SparseTensorProto', () => {
    const s: SparseTensorProto = { dims: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) s.values = decodeTensor(c, opts);
      else if (tag === L(2)) s.indices = decodeTensor(c, opts);
      else if (c.field === 3) int64s(c, tag, s.dims);
      else unknown(c, s, start, tag);
    }
    return s;
  });
}

function dimension(c: ProtoCursor): TensorShapeDimension {
  return sub(c, 'TensorShapeProto.Dimension', () => {
    const d: TensorShapeDimension = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === V(1)) d.dimValue = c.int64();
      else if (tag === L(2)) d.dimParam = str(c);
      else if (tag === L(3)) d.denotation = str(c);
      else unknown(c, d, start, tag);
    }
    return d;
  });
}

function shape(c: ProtoCursor): TensorShapeProto {
  return sub(c, 'TensorShapeProto', () => {
    const s: TensorShapeProto = { dim: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) s.dim.push(dimension(c));
      else unknown(c, s, start, tag);
    }
    return s;
  });
}

function tensorType(c: ProtoCursor, message: string): TypeProtoTensor {
  return sub(c, message, () => {
    const t: TypeProtoTensor = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === V(1)) t.elemType = c.int32();
      else if (tag === L(2)) t.shape = shape(c);
      else unknown(c, t, start, tag);
    }
    return t;
  });
}

function elemTypeOnly<T extends { elemType?: TypeProto; unknownFields?: Uint8Array[] }>(c: ProtoCursor, message: string): T {
  return sub(c, message, () => {
    const t = {} as T;
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) t.elemType = typeProto(c);
      else unknown(c, t, start, tag);
    }
    return t;
  });
}

function mapType(c: ProtoCursor): TypeProtoMap {
  return sub(c, 'TypeProto.Map', () => {
    const m: TypeProtoMap = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === V(1)) m.keyType = c.int32();
      else if (tag === L(2)) m.valueType = typeProto(c);
      else unknown(c, m, start, tag);
    }
    return m;
  });
}

function opaqueType(c: ProtoCursor): TypeProtoOpaque {
  return sub(c, 'TypeProto.Opaque', () => {
    const o: TypeProtoOpaque = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) o.domain = str(c);
      else if (tag === L(2)) o.name = str(c);
      else unknown(c, o, start, tag);
    }
    return o;
  });
}

function typeProto(c: ProtoCursor): TypeProto {
  return sub(c, 'TypeProto', () => {
    const t: TypeProto = {};
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) t.tensorType = tensorType(c, 'TypeProto.Tensor');
      else if (tag === L(4)) t.sequenceType = elemTypeOnly<TypeProtoSequence>(c, 'TypeProto.Sequence');
      else if (tag === L(5)) t.mapType = mapType(c);
      else if (tag === L(6)) t.denotation = str(c);
      else if (tag === L(7)) t.opaqueType = opaqueType(c);
      else if (tag === L(8)) t.sparseTensorType = tensorType(c, 'TypeProto.SparseTensor');
      else if (tag === L(9)) t.optionalType = elemTypeOnly<TypeProtoOptional>(c, 'TypeProto.Optional');
      else unknown(c, t, start, tag);
    }
    return t;
  });
}

function valueInfo(c: ProtoCursor): ValueInfoProto {
  return sub(c, 'ValueInfoProto', () => {
    const v: ValueInfoProto = { metadataProps: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) v.name = str(c);
      else if (tag === L(2)) v.type = typeProto(c);
      else if (tag === L(3)) v.docString = str(c);
      else if (tag === L(4)) v.metadataProps.push(entry(c));
      else unknown(c, v, start, tag);
    }
    return v;
  });
}

function attribute(c: ProtoCursor, opts: DecodeOptions): AttributeProto {
  return sub(c, 'AttributeProto', () => {
    const a: AttributeProto = { floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      switch (c.field) {
        case 1: expect(c, tag, WIRE_LEN); a.name = str(c); break;
        case 2: expect(c, tag, WIRE_FIXED32); a.f = c.float(); break;
        case 3: expect(c, tag, WIRE_VARINT); a.i = c.int64(); break;
        case 4: expect(c, tag, WIRE_LEN); a.s = bytes(c); break;
        case 5: expect(c, tag, WIRE_LEN); a.t = decodeTensor(c, opts); break;
        case 6: expect(c, tag, WIRE_LEN); a.g = graph(c, opts); break;
        case 7:
          if ((tag & 7) === WIRE_LEN) { const end = packedEnd(c); while (c.pos < end) a.floats.push(c.float()); packedDone(c, end); }
          else { expect(c, tag, WIRE_FIXED32); a.floats.push(c.float()); }
          break;
        case 8: int64s(c, tag, a.ints); break;
        case 9: expect(c, tag, WIRE_LEN); a.strings.push(bytes(c)); break;
        case 10: expect(c, tag, WIRE_LEN); a.tensors.push(decodeTensor(c, opts)); break;
        case 11: expect(c, tag, WIRE_LEN); a.graphs.push(graph(c, opts)); break;
        case 13: expect(c, tag, WIRE_LEN); a.docString = str(c); break;
        case 14: expect(c, tag, WIRE_LEN); a.tp = typeProto(c); break;
        case 15: expect(c, tag, WIRE_LEN); a.typeProtos.push(typeProto(c)); break;
        case 20: expect(c, tag, WIRE_VARINT); a.type = c.int32(); break;
        case 21: expect(c, tag, WIRE_LEN); a.refAttrName = str(c); break;
        case 22: expect(c, tag, WIRE_LEN); a.sparseTensor = sparseTensor(c, opts); break;
        case 23: expect(c, tag, WIRE_LEN); a.sparseTensors.push(sparseTensor(c, opts)); break;
        default: unknown(c, a, start, tag);
      }
    }
    return a;
  });
}

function node(c: ProtoCursor, opts: DecodeOptions): NodeProto {
  return sub(c, 'NodeProto', () => {
    const n: NodeProto = { input: [], output: [], attribute: [], metadataProps: [], deviceConfigurations: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      switch (tag) {
        case L(1): n.input.push(str(c)); break;
        case L(2): n.output.push(str(c)); break;
        case L(3): n.name = str(c); c.label = `node '${n.name}'`; break;
        case L(4): n.opType = str(c); break;
        case L(5): n.attribute.push(attribute(c, opts)); break;
        case L(6): n.docString = str(c); break;
        case L(7): n.domain = str(c); break;
        case L(8): n.overload = str(c); break;
        case L(9): n.metadataProps.push(entry(c)); break;
        case L(10): n.deviceConfigurations.push(bytes(c)); break;
        default:
          if (c.field <= 10) expect(c, tag, WIRE_LEN);
          unknown(c, n, start, tag);
      }
    }
    return n;
  });
}

function annotation(c: ProtoCursor): TensorAnnotation {
  return sub(c, 'TensorAnnotation', () => {
    const a: TensorAnnotation = { quantParameterTensorNames: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) a.tensorName = str(c);
      else if (tag === L(2)) a.quantParameterTensorNames.push(entry(c));
      else unknown(c, a, start, tag);
    }
    return a;
  });
}

function graph(c: ProtoCursor, opts: DecodeOptions): GraphProto {
  return sub(c, 'GraphProto', () => {
    const g: GraphProto = {
      node: [], initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [],
      quantizationAnnotation: [], metadataProps: [],
    };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      switch (tag) {
        case L(1): g.node.push(node(c, opts)); break;
        case L(2): g.name = str(c); break;
        case L(5): g.initializer.push(decodeTensor(c, opts)); break;
        case L(10): g.docString = str(c); break;
        case L(11): g.input.push(valueInfo(c)); break;
        case L(12): g.output.push(valueInfo(c)); break;
        case L(13): g.valueInfo.push(valueInfo(c)); break;
        case L(14): g.quantizationAnnotation.push(annotation(c)); break;
        case L(15): g.sparseInitializer.push(sparseTensor(c, opts)); break;
        case L(16): g.metadataProps.push(entry(c)); break;
        default:
          if ([1, 2, 5, 10, 11, 12, 13, 14, 15, 16].includes(c.field)) expect(c, tag, WIRE_LEN);
          unknown(c, g, start, tag);
      }
    }
    return g;
  });
}

function trainingInfo(c: ProtoCursor, opts: DecodeOptions): TrainingInfoProto {
  return sub(c, 'TrainingInfoProto', () => {
    const t: TrainingInfoProto = { initializationBinding: [], updateBinding: [] };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      if (tag === L(1)) t.initialization = graph(c, opts);
      else if (tag === L(2)) t.algorithm = graph(c, opts);
      else if (tag === L(3)) t.initializationBinding.push(entry(c));
      else if (tag === L(4)) t.updateBinding.push(entry(c));
      else unknown(c, t, start, tag);
    }
    return t;
  });
}

function functionProto(c: ProtoCursor, opts: DecodeOptions): FunctionProto {
  return sub(c, 'FunctionProto', () => {
    const f: FunctionProto = {
      input: [], output: [], attribute: [], attributeProto: [], node: [], opsetImport: [], valueInfo: [], metadataProps: [],
    };
    while (c.more()) {
      const start = c.pos;
      const tag = c.tag();
      switch (tag) {
        case L(1): f.name = str(c); break;
        case L(4): f.input.push(str(c)); break;
        case L(5): f.output.push(str(c)); break;
        case L(6): f.attribute.push(str(c)); break;
        case L(7): f.node.push(node(c, opts)); break;
        case L(8): f.docString = str(c); break;
        case L(9): f.opsetImport.push(opsetId(c)); break;
        case L(10): f.domain = str(c); break;
        case L(11): f.attributeProto.push(attribute(c, opts)); break;
        case L(12): f.valueInfo.push(valueInfo(c)); break;
        case L(13): f.overload = str(c); break;
        case L(14): f.metadataProps.push(entry(c)); break;
        default: unknown(c, f, start, tag);
      }
    }
    return f;
  });
}

/** Decodes a whole ModelProto from the cursor's range. */
export function decodeModel(c: ProtoCursor, opts: DecodeOptions): ModelProto {
  const m: ModelProto = { opsetImport: [], metadataProps: [], trainingInfo: [], functions: [], configuration: [] };
  c.message = 'ModelProto';
  while (c.more()) {
    const start = c.pos;
    const tag = c.tag();
    switch (c.field) {
      case 1: expect(c, tag, WIRE_VARINT); m.irVersion = c.int64(); break;
      case 2: expect(c, tag, WIRE_LEN); m.producerName = str(c); break;
      case 3: expect(c, tag, WIRE_LEN); m.producerVersion = str(c); break;
      case 4: expect(c, tag, WIRE_LEN); m.domain = str(c); break;
      case 5: expect(c, tag, WIRE_VARINT); m.modelVersion = c.int64(); break;
      case 6: expect(c, tag, WIRE_LEN); m.docString = str(c); break;
      case 7: expect(c, tag, WIRE_LEN); m.graph = graph(c, opts); break;
      case 8: expect(c, tag, WIRE_LEN); m.opsetImport.push(opsetId(c)); break;
      case 14: expect(c, tag, WIRE_LEN); m.metadataProps.push(entry(c)); break;
      case 20: expect(c, tag, WIRE_LEN); m.trainingInfo.push(trainingInfo(c, opts)); break;
      case 25: expect(c, tag, WIRE_LEN); m.functions.push(functionProto(c, opts)); break;
      case 26: expect(c, tag, WIRE_LEN); m.configuration.push(bytes(c)); break;
      default: unknown(c, m, start, tag);
    }
  }
  return m;
}
