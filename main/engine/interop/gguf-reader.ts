/**
 * Reads a GGUF file's header (gguf-writer.ts has the layout): metadata, tensor infos and where each
 * tensor's bytes lie, and one tensor's bytes on demand (positional reads, never the whole file).
 */
import { open } from 'node:fs/promises';
import { WhittleError } from '../errors.ts';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, ggufTensorBytes, type GgmlType } from './gguf-writer.ts';

export type GgufMetadataValue = number | bigint | boolean | string | (number | bigint | boolean | string)[];

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: GgmlType;
  /** Absolute position of the tensor's bytes in the file. */
  position: number;
  bytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataStart: number;
}

const HEADER_READ_LIMIT = 1 << 30;

class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly decoder = new TextDecoder();
  private readonly buf: Uint8Array;
  private readonly file: string;
  constructor(buf: Uint8Array, file: string) {
    this.buf = buf;
    this.file = file;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new WhittleError('MODEL_PARSE', `${this.file} ends inside its GGUF header.`, { path: this.file });
  }
  u8(): number { this.need(1); return this.view.getUint8(this.pos++); }
  i8(): number { this.need(1); return this.view.getInt8(this.pos++); }
  u16(): number { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16(): number { this.need(2); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32(): number { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32(): number { this.need(4); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64(): number { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64(): bigint { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64(): bigint { this.need(8); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v; }
  count(): number {
    const v = this.u64();
    if (v > BigInt(this.buf.length)) throw new WhittleError('MODEL_PARSE', `${this.file} has a GGUF length field larger than the file.`, { path: this.file });
    return Number(v);
  }
  str(): string { const n = this.count(); this.need(n); const s = this.decoder.decode(this.buf.subarray(this.pos, this.pos + n)); this.pos += n; return s; }
}

function readValue(c: Cursor, type: number): GgufMetadataValue {
  switch (type) {
    case GgufValueType.UINT8: return c.u8();
    case GgufValueType.INT8: return c.i8();
    case GgufValueType.UINT16: return c.u16();
    case GgufValueType.INT16: return c.i16();
    case GgufValueType.UINT32: return c.u32();
    case GgufValueType.INT32: return c.i32();
    case GgufValueType.FLOAT32: return c.f32();
    case GgufValueType.FLOAT64: return c.f64();
    case GgufValueType.UINT64: return c.u64();
    case GgufValueType.INT64: return c.i64();
    case GgufValueType.BOOL: return c.u8() !== 0;
    case GgufValueType.STRING: return c.str();
    case GgufValueType.ARRAY: {
      const itemType = c.u32();
      const n = c.count();
      const out: (number | bigint | boolean | string)[] = [];
      for (let i = 0; i < n; i++) out.push(readValue(c, itemType) as number | bigint | boolean | string);
      return out;
    }
    default: throw new RangeError(`unknown GGUF value type ${type}`);
  }
}

export async function readGguf(file: string): Promise<GgufFile> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = new Uint8Array(Math.min(size, HEADER_READ_LIMIT));
    await fh.read(buf, 0, buf.length, 0);
    const c = new Cursor(buf, file);
    if (c.u32() !== GGUF_MAGIC) throw new WhittleError('MODEL_PARSE', `${file} is not a GGUF file (wrong magic).`, { path: file });
    const version = c.u32();
    const tensorCount = c.count();
    const kvCount = c.count();
    const metadata = new Map<string, GgufMetadataValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = c.str();
      metadata.set(key, readValue(c, c.u32()));
    }
    const infos: { name: string; dims: number[]; type: GgmlType; offset: number }[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = c.str();
      const nDims = c.u32();
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(Number(c.u64()));
      const type = c.u32() as GgmlType;
      infos.push({ name, dims, type, offset: Number(c.u64()) });
    }
    const a = metadata.get('general.alignment');
    const alignment = typeof a === 'number' ? a : GGUF_DEFAULT_ALIGNMENT;
    const dataStart = Math.ceil(c.pos / alignment) * alignment;
    const tensors = infos.map((t) => {
      const bytes = ggufTensorBytes(t.dims, t.type);
      const position = dataStart + t.offset;
      if (position + bytes > size) throw new WhittleError('MODEL_PARSE', `${file}: tensor ${t.name} lies past the end of the file.`, { path: file, tensor: t.name });
      return { name: t.name, dims: t.dims, type: t.type, position, bytes };
    });
    return { path: file, version, metadata, tensors, alignment, dataStart };
  } finally {
    await fh.close();
  }
}

/** One tensor's bytes. */
export async function readGgufTensor(file: GgufFile, name: string): Promise<Uint8Array> {
  const t = file.tensors.find((x) => x.name === name);
  if (!t) throw new WhittleError('NOT_FOUND', `${file.path} has no tensor ${name}.`, { path: file.path, tensor: name });
  const fh = await open(file.path, 'r');
  try {
    const out = new Uint8Array(t.bytes);
    await fh.read(out, 0, t.bytes, t.position);
    return out;
  } finally {
    await fh.close();
  }
}
