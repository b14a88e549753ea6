/** ValueInfoProto → the contract's TensorInfo (dtype names, symbolic dims as strings, unknown as null). */
import type { TensorInfo } from '../../../preload/contract.ts';
import { dtypeName } from '../onnx/dtype.ts';
import { toNumber } from '../onnx/graph.ts';
import type { GraphProto, TypeProto, ValueInfoProto } from '../onnx/proto-types.ts';

export type Dim = number | string | null;

/** 'float32' for tensors, 'sequence(float32)', 'map(int64,float32)', 'optional(…)' for the others. */
export function typeName(t: TypeProto | undefined): string {
  if (!t) return 'unknown';
  if (t.tensorType) return dtypeName(t.tensorType.elemType);
  if (t.sparseTensorType) return `sparse(${dtypeName(t.sparseTensorType.elemType)})`;
  if (t.sequenceType) return `sequence(${typeName(t.sequenceType.elemType)})`;
  if (t.mapType) return `map(${dtypeName(t.mapType.keyType)},${typeName(t.mapType.valueType)})`;
  if (t.optionalType) return `optional(${typeName(t.optionalType.elemType)})`;
  if (t.opaqueType) return `opaque(${t.opaqueType.domain ?? ''}.${t.opaqueType.name ?? ''})`;
  return 'unknown';
}

/** Dims of a tensor type; [] when the type has no shape (or is not a tensor). */
export function shapeOf(t: TypeProto | undefined): Dim[] {
  const shape = t?.tensorType?.shape ?? t?.sparseTensorType?.shape;
  if (!shape) return [];
  return shape.dim.map((d) => (d.dimValue !== undefined ? toNumber(d.dimValue) : d.dimParam !== undefined && d.dimParam !== '' ? d.dimParam : null));
}

export function tensorInfo(v: ValueInfoProto): TensorInfo {
  return { name: v.name ?? '', dtype: typeName(v.type), shape: shapeOf(v.type) };
}

/** The graph's real inputs: declared inputs that are not also initializers (IR < 4 lists both). */
export function graphInputs(graph: GraphProto): TensorInfo[] {
  const inits = new Set(graph.initializer.map((t) => t.name));
  return graph.input.filter((v) => !inits.has(v.name)).map(tensorInfo);
}

export function graphOutputs(graph: GraphProto): TensorInfo[] {
  return graph.output.map(tensorInfo);
}
