/**
 * The messages of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto), as plain objects.
 *
 * Naming: every field keeps its spec name, converted from snake_case to camelCase
 * (`op_type` → `opType`, `opset_import` → `opsetImport`, `raw_data`/`float_data`/... → `data`, see TensorProto).
 * Field numbers live only in decode.ts / encode.ts.
 *
 * Presence: proto2 `optional` scalars are `?:` properties, written back only when present, so a round trip
 * keeps absent fields absent. `repeated` fields are always arrays.
 *
 * int64 fields hold a `number` when the value is a safe integer and a `bigint` otherwise (e.g. Slice's
 * `ends = INT64_MAX`), so no value changes on a round trip. Use `toNumber()` from graph.ts to read them.
 *
 * `unknownFields`: encoded fields (tag + value) this reader does not know; written back unchanged after the
 * known fields, so files from newer ONNX versions lose nothing.
 */

export type Int64 = number | bigint;

/** Where a tensor's bytes are: a slice of a file (raw_data inside the .onnx, or external data) or memory. */
export type TensorSource =
  | { kind: 'file'; path: string; offset: number; length: number }
  | { kind: 'bytes'; bytes: Uint8Array };

export interface StringStringEntryProto {
  key?: string;
  value?: string;
  unknownFields?: Uint8Array[];
}

export interface OperatorSetIdProto {
  domain?: string;
  version?: Int64;
  unknownFields?: Uint8Array[];
}

export interface TensorSegment {
  begin?: Int64;
  end?: Int64;
  unknownFields?: Uint8Array[];
}

/**
 * TensorProto. The payload of `raw_data`, the typed fields (`float_data`, `int32_data`, `int64_data`,
 * `double_data`, `uint64_data`; converted to little-endian raw bytes on read) and external data all become
 * `data`, a reference to the bytes. STRING tensors keep `stringData` instead. `externalData` and
 * `dataLocation` are kept as read (informative); the writer derives fresh ones from where it puts `data`.
 */
export interface TensorProto {
  dims: Int64[];
  dataType?: number;
  segment?: TensorSegment;
  name?: string;
  docString?: string;
  /** Little-endian element bytes (4-bit types packed two per byte); absent for STRING or empty tensors. */
  data?: TensorSource;
  stringData: Uint8Array[];
  externalData: StringStringEntryProto[];
  dataLocation?: number;
  metadataProps: StringStringEntryProto[];
  unknownFields?: Uint8Array[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims: Int64[];
  unknownFields?: Uint8Array[];
}

export interface TensorShapeDimension {
  dimValue?: Int64;
  dimParam?: string;
  denotation?: string;
  unknownFields?: Uint8Array[];
}

export interface TensorShapeProto {
  dim: TensorShapeDimension[];
  unknownFields?: Uint8Array[];
}

export interface TypeProtoTensor {
  elemType?: number;
  shape?: TensorShapeProto;
  unknownFields?: Uint8Array[];
}

export interface TypeProtoSequence { elemType?: TypeProto; unknownFields?: Uint8Array[] }
export interface TypeProtoMap { keyType?: number; valueType?: TypeProto; unknownFields?: Uint8Array[] }
export interface TypeProtoOptional { elemType?: TypeProto; unknownFields?: Uint8Array[] }
export interface TypeProtoOpaque { domain?: string; name?: string; unknownFields?: Uint8Array[] }

/** TypeProto: exactly one of the `…Type` members is set (a oneof in the spec). */
export interface TypeProto {
  tensorType?: TypeProtoTensor;
  sequenceType?: TypeProtoSequence;
  mapType?: TypeProtoMap;
  optionalType?: TypeProtoOptional;
  sparseTensorType?: TypeProtoTensor;
  opaqueType?: TypeProtoOpaque;
  denotation?: string;
  unknownFields?: Uint8Array[];
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
  unknownFields?: Uint8Array[];
}

/** AttributeProto.AttributeType numbers. */
export const AttributeType = {
  UNDEFINED: 0, FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
  TENSORS: 9, GRAPHS: 10, SPARSE_TENSOR: 11, SPARSE_TENSORS: 12, TYPE_PROTO: 13, TYPE_PROTOS: 14,
} as const;

/** AttributeProto. `s` and `strings` are `bytes` in the spec and stay bytes here (UTF-8 by convention). */
export interface AttributeProto {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparseTensors: SparseTensorProto[];
  typeProtos: TypeProto[];
  unknownFields?: Uint8Array[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringStringEntryProto[];
  /** NodeDeviceConfigurationProto messages, kept as their encoded bytes. */
  deviceConfigurations: Uint8Array[];
  unknownFields?: Uint8Array[];
}

export interface TensorAnnotation {
  tensorName?: string;
  quantParameterTensorNames: StringStringEntryProto[];
  unknownFields?: Uint8Array[];
}

export interface GraphProto {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer: SparseTensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: TensorAnnotation[];
  metadataProps: StringStringEntryProto[];
  unknownFields?: Uint8Array[];
}

export interface TrainingInfoProto {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initializationBinding: StringStringEntryProto[];
  updateBinding: StringStringEntryProto[];
  unknownFields?: Uint8Array[];
}

export interface FunctionProto {
  name?: string;
  input: string[];
  output: string[];
  attribute: string[];
  attributeProto: AttributeProto[];
  node: NodeProto[];
  docString?: string;
  opsetImport: OperatorSetIdProto[];
  domain?: string;
  overload?: string;
  valueInfo: ValueInfoProto[];
  metadataProps: StringStringEntryProto[];
  unknownFields?: Uint8Array[];
}

export interface ModelProto {
  irVersion?: Int64;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
  trainingInfo: TrainingInfoProto[];
  functions: FunctionProto[];
  /** DeviceConfigurationProto messages (ModelProto.configuration), kept as their encoded bytes. */
  configuration: Uint8Array[];
  unknownFields?: Uint8Array[];
}

/** A model as read from disk: the parsed ModelProto plus where it came from. */
export interface OnnxModel {
  /** Absolute path of the .onnx file it was read from ('' for a model built in memory). */
  path: string;
  proto: ModelProto;
  /** Size of the .onnx file in bytes (0 for a model built in memory). */
  fileBytes: number;
  /** External data files the model references, as absolute paths, in first-use order. */
  externalDataFiles: string[];
}
