/**
 * Reading tensor payloads on demand, converting them to float32, building in-memory tensors, and copying
 * payloads between files in fixed-size chunks (a large tensor is never held whole while it is copied).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { WhittleError } from '../errors.ts';
import { byteSize, DataType, dtypeName } from './dtype.ts';
import type { Int64, TensorProto, TensorSource } from './proto-types.ts';

export const COPY_CHUNK_BYTES = 4 << 20;

export function elementCount(dims: readonly Int64[]): number {
  let n = 1;
  for (const d of dims) n *= Number(d);
  return n;
}

/** Payload size in bytes (what is stored, which for a well-formed tensor equals dims × dtype width). */
export function tensorByteLength(t: TensorProto): number {
  if (!t.data) return 0;
  return t.data.kind === 'bytes' ? t.data.bytes.length : t.data.length;
}

function sourceLabel(t: TensorProto): string {
  return `tensor '${t.name ?? ''}'`;
}

function missingSource(t: TensorProto, src: TensorSource & { kind: 'file' }, cause: unknown): WhittleError {
  const e = cause as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') {
    return new WhittleError('NOT_FOUND', `The data of ${sourceLabel(t)} cannot be read: ${src.path} no longer exists. Keep the model's files in place until the job is done.`, { path: src.path }, { cause });
  }
  return new WhittleError('IO', `The data of ${sourceLabel(t)} cannot be read from ${src.path}: ${e?.message ?? String(cause)}`, { path: src.path }, { cause });
}

async function readAt(fh: FileHandle, out: Uint8Array, position: number, t: TensorProto, src: TensorSource & { kind: 'file' }): Promise<void> {
  let done = 0;
  while (done < out.length) {
    const { bytesRead } = await fh.read(out, done, out.length - done, position + done);
    if (bytesRead === 0) {
      throw new WhittleError('MODEL_PARSE', `The data of ${sourceLabel(t)} is cut short: ${src.path} ends before byte ${src.offset + src.length}.`, { path: src.path });
    }
    done += bytesRead;
  }
}

/** The tensor's raw little-endian bytes (a copy for file sources; the stored array for in-memory ones). */
export async function readTensorBytes(t: TensorProto): Promise<Uint8Array> {
  const src = t.data;
  if (!src) return new Uint8Array(0);
  if (src.kind === 'bytes') return src.bytes;
  let fh: FileHandle;
  try {
    fh = await open(src.path, 'r');
  } catch (e) {
    throw missingSource(t, src, e);
  }
  try {
    const out = new Uint8Array(src.length);
    await readAt(fh, out, src.offset, t, src);
    return out;
  } finally {
    await fh.close();
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number → IEEE binary16 bits, round to nearest even. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // a carry into the exponent is correct rounding
  return sign | half;
}

/** bfloat16 bits → number. */
export function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** Element bytes (little-endian, dtype `dataType`) → float32 values. */
export function bytesToFloat32(bytes: Uint8Array, dataType: number | undefined, count: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  switch (dataType) {
    case DataType.float32:
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case DataType.float16:
      for (let i = 0; i < count; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
      break;
    case DataType.bfloat16:
      for (let i = 0; i < count; i++) out[i] = bfloat16ToFloat(dv.getUint16(i * 2, true));
      break;
    case DataType.float64:
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case DataType.int8:
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      break;
    case DataType.uint8:
    case DataType.bool:
      for (let i = 0; i < count; i++) out[i] = bytes[i];
      break;
    case DataType.int16:
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case DataType.uint16:
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(i * 2, true);
      break;
    case DataType.int32:
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case DataType.uint32:
      for (let i = 0; i < count; i++) out[i] = dv.getUint32(i * 4, true);
      break;
    case DataType.int64:
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      break;
    case DataType.uint64:
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigUint64(i * 8, true));
      break;
    case DataType.int4:
      for (let i = 0; i < count; i++) {
        const nib = (bytes[i >> 1] >> ((i & 1) * 4)) & 0xf;
        out[i] = nib >= 8 ? nib - 16 : nib;
      }
      break;
    case DataType.uint4:
      for (let i = 0; i < count; i++) out[i] = (bytes[i >> 1] >> ((i & 1) * 4)) & 0xf;
      break;
    default:
      throw new WhittleError('UNSUPPORTED_MODEL', `Tensors of type ${dtypeName(dataType)} cannot be read as numbers.`);
  }
  return out;
}

/** The tensor's values as float32 (float16/bfloat16/float64 and integer types converted). */
export async function readTensorFloat32(t: TensorProto): Promise<Float32Array> {
  const count = elementCount(t.dims);
  const need = byteSize(t.dataType, count);
  const bytes = await readTensorBytes(t);
  if (!(bytes.length >= need)) {
    throw new WhittleError('MODEL_PARSE', `Tensor '${t.name ?? ''}' holds ${bytes.length} bytes but its shape [${t.dims.join(', ')}] of ${dtypeName(t.dataType)} needs ${need}.`);
  }
  return bytesToFloat32(bytes, t.dataType, count);
}

/** A tensor held in memory (e.g. a freshly quantized weight). `data` is taken as little-endian element bytes. */
export function makeTensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  data: Uint8Array | Float32Array | Uint16Array | Int32Array | BigInt64Array | Int8Array,
): TensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const need = byteSize(dataType, elementCount(dims));
  if (bytes.length !== need) {
    throw new WhittleError('INTERNAL', `makeTensor('${name}'): ${bytes.length} bytes given, shape [${dims.join(', ')}] of ${dtypeName(dataType)} needs ${need}.`);
  }
  return { name, dataType, dims: [...dims], data: { kind: 'bytes', bytes }, stringData: [], externalData: [], metadataProps: [] };
}

/**
 * Copies a tensor payload into `out` at `position`, in chunks of at most COPY_CHUNK_BYTES.
 * Returns the number of bytes written.
 */
export async function copyPayload(t: TensorProto, out: FileHandle, position: number, chunk: Uint8Array): Promise<number> {
  const src = t.data;
  if (!src) return 0;
  if (src.kind === 'bytes') {
    await writeFully(out, src.bytes, position);
    return src.bytes.length;
  }
  let fh: FileHandle;
  try {
    fh = await open(src.path, 'r');
  } catch (e) {
    throw missingSource(t, src, e);
  }
  try {
    let done = 0;
    while (done < src.length) {
      const n = Math.min(chunk.length, src.length - done);
      const piece = chunk.subarray(0, n);
      await readAt(fh, piece, src.offset + done, t, src);
      await writeFully(out, piece, position + done);
      done += n;
    }
    return done;
  } finally {
    await fh.close();
  }
}

export async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
