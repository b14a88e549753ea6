/**
 * GGUF version 3 writer (ggml's file format for llama.cpp, docs/gguf.md in the ggml repository), all
 * little-endian:
 *
 *   u32 magic "GGUF" · u32 version 3 · u64 tensor_count · u64 metadata_kv_count
 *   metadata_kv × n:   string key · u32 value_type · value
 *   tensor_info × n:   string name · u32 n_dims · u64 dims[n_dims] (ne0 = innermost, contiguous) ·
 *                      u32 ggml_type · u64 offset (from the start of the data section, a multiple of the alignment)
 *   padding to `general.alignment` (32 by default) · data section (each tensor padded to the alignment)
 *
 *   string = u64 length · UTF-8 bytes (no terminator); array = u32 element type · u64 count · elements.
 *
 * The header is built in memory (metadata and tensor infos are small next to the weights); tensor data is
 * streamed one tensor at a time from each tensor's `bytes()` producer, so at most one tensor's bytes are
 * held at once. The file is written under a temporary name beside the target and renamed at the end.
 */
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { throwIfAborted, WhittleError } from '../errors.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_metadata_value_type. */
export const GgufValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8,
  ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** The ggml tensor types this writer produces (ggml_type ids). */
export const GgmlType = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8 } as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Name of a ggml type id ('F32', 'Q4_1', …). */
export function ggmlTypeName(type: GgmlType): string {
  return Object.entries(GgmlType).find(([, v]) => v === type)?.[0] ?? `type ${type}`;
}

/** Values per block and bytes per block of each type (a block of 1 for the float types). */
export const GGML_BLOCK: Record<GgmlType, { values: number; bytes: number }> = {
  [GgmlType.F32]: { values: 1, bytes: 4 },
  [GgmlType.F16]: { values: 1, bytes: 2 },
  [GgmlType.Q4_0]: { values: 32, bytes: 18 },
  [GgmlType.Q4_1]: { values: 32, bytes: 20 },
  [GgmlType.Q8_0]: { values: 32, bytes: 34 },
};

export type GgufScalar =
  | { type: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 12; value: number }
  | { type: 10 | 11; value: bigint }
  | { type: 7; value: boolean }
  | { type: 8; value: string };

export type GgufValue =
  | GgufScalar
  | { type: 9; itemType: 8; value: readonly string[] }
  | { type: 9; itemType: 4 | 5 | 6; value: ArrayLike<number> };

export interface GgufKv { key: string; value: GgufValue }

export interface GgufTensor {
  name: string;
  /** GGUF order: dims[0] = ne0, the innermost (contiguous) dimension. */
  dims: number[];
  type: GgmlType;
  /** Produces exactly `ggufTensorBytes(dims, type)` bytes; called once, when the tensor is written. */
  bytes: () => Promise<Uint8Array> | Uint8Array;
}

/** Shorthands for metadata values. */
export const kv = {
  u32: (key: string, value: number): GgufKv => ({ key, value: { type: GgufValueType.UINT32, value } }),
  f32: (key: string, value: number): GgufKv => ({ key, value: { type: GgufValueType.FLOAT32, value } }),
  bool: (key: string, value: boolean): GgufKv => ({ key, value: { type: GgufValueType.BOOL, value } }),
  str: (key: string, value: string): GgufKv => ({ key, value: { type: GgufValueType.STRING, value } }),
  strings: (key: string, value: readonly string[]): GgufKv => ({ key, value: { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value } }),
  f32s: (key: string, value: ArrayLike<number>): GgufKv => ({ key, value: { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value } }),
  i32s: (key: string, value: ArrayLike<number>): GgufKv => ({ key, value: { type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value } }),
};

/** Bytes of a tensor of `dims` (GGUF order) and `type`; ne0 must be a whole number of blocks. */
export function ggufTensorBytes(dims: readonly number[], type: GgmlType): number {
  const { values, bytes } = GGML_BLOCK[type];
  if (dims[0] % values !== 0) throw new RangeError(`ne0 = ${dims[0]} is not a multiple of the ${ggmlTypeName(type)} block (${values})`);
  const rows = dims.slice(1).reduce((a, b) => a * b, 1);
  return (dims[0] / values) * bytes * rows;
}

const pad = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private static readonly utf8 = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void { this.reserve(1); this.view.setUint8(this.length, v); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.view.setInt8(this.length, v); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.view.setUint16(this.length, v, true); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.view.setInt16(this.length, v, true); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.view.setInt32(this.length, v, true); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.view.setFloat32(this.length, v, true); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.view.setFloat64(this.length, v, true); this.length += 8; }
  u64(v: bigint | number): void { this.reserve(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  i64(v: bigint): void { this.reserve(8); this.view.setBigInt64(this.length, v, true); this.length += 8; }
  str(s: string): void {
    const b = ByteSink.utf8.encode(s);
    this.u64(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  zeros(n: number): void { this.reserve(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  bytes(): Uint8Array { return this.buf.subarray(0, this.length); }
}

function writeScalar(sink: ByteSink, type: GgufValueType, value: unknown): void {
  switch (type) {
    case GgufValueType.UINT8: sink.u8(value as number); break;
    case GgufValueType.INT8: sink.i8(value as number); break;
    case GgufValueType.UINT16: sink.u16(value as number); break;
    case GgufValueType.INT16: sink.i16(value as number); break;
    case GgufValueType.UINT32: sink.u32(value as number); break;
    case GgufValueType.INT32: sink.i32(value as number); break;
    case GgufValueType.FLOAT32: sink.f32(value as number); break;
    case GgufValueType.FLOAT64: sink.f64(value as number); break;
    case GgufValueType.UINT64: sink.u64(value as bigint); break;
    case GgufValueType.INT64: sink.i64(value as bigint); break;
    case GgufValueType.BOOL: sink.u8(value ? 1 : 0); break;
    case GgufValueType.STRING: sink.str(value as string); break;
    default: throw new RangeError(`GGUF value type ${type} is not a scalar`);
  }
}

/** Header bytes (everything before the data section, padded) and each tensor's offset in the data section. */
export function ggufHeader(metadata: readonly GgufKv[], tensors: readonly Omit<GgufTensor, 'bytes'>[]): { header: Uint8Array; offsets: number[]; alignment: number } {
  const alignKv = metadata.find((m) => m.key === 'general.alignment');
  const alignment = alignKv && alignKv.value.type === GgufValueType.UINT32 ? alignKv.value.value : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new RangeError(`general.alignment must be a positive multiple of 8, got ${alignment}`);
  const keys = new Set<string>();
  for (const m of metadata) {
    if (keys.has(m.key)) throw new RangeError(`duplicate GGUF metadata key ${m.key}`);
    keys.add(m.key);
  }
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new RangeError(`duplicate GGUF tensor ${t.name}`);
    if (new TextEncoder().encode(t.name).length > 64) throw new RangeError(`GGUF tensor name ${t.name} is longer than 64 bytes`);
    names.add(t.name);
  }

  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  for (const { key, value } of metadata) {
    sink.str(key);
    sink.u32(value.type);
    if (value.type === GgufValueType.ARRAY) {
      sink.u32(value.itemType);
      sink.u64(value.value.length);
      for (let i = 0; i < value.value.length; i++) writeScalar(sink, value.itemType, value.value[i]);
    } else {
      writeScalar(sink, value.type, value.value);
    }
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    sink.str(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(t.type);
    sink.u64(offset);
    offsets.push(offset);
    offset = pad(offset + ggufTensorBytes(t.dims, t.type), alignment);
  }
  sink.zeros(pad(sink.length, alignment) - sink.length);
  return { header: sink.bytes(), offsets, alignment };
}

export interface GgufWriteResult { path: string; bytes: number; tensors: number }

/**
 * Writes a GGUF file: header, then each tensor's bytes in order, streamed; temp name then rename, so
 * `outPath` is either the whole new file or untouched.
 */
export async function writeGguf(outPath: string, metadata: readonly GgufKv[], tensors: readonly GgufTensor[], signal?: AbortSignal): Promise<GgufWriteResult> {
  const { header, offsets, alignment } = ggufHeader(metadata, tensors);
  const tmp = path.join(path.dirname(outPath), `.${path.basename(outPath)}.${process.pid}.partial`);
  const fh = await open(tmp, 'w');
  let ok = false;
  try {
    let pos = 0;
    const put = async (b: Uint8Array): Promise<void> => {
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await fh.write(b, done, b.length - done, pos + done);
        done += bytesWritten;
      }
      pos += b.length;
    };
    await put(header);
    const base = header.length;
    for (let i = 0; i < tensors.length; i++) {
      throwIfAborted(signal);
      const t = tensors[i];
      const want = ggufTensorBytes(t.dims, t.type);
      const bytes = await t.bytes();
      if (bytes.length !== want) {
        throw new WhittleError('INTERNAL', `GGUF tensor ${t.name} produced ${bytes.length} bytes, expected ${want}.`, { tensor: t.name });
      }
      if (pos < base + offsets[i]) await put(new Uint8Array(base + offsets[i] - pos));
      await put(bytes);
    }
    const end = pad(pos - base, alignment) + base;
    if (end > pos) await put(new Uint8Array(end - pos));
    await fh.sync();
    await fh.close();
    await rename(tmp, outPath);
    ok = true;
    return { path: outPath, bytes: pos, tensors: tensors.length };
  } finally {
    if (!ok) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
    }
  }
}
