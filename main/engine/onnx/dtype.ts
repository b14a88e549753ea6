/**
 * ONNX TensorProto.DataType numbers ↔ Whittle's dtype names, with element widths.
 * Sub-byte types (int4/uint4/float4e2m1: 4 bits, int2/uint2: 2 bits) are packed, first element in the
 * least significant bits.
 */
import { WhittleError } from '../errors.ts';

export interface DType {
  id: number;
  name: string;
  /** Bits per element; 0 for STRING (variable) and UNDEFINED. */
  bits: number;
  isFloat: boolean;
}

const TABLE: DType[] = [
  { id: 0, name: 'undefined', bits: 0, isFloat: false },
  { id: 1, name: 'float32', bits: 32, isFloat: true },
  { id: 2, name: 'uint8', bits: 8, isFloat: false },
  { id: 3, name: 'int8', bits: 8, isFloat: false },
  { id: 4, name: 'uint16', bits: 16, isFloat: false },
  { id: 5, name: 'int16', bits: 16, isFloat: false },
  { id: 6, name: 'int32', bits: 32, isFloat: false },
  { id: 7, name: 'int64', bits: 64, isFloat: false },
  { id: 8, name: 'string', bits: 0, isFloat: false },
  { id: 9, name: 'bool', bits: 8, isFloat: false },
  { id: 10, name: 'float16', bits: 16, isFloat: true },
  { id: 11, name: 'float64', bits: 64, isFloat: true },
  { id: 12, name: 'uint32', bits: 32, isFloat: false },
  { id: 13, name: 'uint64', bits: 64, isFloat: false },
  { id: 14, name: 'complex64', bits: 64, isFloat: false },
  { id: 15, name: 'complex128', bits: 128, isFloat: false },
  { id: 16, name: 'bfloat16', bits: 16, isFloat: true },
  { id: 17, name: 'float8e4m3fn', bits: 8, isFloat: true },
  { id: 18, name: 'float8e4m3fnuz', bits: 8, isFloat: true },
  { id: 19, name: 'float8e5m2', bits: 8, isFloat: true },
  { id: 20, name: 'float8e5m2fnuz', bits: 8, isFloat: true },
  { id: 21, name: 'uint4', bits: 4, isFloat: false },
  { id: 22, name: 'int4', bits: 4, isFloat: false },
  { id: 23, name: 'float4e2m1', bits: 4, isFloat: true },
  { id: 24, name: 'float8e8m0', bits: 8, isFloat: true },
  { id: 25, name: 'uint2', bits: 2, isFloat: false },
  { id: 26, name: 'int2', bits: 2, isFloat: false },
];

const BY_ID = new Map(TABLE.map((d) => [d.id, d]));
const BY_NAME = new Map(TABLE.map((d) => [d.name, d]));

/** The ONNX DataType numbers by Whittle name, for building tensors: `DataType.float16` = 10. */
export const DataType = {
  undefined: 0, float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13, complex64: 14, complex128: 15, bfloat16: 16,
  float8e4m3fn: 17, float8e4m3fnuz: 18, float8e5m2: 19, float8e5m2fnuz: 20, uint4: 21, int4: 22,
  float4e2m1: 23, float8e8m0: 24, uint2: 25, int2: 26,
} as const;

export function dtypeInfo(id: number): DType | undefined {
  return BY_ID.get(id);
}

/** 'float32' for 1, …; unknown numbers become 'dtype(N)'. */
export function dtypeName(id: number | undefined): string {
  if (id === undefined) return 'undefined';
  return BY_ID.get(id)?.name ?? `dtype(${id})`;
}

export function dtypeId(name: string): number {
  const d = BY_NAME.get(name);
  if (!d) throw new WhittleError('INVALID_INPUT', `Unknown tensor data type '${name}'.`);
  return d.id;
}

export function dtypeBits(id: number | undefined): number {
  return id === undefined ? 0 : (BY_ID.get(id)?.bits ?? 0);
}

export function isFloatDtype(id: number | undefined): boolean {
  return id !== undefined && (BY_ID.get(id)?.isFloat ?? false);
}

/** Bytes needed for `count` elements of dtype `id` (sub-byte types packed); NaN for STRING/unknown. */
export function byteSize(id: number | undefined, count: number): number {
  const bits = dtypeBits(id);
  if (bits === 0) return Number.NaN;
  return Math.ceil((count * bits) / 8);
}
