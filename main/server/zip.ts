/**
 * A streaming zip writer for folder downloads: entries stored (no compression: models do not compress),
 * each file read once — its CRC-32 goes in a data descriptor after the data (general-purpose flag bit 3),
 * so nothing is buffered beyond one read chunk. ZIP64 records are written where a size or an offset
 * passes 4 GiB. Names are UTF-8 (flag bit 11), relative, with forward slashes.
 *
 * Layout: per file [local header, data, data descriptor]; then the central directory, [the ZIP64 end
 * record and its locator], and the end record.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) continued from `crc` over `buf`, in JavaScript. */
export function crc32Table(buf: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The same CRC-32: zlib's (native, GB/s) where this Node has it, else the table above. */
export const crc32: (buf: Uint8Array, crc?: number) => number = typeof zlib.crc32 === 'function'
  ? (buf, crc = 0) => zlib.crc32(buf, crc)
  : crc32Table;

const MAX32 = 0xffffffff;

/** MS-DOS time and date of a moment (local time, 2-second steps, years 1980–2107). */
function dosTime(d: Date): { time: number; date: number } {
  const year = Math.min(Math.max(d.getFullYear(), 1980), 2107);
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

export interface ZipSource {
  /** The name inside the zip ('folder/sub/file.bin'). */
  name: string;
  file: string;
  size: number;
  mtime: Date;
}

/** Every regular file under `dir` as zip entries named `<prefix>/<relative path>`, sorted by name. */
export async function folderEntries(dir: string, prefix = path.basename(dir)): Promise<ZipSource[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort();
  const out: ZipSource[] = [];
  for (const file of files) {
    const st = await stat(file);
    out.push({ name: [prefix, ...path.relative(dir, file).split(path.sep)].join('/'), file, size: st.size, mtime: st.mtime });
  }
  return out;
}

interface Written { name: Buffer; crc: number; size: number; offset: number; time: number; date: number }

/** The zip of `sources`, chunk by chunk. A file that changes size while it is read ends the stream with an error. */
export async function* zipStream(sources: readonly ZipSource[]): AsyncGenerator<Buffer> {
  const written: Written[] = [];
  let offset = 0;
  for (const s of sources) {
    const name = Buffer.from(s.name, 'utf8');
    const { time, date } = dosTime(s.mtime);
    const zip64 = s.size >= MAX32 || offset >= MAX32;
    const extra = zip64 ? Buffer.alloc(20) : Buffer.alloc(0);
    if (zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2); // sizes unknown here: in the data descriptor
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(zip64 ? 45 : 20, 4);
    local.writeUInt16LE(0x0808, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(0, 14);
    local.writeUInt32LE(zip64 ? MAX32 : 0, 18);
    local.writeUInt32LE(zip64 ? MAX32 : 0, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const header = Buffer.concat([local, name, extra]);
    yield header;
    const start = offset;
    offset += header.length;

    let crc = 0;
    let size = 0;
    if (s.size > 0) {
      for await (const chunk of createReadStream(s.file, { highWaterMark: 1 << 20 })) {
        const b = chunk as Buffer;
        crc = crc32(b, crc);
        size += b.length;
        yield b;
      }
    }
    if (size !== s.size) throw new Error(`${s.file} changed while it was zipped`);
    offset += size;
    const descriptor = Buffer.alloc(zip64 ? 24 : 16);
    descriptor.writeUInt32LE(0x08074b50, 0);
    descriptor.writeUInt32LE(crc, 4);
    if (zip64) {
      descriptor.writeBigUInt64LE(BigInt(size), 8);
      descriptor.writeBigUInt64LE(BigInt(size), 16);
    } else {
      descriptor.writeUInt32LE(size, 8);
      descriptor.writeUInt32LE(size, 12);
    }
    yield descriptor;
    offset += descriptor.length;
    written.push({ name, crc, size, offset: start, time, date });
  }

  const cdStart = offset;
  for (const w of written) {
    const big = [w.size >= MAX32, w.size >= MAX32, w.offset >= MAX32];
    const extraFields = [w.size, w.size, w.offset].filter((_, i) => big[i]);
    const extra = Buffer.alloc(extraFields.length ? 4 + 8 * extraFields.length : 0);
    if (extraFields.length) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(8 * extraFields.length, 2);
      extraFields.forEach((v, i) => extra.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
    }
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE((3 << 8) | 45, 4); // made by: Unix, spec 4.5
    h.writeUInt16LE(extraFields.length ? 45 : 20, 6);
    h.writeUInt16LE(0x0808, 8);
    h.writeUInt16LE(0, 10);
    h.writeUInt16LE(w.time, 12);
    h.writeUInt16LE(w.date, 14);
    h.writeUInt32LE(w.crc, 16);
    h.writeUInt32LE(big[1] ? MAX32 : w.size, 20);
    h.writeUInt32LE(big[0] ? MAX32 : w.size, 24);
    h.writeUInt16LE(w.name.length, 28);
    h.writeUInt16LE(extra.length, 30);
    h.writeUInt32LE((0o100644 << 16) >>> 0, 38);
    h.writeUInt32LE(big[2] ? MAX32 : w.offset, 42);
    const record = Buffer.concat([h, w.name, extra]);
    yield record;
    offset += record.length;
  }
  const cdSize = offset - cdStart;
  const count = written.length;
  const zip64End = count >= 0xffff || cdStart >= MAX32 || cdSize >= MAX32;
  if (zip64End) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0);
    rec.writeBigUInt64LE(44n, 4);
    rec.writeUInt16LE((3 << 8) | 45, 12);
    rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(count), 24);
    rec.writeBigUInt64LE(BigInt(count), 32);
    rec.writeBigUInt64LE(BigInt(cdSize), 40);
    rec.writeBigUInt64LE(BigInt(cdStart), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset), 8);
    locator.writeUInt32LE(1, 16);
    yield Buffer.concat([rec, locator]);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  end.writeUInt32LE(Math.min(cdStart, MAX32), 16);
  yield end;
}
