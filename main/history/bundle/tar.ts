/**
 * A minimal tar (POSIX ustar) writer and reader for history bundles: regular files only, names under 100
 * bytes (bundle members are named by Whittle, never by the user), sizes past 8 GiB in base-256 (the GNU
 * extension). Every header's checksum is checked on reading; a file that ends inside a member is
 * reported as truncated. Asynchronous throughout: nothing blocks the main process.
 *
 * Layout: per member a 512-byte header, then the data padded to a multiple of 512; two zero blocks end
 * the archive.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

export const BLOCK = 512;

/** Why a file is not a readable tar: raised as `TarError` so callers can word it for the user. */
export class TarError extends Error {
  readonly kind: 'truncated' | 'corrupt';
  constructor(message: string, kind: 'truncated' | 'corrupt') {
    super(message);
    this.kind = kind;
    this.name = 'TarError';
  }
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  buf.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'ascii');
}

function header(name: string, size: number, mtime: number): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar member name too long: ${name}`);
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  writeOctal(h, 100, 8, 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  if (size < 8 ** 11) writeOctal(h, 124, 12, size);
  else {
    // base-256: a set high bit, then the size big-endian.
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) { h[i] = Number(v & 0xffn); v >>= 8n; }
  }
  writeOctal(h, 136, 12, Math.floor(mtime / 1000));
  h.fill(0x20, 148, 156);
  h[156] = 0x30; // '0': a regular file
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** Appends members to a new tar file; `finish` writes the end blocks. */
export class TarWriter {
  private offset = 0;
  private readonly fh: FileHandle;
  readonly path: string;
  private constructor(fh: FileHandle, file: string) {
    this.fh = fh;
    this.path = file;
  }

  static async create(file: string): Promise<TarWriter> {
    return new TarWriter(await open(file, 'wx'), file);
  }

  private async write(buf: Buffer): Promise<void> {
    await this.fh.write(buf, 0, buf.length, this.offset);
    this.offset += buf.length;
  }

  /** A member from memory; returns its sha256. */
  async addBuffer(name: string, data: Buffer): Promise<string> {
    await this.write(header(name, data.length, Date.now()));
    await this.write(data);
    await this.write(Buffer.alloc(padding(data.length)));
    return createHash('sha256').update(data).digest('hex');
  }

  /** A member copied from a file (streamed); returns its size and sha256. */
  async addFile(name: string, source: string): Promise<{ bytes: number; sha256: string }> {
    const st = await stat(source);
    await this.write(header(name, st.size, st.mtimeMs));
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of createReadStream(source, { highWaterMark: 1 << 20 })) {
      const b = chunk as Buffer;
      hash.update(b);
      bytes += b.length;
      await this.write(b);
    }
    if (bytes !== st.size) throw new Error(`${source} changed while it was packed`);
    await this.write(Buffer.alloc(padding(bytes)));
    return { bytes, sha256: hash.digest('hex') };
  }

  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
    await this.fh.close();
  }

  async abandon(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

export interface TarEntry {
  name: string;
  size: number;
  /** Where the member's data starts in the file. */
  offset: number;
}

function readOctal(buf: Buffer, offset: number, length: number): number {
  if (buf[offset] & 0x80) {
    let v = 0n;
    for (let i = offset + 1; i < offset + length; i++) v = (v << 8n) | BigInt(buf[i]);
    return Number(v);
  }
  const text = buf.toString('ascii', offset, offset + length).replace(/\0.*$/s, '').trim();
  if (!/^[0-7]*$/.test(text)) return Number.NaN;
  return text ? parseInt(text, 8) : 0;
}

/** The members of a tar file, in order, with every header checked. */
export async function listTar(file: string): Promise<TarEntry[]> {
  const fh = await open(file, 'r');
  try {
    const { size: fileSize } = await fh.stat();
    const entries: TarEntry[] = [];
    const h = Buffer.alloc(BLOCK);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(h, 0, BLOCK, pos);
      if (bytesRead < BLOCK) throw new TarError(`the file ends after ${pos + bytesRead} bytes, inside a header`, 'truncated');
      if (h.every((b) => b === 0)) return entries;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
      if (readOctal(h, 148, 8) !== sum) throw new TarError(`the header at byte ${pos} is damaged (checksum mismatch)`, 'corrupt');
      const size = readOctal(h, 124, 12);
      if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`the header at byte ${pos} has no valid size`, 'corrupt');
      const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      const prefix = h.toString('utf8', 345, 500).replace(/\0.*$/s, '');
      const type = String.fromCharCode(h[156] || 0x30);
      const offset = pos + BLOCK;
      if (offset + size > fileSize) throw new TarError(`the file ends inside the member ${name} (${fileSize - offset} of ${size} bytes)`, 'truncated');
      if (type === '0' || type === '\0') entries.push({ name: prefix ? `${prefix}/${name}` : name, size, offset });
      pos = offset + size + padding(size);
    }
  } finally {
    await fh.close();
  }
}

/** sha256 of a member's data. */
export async function hashMember(file: string, entry: TarEntry): Promise<string> {
  const hash = createHash('sha256');
  if (entry.size === 0) return hash.digest('hex');
  for await (const chunk of createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function readMember(file: string, entry: TarEntry): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(entry.size);
    const { bytesRead } = await fh.read(buf, 0, entry.size, entry.offset);
    if (bytesRead !== entry.size) throw new TarError(`the member ${entry.name} is cut short`, 'truncated');
    return buf;
  } finally {
    await fh.close();
  }
}

/** Copies a member's data to `target` (a new file), checking its sha256 on the way. */
export async function extractMember(file: string, entry: TarEntry, target: string, sha256: string): Promise<void> {
  const hash = createHash('sha256');
  const tap = new Transform({ transform(chunk: Buffer, _enc, done) { hash.update(chunk); done(null, chunk); } });
  const source = entry.size === 0 ? [] : createReadStream(file, { start: entry.offset, end: entry.offset + entry.size - 1, highWaterMark: 1 << 20 });
  await pipeline(source, tap, createWriteStream(target, { flags: 'wx' }));
  if (hash.digest('hex') !== sha256) throw new TarError(`the member ${entry.name} changed while it was unpacked`, 'corrupt');
}
