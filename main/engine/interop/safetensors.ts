/**
 * Safetensors, read by positional reads: an 8-byte little-endian header length N, N bytes of JSON
 * ({ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }), then the data block.
 * The header is checked strictly before any tensor is read: dtypes known, every tensor's byte length equal
 * to shape × dtype width, offsets in bounds and the tensors covering the data block without gaps or
 * overlaps. A sharded model (model.safetensors.index.json: { weight_map: { name: file } }) is a set of such
 * files; every shard is opened and checked up front, so a missing one is reported before anything is written.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { pathExists } from './path-exists.ts';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Float dtypes the importer converts. */
export const FLOAT_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16'];

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte offset of the first byte in `file`. */
  offset: number;
  length: number;
  file: string;
}

/** The largest header accepted (the format's own readers cap it at 100 MB). */
const MAX_HEADER = 100_000_000;

function bad(file: string, what: string): WhittleError {
  return new WhittleError('MODEL_PARSE', `${path.basename(file)} is not a valid safetensors file: ${what}.`, { path: file });
}

async function readExactly(fh: FileHandle, length: number, position: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? out : out.subarray(0, done);
}

/** Parses and checks the header of one safetensors file; returns its tensors in data order. */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsEntry[]> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new WhittleError('NOT_FOUND', `The weights file ${file} does not exist.`, { path: file });
    throw new WhittleError('IO', `Cannot read ${file}: ${err.message}`, { path: file });
  }
  try {
    const size = (await fh.stat()).size;
    const head = await readExactly(fh, 8, 0);
    if (head.length < 8) throw bad(file, `it is ${size} bytes, shorter than the 8-byte header length`);
    const n = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (n > MAX_HEADER || 8 + n > size) throw bad(file, `the header length ${n} does not fit the file's ${size} bytes`);
    const text = new TextDecoder().decode(await readExactly(fh, n, 8));
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw bad(file, 'the header is not JSON');
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw bad(file, 'the header is not a JSON object');
    const dataStart = 8 + n;
    const dataBytes = size - dataStart;
    const entries: SafetensorsEntry[] = [];
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!info || typeof info !== 'object') throw bad(file, `tensor '${name}' has no description`);
      const dtype = info.dtype;
      if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
        throw bad(file, `tensor '${name}' has dtype ${JSON.stringify(dtype)}, which is not one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
      }
      const shape = info.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(file, `tensor '${name}' has shape ${JSON.stringify(shape)}, not a list of sizes`);
      const offs = info.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
        throw bad(file, `tensor '${name}' has data_offsets ${JSON.stringify(offs)}, not [begin, end]`);
      }
      const [begin, end] = offs as [number, number];
      if (end > dataBytes) throw bad(file, `tensor '${name}' ends at byte ${end} of the data, past its end (${dataBytes} bytes)`);
      const need = (shape as number[]).reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype as SafetensorsDtype];
      if (end - begin !== need) throw bad(file, `tensor '${name}' spans ${end - begin} bytes but its shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${need}`);
      entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], offset: dataStart + begin, length: end - begin, file });
    }
    // The tensors must tile the data block: sorted by offset, each starts where the previous ended.
    entries.sort((a, b) => a.offset - b.offset || a.length - b.length);
    let cursor = dataStart;
    for (const e of entries) {
      if (e.offset !== cursor) {
        throw bad(file, e.offset < cursor ? `tensor '${e.name}' overlaps the tensor before it (starts at data byte ${e.offset - dataStart}, the previous ends at ${cursor - dataStart})` : `there is a gap before tensor '${e.name}' (data bytes ${cursor - dataStart}..${e.offset - dataStart} belong to no tensor)`);
      }
      cursor = e.offset + e.length;
    }
    if (cursor !== size) throw bad(file, `${size - cursor} bytes after the last tensor belong to no tensor`);
    return entries;
  } finally {
    await fh.close();
  }
}

/** The tensors of a model folder: model.safetensors, or the shards listed in model.safetensors.index.json. */
export class SafetensorsSet {
  readonly tensors: Map<string, SafetensorsEntry>;
  readonly files: string[];
  private handles = new Map<string, FileHandle>();

  private constructor(tensors: Map<string, SafetensorsEntry>, files: string[]) {
    this.tensors = tensors;
    this.files = files;
  }

  static async openFolder(dir: string): Promise<SafetensorsSet> {
    const indexPath = path.join(dir, 'model.safetensors.index.json');
    const single = path.join(dir, 'model.safetensors');
    let files: string[];
    let weightMap: Record<string, string> | null = null;
    if (await pathExists(indexPath)) {
      let index: { weight_map?: unknown };
      try {
        index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown };
      } catch {
        throw new WhittleError('MODEL_PARSE', `${indexPath} is not valid JSON.`, { path: indexPath });
      }
      if (!index.weight_map || typeof index.weight_map !== 'object') throw new WhittleError('MODEL_PARSE', `${indexPath} has no weight_map.`, { path: indexPath });
      weightMap = index.weight_map as Record<string, string>;
      const names = [...new Set(Object.values(weightMap))];
      for (const f of names) {
        if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || f === '..') throw new WhittleError('MODEL_PARSE', `${indexPath} names the shard ${JSON.stringify(f)}, not a file name in the folder.`, { path: indexPath });
      }
      files = names.map((f) => path.join(dir, f));
      const missing = [];
      for (const f of files) if (!(await pathExists(f))) missing.push(path.basename(f));
      if (missing.length) {
        throw new WhittleError('NOT_FOUND', `The model is sharded into ${files.length} files, but ${missing.length} ${missing.length === 1 ? 'is' : 'are'} missing from ${dir}: ${missing.join(', ')}. Download every shard listed in model.safetensors.index.json.`, { path: dir, missing });
      }
    } else if (await pathExists(single)) {
      files = [single];
    } else {
      throw new WhittleError('NOT_FOUND', `${dir} has no model.safetensors or model.safetensors.index.json. Whittle imports weights in the safetensors format.`, { path: dir });
    }
    const tensors = new Map<string, SafetensorsEntry>();
    for (const f of files) {
      for (const e of await readSafetensorsHeader(f)) {
        if (tensors.has(e.name)) throw new WhittleError('MODEL_PARSE', `Tensor '${e.name}' is stored twice (in ${path.basename(tensors.get(e.name)!.file)} and ${path.basename(f)}).`, { path: dir });
        tensors.set(e.name, e);
      }
    }
    if (weightMap) {
      for (const [name, f] of Object.entries(weightMap)) {
        const e = tensors.get(name);
        if (!e) throw new WhittleError('MODEL_PARSE', `model.safetensors.index.json puts '${name}' in ${f}, but no shard holds it.`, { path: dir });
        if (path.basename(e.file) !== f) throw new WhittleError('MODEL_PARSE', `model.safetensors.index.json puts '${name}' in ${f}, but it is in ${path.basename(e.file)}.`, { path: dir });
      }
    }
    return new SafetensorsSet(tensors, files);
  }

  get(name: string): SafetensorsEntry | undefined {
    return this.tensors.get(name);
  }

  /** The raw little-endian bytes of one tensor (one positional read). */
  async read(e: SafetensorsEntry): Promise<Uint8Array> {
    return this.readRange(e, 0, e.length);
  }

  /** `length` bytes of one tensor from byte `start` of its data (one positional read). */
  async readRange(e: SafetensorsEntry, start: number, length: number): Promise<Uint8Array> {
    if (start < 0 || start + length > e.length) throw new WhittleError('INTERNAL', `readRange: bytes ${start}..${start + length} are outside tensor '${e.name}' (${e.length} bytes).`);
    let fh = this.handles.get(e.file);
    if (!fh) {
      fh = await open(e.file, 'r');
      this.handles.set(e.file, fh);
    }
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, length - done, e.offset + start + done);
      if (bytesRead === 0) throw new WhittleError('MODEL_PARSE', `${e.file} ends before tensor '${e.name}' does.`, { path: e.file });
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(hs.map((h) => h.close()));
  }
}
