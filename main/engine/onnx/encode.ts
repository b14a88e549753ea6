/**
 * Encoders for the onnx.proto messages, in field-number order (as protobuf's own serializers write them).
 * Tensor payloads are not read here: inline tensors become `raw_data` payload parts (copied from their
 * source when the file is written); tensors placed in external data get `external_data` entries
 * (location, offset, length) and `data_location = EXTERNAL`.
 */
import type {
  AttributeProto, FunctionProto, GraphProto, Int64, ModelProto, NodeProto, OperatorSetIdProto, SparseTensorProto,
  StringStringEntryProto, TensorAnnotation, TensorProto, TensorShapeProto, TrainingInfoProto, TypeProto,
  TypeProtoTensor, ValueInfoProto,
} from './proto-types.ts';
import { ProtoWriter } from './wire.ts';

export interface ExternalPlacement { location: string; offset: number; length: number }

export interface EncodeOptions {
  /** Where each tensor's payload goes: null = inline raw_data. */
  placement: (t: TensorProto) => ExternalPlacement | null;
}

/** Size in bytes of a tensor's payload. */
export function payloadLength(t: TensorProto): number {
  if (!t.data) return 0;
  return t.data.kind === 'bytes' ? t.data.bytes.length : t.data.length;
}

function writeUnknown(w: ProtoWriter, m: { unknownFields?: Uint8Array[] }): void {
  if (m.unknownFields) for (const u of m.unknownFields) w.rawBytes(u);
}

function optString(w: ProtoWriter, field: number, s: string | undefined): void {
  if (s !== undefined) w.stringField(field, s);
}

function optVarint(w: ProtoWriter, field: number, v: Int64 | undefined): void {
  if (v !== undefined) w.varintField(field, v);
}

function child(fill: (w: ProtoWriter) => void): ProtoWriter {
  const w = new ProtoWriter();
  fill(w);
  return w;
}

function entry(e: StringStringEntryProto): ProtoWriter {
  return child((w) => {
    optString(w, 1, e.key);
    optString(w, 2, e.value);
    writeUnknown(w, e);
  });
}

function entries(w: ProtoWriter, field: number, list: StringStringEntryProto[]): void {
  for (const e of list) w.messageField(field, entry(e));
}

function opsetId(o: OperatorSetIdProto): ProtoWriter {
  return child((w) => {
    optString(w, 1, o.domain);
    optVarint(w, 2, o.version);
    writeUnknown(w, o);
  });
}

export function encodeTensor(t: TensorProto, opts: EncodeOptions): ProtoWriter {
  const place = t.data ? opts.placement(t) : null;
  return child((w) => {
    for (const d of t.dims) w.varintField(1, d);
    optVarint(w, 2, t.dataType);
    if (t.segment) {
      const s = t.segment;
      w.messageField(3, child((sw) => { optVarint(sw, 1, s.begin); optVarint(sw, 2, s.end); writeUnknown(sw, s); }));
    }
    for (const s of t.stringData) w.bytesField(6, s);
    optString(w, 8, t.name);
    if (t.data && !place) w.payloadField(9, t.data, payloadLength(t), t.name);
    optString(w, 12, t.docString);
    if (place) {
      entries(w, 13, [
        { key: 'location', value: place.location },
        { key: 'offset', value: String(place.offset) },
        { key: 'length', value: String(place.length) },
      ]);
      w.varintField(14, 1);
    } else if (t.dataLocation === 0) {
      w.varintField(14, 0);
    }
    entries(w, 16, t.metadataProps);
    writeUnknown(w, t);
  });
}

function sparseTensor(s: SparseTensorProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    if (s.values) w.messageField(1, encodeTensor(s.values, opts));
    if (s.indices) w.messageField(2, encodeTensor(s.indices, opts));
    for (const d of s.dims) w.varintField(3, d);
    writeUnknown(w, s);
  });
}

function shape(s: TensorShapeProto): ProtoWriter {
  return child((w) => {
    for (const d of s.dim) {
      w.messageField(1, child((dw) => {
        optVarint(dw, 1, d.dimValue);
        optString(dw, 2, d.dimParam);
        optString(dw, 3, d.denotation);
        writeUnknown(dw, d);
      }));
    }
    writeUnknown(w, s);
  });
}

function tensorType(t: TypeProtoTensor): ProtoWriter {
  return child((w) => {
    optVarint(w, 1, t.elemType);
    if (t.shape) w.messageField(2, shape(t.shape));
    writeUnknown(w, t);
  });
}

function typeProto(t: TypeProto): ProtoWriter {
  return child((w) => {
    if (t.tensorType) w.messageField(1, tensorType(t.tensorType));
    if (t.sequenceType) {
      const s = t.sequenceType;
      w.messageField(4, child((sw) => { if (s.elemType) sw.messageField(1, typeProto(s.elemType)); writeUnknown(sw, s); }));
    }
    if (t.mapType) {
      const m = t.mapType;
      w.messageField(5, child((mw) => {
        optVarint(mw, 1, m.keyType);
        if (m.valueType) mw.messageField(2, typeProto(m.valueType));
        writeUnknown(mw, m);
      }));
    }
    optString(w, 6, t.denotation);
    if (t.opaqueType) {
      const o = t.opaqueType;
      w.messageField(7, child((ow) => { optString(ow, 1, o.domain); optString(ow, 2, o.name); writeUnknown(ow, o); }));
    }
    if (t.sparseTensorType) w.messageField(8, tensorType(t.sparseTensorType));
    if (t.optionalType) {
      const o = t.optionalType;
      w.messageField(9, child((ow) => { if (o.elemType) ow.messageField(1, typeProto(o.elemType)); writeUnknown(ow, o); }));
    }
    writeUnknown(w, t);
  });
}

function valueInfo(v: ValueInfoProto): ProtoWriter {
  return child((w) => {
    optString(w, 1, v.name);
    if (v.type) w.messageField(2, typeProto(v.type));
    optString(w, 3, v.docString);
    entries(w, 4, v.metadataProps);
    writeUnknown(w, v);
  });
}

function attribute(a: AttributeProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    optString(w, 1, a.name);
    if (a.f !== undefined) w.floatField(2, a.f);
    optVarint(w, 3, a.i);
    if (a.s !== undefined) w.bytesField(4, a.s);
    if (a.t) w.messageField(5, encodeTensor(a.t, opts));
    if (a.g) w.messageField(6, encodeGraph(a.g, opts));
    for (const f of a.floats) w.floatField(7, f);
    for (const i of a.ints) w.varintField(8, i);
    for (const s of a.strings) w.bytesField(9, s);
    for (const t of a.tensors) w.messageField(10, encodeTensor(t, opts));
    for (const g of a.graphs) w.messageField(11, encodeGraph(g, opts));
    optString(w, 13, a.docString);
    if (a.tp) w.messageField(14, typeProto(a.tp));
    for (const tp of a.typeProtos) w.messageField(15, typeProto(tp));
    optVarint(w, 20, a.type);
    optString(w, 21, a.refAttrName);
    if (a.sparseTensor) w.messageField(22, sparseTensor(a.sparseTensor, opts));
    for (const s of a.sparseTensors) w.messageField(23, sparseTensor(s, opts));
    writeUnknown(w, a);
  });
}

function node(n: NodeProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    for (const i of n.input) w.stringField(1, i);
    for (const o of n.output) w.stringField(2, o);
    optString(w, 3, n.name);
    optString(w, 4, n.opType);
    for (const a of n.attribute) w.messageField(5, attribute(a, opts));
    optString(w, 6, n.docString);
    optString(w, 7, n.domain);
    optString(w, 8, n.overload);
    entries(w, 9, n.metadataProps);
    for (const d of n.deviceConfigurations) w.bytesField(10, d);
    writeUnknown(w, n);
  });
}

function annotation(a: TensorAnnotation): ProtoWriter {
  return child((w) => {
    optString(w, 1, a.tensorName);
    entries(w, 2, a.quantParameterTensorNames);
    writeUnknown(w, a);
  });
}

export function encodeGraph(g: GraphProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    for (const n of g.node) w.messageField(1, node(n, opts));
    optString(w, 2, g.name);
    for (const t of g.initializer) w.messageField(5, encodeTensor(t, opts));
    optString(w, 10, g.docString);
    for (const v of g.input) w.messageField(11, valueInfo(v));
    for (const v of g.output) w.messageField(12, valueInfo(v));
    for (const v of g.valueInfo) w.messageField(13, valueInfo(v));
    for (const a of g.quantizationAnnotation) w.messageField(14, annotation(a));
    for (const s of g.sparseInitializer) w.messageField(15, sparseTensor(s, opts));
    entries(w, 16, g.metadataProps);
    writeUnknown(w, g);
  });
}

function trainingInfo(t: TrainingInfoProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    if (t.initialization) w.messageField(1, encodeGraph(t.initialization, opts));
    if (t.algorithm) w.messageField(2, encodeGraph(t.algorithm, opts));
    entries(w, 3, t.initializationBinding);
    entries(w, 4, t.updateBinding);
    writeUnknown(w, t);
  });
}

function functionProto(f: FunctionProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    optString(w, 1, f.name);
    for (const s of f.input) w.stringField(4, s);
    for (const s of f.output) w.stringField(5, s);
    for (const s of f.attribute) w.stringField(6, s);
    for (const n of f.node) w.messageField(7, node(n, opts));
    optString(w, 8, f.docString);
    for (const o of f.opsetImport) w.messageField(9, opsetId(o));
    optString(w, 10, f.domain);
    for (const a of f.attributeProto) w.messageField(11, attribute(a, opts));
    for (const v of f.valueInfo) w.messageField(12, valueInfo(v));
    optString(w, 13, f.overload);
    entries(w, 14, f.metadataProps);
    writeUnknown(w, f);
  });
}

export function encodeModel(m: ModelProto, opts: EncodeOptions): ProtoWriter {
  return child((w) => {
    optVarint(w, 1, m.irVersion);
    optString(w, 2, m.producerName);
    optString(w, 3, m.producerVersion);
    optString(w, 4, m.domain);
    optVarint(w, 5, m.modelVersion);
    optString(w, 6, m.docString);
    if (m.graph) w.messageField(7, encodeGraph(m.graph, opts));
    for (const o of m.opsetImport) w.messageField(8, opsetId(o));
    entries(w, 14, m.metadataProps);
    for (const t of m.trainingInfo) w.messageField(20, trainingInfo(t, opts));
    for (const f of m.functions) w.messageField(25, functionProto(f, opts));
    for (const c of m.configuration) w.bytesField(26, c);
    writeUnknown(w, m);
  });
}
