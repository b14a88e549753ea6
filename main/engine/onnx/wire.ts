/**
 * The protobuf wire format (https://protobuf.dev/programming-guides/encoding/), by hand:
 * - ByteSource: positional reads over a Uint8Array or a file handle (a sliding window, so a 2 GiB
 *   model is never held in memory and large fields can be skipped without reading them);
 * - ProtoCursor: reads tags, varints, fixed32/64 and length-delimited fields within [pos, end);
 * - ProtoWriter: builds a message as byte parts plus tensor payload references, so the final file can be
 *   streamed and a payload copied from its source file in chunks.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Int64, TensorSource } from './proto-types.ts';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

const TWO_POW_32 = 2 ** 32;
const TWO_POW_63 = 1n << 63n;
const TWO_POW_64 = 1n << 64n;

// ── reading ──────────────────────────────────────────────────────────────────────────────────────────

export interface ByteSource {
  readonly size: number;
  /** Absolute path when the bytes come from a file. */
  readonly path: string | null;
  byteAt(pos: number): number;
  /** `len` bytes from `pos`; the view is valid only until the next read, copy it to keep it. */
  view(pos: number, len: number): Uint8Array;
  close(): void;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  readonly path = null;
  private readonly buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.size = buf.length;
  }
  byteAt(pos: number): number {
    return this.buf[pos];
  }
  view(pos: number, len: number): Uint8Array {
    return this.buf.subarray(pos, pos + len);
  }
  close(): void { /* nothing to release */ }
}

/** Positional reads over an open file through one reusable window buffer. */
export class FileSource implements ByteSource {
  readonly size: number;
  readonly path: string;
  private fd: number;
  private win: Buffer;
  private winStart = 0;
  private winEnd = 0;

  constructor(path: string, windowBytes = 1 << 20) {
    this.path = path;
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
    this.win = Buffer.allocUnsafe(windowBytes);
  }

  byteAt(pos: number): number {
    if (pos < this.winStart || pos >= this.winEnd) this.fill(pos);
    return this.win[pos - this.winStart];
  }

  view(pos: number, len: number): Uint8Array {
    if (pos >= this.winStart && pos + len <= this.winEnd) return this.win.subarray(pos - this.winStart, pos - this.winStart + len);
    if (len > this.win.length) {
      const out = Buffer.allocUnsafe(len);
      readFully(this.fd, out, pos);
      return out;
    }
    this.fill(pos);
    return this.win.subarray(0, len);
  }

  private fill(pos: number): void {
    const want = Math.min(this.win.length, this.size - pos);
    readFully(this.fd, this.win.subarray(0, want), pos);
    this.winStart = pos;
    this.winEnd = pos + want;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function readFully(fd: number, out: Uint8Array, pos: number): void {
  let done = 0;
  while (done < out.length) {
    const n = readSync(fd, out, done, out.length - done, pos + done);
    if (n === 0) throw new ProtoError('truncated', pos + done);
    done += n;
  }
}

/** A wire-format problem; the reader turns it into a WhittleError naming the file and the field. */
export class ProtoError extends Error {
  readonly kind: 'truncated' | 'malformed';
  readonly at: number;
  where = '';
  constructor(kind: 'truncated' | 'malformed', at: number, message = '') {
    super(message || kind);
    this.kind = kind;
    this.at = at;
  }
}

export class ProtoCursor {
  readonly src: ByteSource;
  pos: number;
  end: number;
  /** Message currently being decoded, its last field number and its name (tensor/node), for error messages. */
  message = '';
  field = 0;
  label = '';

  constructor(src: ByteSource, pos = 0, end = src.size) {
    this.src = src;
    this.pos = pos;
    this.end = end;
  }

  more(): boolean {
    return this.pos < this.end;
  }

  private fail(need: number): never {
    // Past the end of the whole file → truncated; past the end of an enclosing message → malformed.
    if (this.end >= this.src.size && this.pos + need > this.src.size) throw new ProtoError('truncated', this.pos);
    throw new ProtoError('malformed', this.pos, 'a field runs past the end of its message');
  }

  /** An unsigned varint: a number when below 2^53, else a bigint. */
  varint(): number | bigint {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) this.fail(1);
      const b = this.src.byteAt(this.pos++);
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    // More than 49 bits: continue in bigint.
    let big = BigInt(result);
    let shift = 49n;
    for (let i = 7; i < 10; i++) {
      if (this.pos >= this.end) this.fail(1);
      const b = this.src.byteAt(this.pos++);
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        big = BigInt.asUintN(64, big);
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      shift += 7n;
    }
    throw new ProtoError('malformed', this.pos, 'a varint is longer than 10 bytes');
  }

  /** A varint read as a signed int64 (two's complement). */
  int64(): Int64 {
    const v = this.varint();
    if (typeof v === 'number') return v;
    const signed = v >= TWO_POW_63 ? v - TWO_POW_64 : v;
    return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(signed) : signed;
  }

  /** A varint that must fit a JS number (lengths, tags, enums, int32). */
  int32(): number {
    const v = this.int64();
    if (typeof v === 'bigint') throw new ProtoError('malformed', this.pos, 'a 32-bit value is out of range');
    return v;
  }

  /** Reads a tag; returns field number * 8 + wire type. */
  tag(): number {
    const t = this.varint();
    if (typeof t !== 'number' || t >= TWO_POW_32 || t < 8) throw new ProtoError('malformed', this.pos, 'invalid field tag');
    this.field = Math.floor(t / 8);
    return t;
  }

  /** Length of a length-delimited field, checked against the enclosing message. */
  length(): number {
    const len = this.varint();
    if (typeof len !== 'number') throw new ProtoError('malformed', this.pos, 'field length out of range');
    if (this.pos + len > this.end) this.fail(len);
    return len;
  }

  /**
   * Length of an embedded message. When the file ends before the message does, the cursor's end is
   * clipped to the file's end (`truncated` = true) so decoding continues and the error is reported at
   * the innermost field that is cut.
   */
  messageLength(): { len: number; truncated: boolean } {
    const len = this.varint();
    if (typeof len !== 'number') throw new ProtoError('malformed', this.pos, 'field length out of range');
    if (this.pos + len <= this.end) return { len, truncated: false };
    if (this.end >= this.src.size) return { len: this.src.size - this.pos, truncated: true };
    throw new ProtoError('malformed', this.pos, 'a field runs past the end of its message');
  }

  fixed32View(): DataView {
    if (this.pos + 4 > this.end) this.fail(4);
    const v = this.src.view(this.pos, 4);
    this.pos += 4;
    return new DataView(v.buffer, v.byteOffset, 4);
  }

  float(): number {
    return this.fixed32View().getFloat32(0, true);
  }

  double(): number {
    if (this.pos + 8 > this.end) this.fail(8);
    const v = this.src.view(this.pos, 8);
    this.pos += 8;
    return new DataView(v.buffer, v.byteOffset, 8).getFloat64(0, true);
  }

  /** A copy of `len` bytes at the cursor. */
  bytes(len: number): Uint8Array {
    const out = new Uint8Array(len);
    out.set(this.src.view(this.pos, len));
    this.pos += len;
    return out;
  }

  string(len: number): string {
    const s = utf8.decode(this.src.view(this.pos, len));
    this.pos += len;
    return s;
  }

  /** Skips the value of a field with wire type `wire`. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT: this.varint(); return;
      case WIRE_FIXED64: if (this.pos + 8 > this.end) this.fail(8); this.pos += 8; return;
      case WIRE_FIXED32: if (this.pos + 4 > this.end) this.fail(4); this.pos += 4; return;
      case WIRE_LEN: { const len = this.length(); this.pos += len; return; }
      case WIRE_START_GROUP: {
        for (;;) {
          if (this.pos >= this.end) this.fail(1);
          const t = this.tag();
          if ((t & 7) === WIRE_END_GROUP) return;
          this.skip(t & 7);
        }
      }
      default: throw new ProtoError('malformed', this.pos, `unknown wire type ${wire}`);
    }
  }

  /** The encoded bytes of the field whose tag started at `start` (after skipping its value). */
  unknownField(start: number, wire: number): Uint8Array {
    this.skip(wire);
    const len = this.pos - start;
    const out = new Uint8Array(len);
    out.set(this.src.view(start, len));
    return out;
  }
}

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

export function encodeUtf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

export function decodeUtf8(b: Uint8Array): string {
  return utf8.decode(b);
}

// ── writing ──────────────────────────────────────────────────────────────────────────────────────────

/** A tensor payload to be copied into the output from its source when the file is written. */
export interface PayloadPart { source: TensorSource; length: number; name?: string }
export type WritePart = Uint8Array | PayloadPart;

export class ProtoWriter {
  private buf = new Uint8Array(64);
  private len = 0;
  private parts: WritePart[] = [];
  /** Total encoded bytes so far, payloads included. */
  size = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
    this.size++;
  }

  /** Unsigned varint of a non-negative number (< 2^64) or bigint; negative values as 64-bit two's complement. */
  rawVarint(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < TWO_POW_32 * 2 ** 21 && Number.isInteger(v)) {
      while (v >= 0x80) {
        this.byte((v % 128) | 0x80);
        v = Math.floor(v / 128);
      }
      this.byte(v);
      return;
    }
    let big = BigInt.asUintN(64, BigInt(v));
    while (big >= 0x80n) {
      this.byte(Number(big & 0x7fn) | 0x80);
      big >>= 7n;
    }
    this.byte(Number(big));
  }

  tag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  varintField(field: number, v: Int64): void {
    this.tag(field, WIRE_VARINT);
    this.rawVarint(v);
  }

  floatField(field: number, v: number): void {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
    this.size += 4;
  }

  rawBytes(b: Uint8Array): void {
    if (b.length > 4096) {
      this.flush();
      this.parts.push(b);
      this.size += b.length;
      return;
    }
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    this.size += b.length;
  }

  bytesField(field: number, b: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.rawVarint(b.length);
    this.rawBytes(b);
  }

  stringField(field: number, s: string): void {
    this.bytesField(field, encodeUtf8(s));
  }

  messageField(field: number, child: ProtoWriter): void {
    this.tag(field, WIRE_LEN);
    this.rawVarint(child.size);
    child.flush();
    for (const p of child.parts) {
      if (p instanceof Uint8Array) this.rawBytes(p);
      else { this.flush(); this.parts.push(p); this.size += p.length; }
    }
  }

  /** A length-delimited field whose value is a tensor payload, copied from its source at write time. */
  payloadField(field: number, source: TensorSource, length: number, name?: string): void {
    this.tag(field, WIRE_LEN);
    this.rawVarint(length);
    if (source.kind === 'bytes') {
      this.rawBytes(source.bytes);
      return;
    }
    this.flush();
    this.parts.push({ source, length, name });
    this.size += length;
  }

  private flush(): void {
    if (this.len === 0) return;
    this.parts.push(this.buf.slice(0, this.len));
    this.len = 0;
  }

  finish(): WritePart[] {
    this.flush();
    return this.parts;
  }

  /** All bytes in memory; only for messages without file payloads. */
  toBytes(): Uint8Array {
    const parts = this.finish();
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of parts) {
      if (!(p instanceof Uint8Array)) {
        if (p.source.kind !== 'bytes') throw new Error('toBytes() on a message with file payloads');
        out.set(p.source.bytes, at);
        at += p.length;
        continue;
      }
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
