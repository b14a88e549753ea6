/**
 * The teacher's top-k cache: the teacher runs once over every sequence of the training text and, per
 * position, its k most likely ids, their log-probabilities at temperature T and the log of the mass left
 * over are written to one file, so that epochs of distillation read rows instead of running the teacher.
 *
 * File (little-endian):
 *   header, HEADER_BYTES = 128:
 *     0  'WHTOPK01'           8 bytes
 *     8  version (1)          uint32
 *    12  k                    uint32
 *    16  length T             uint32
 *    20  sequences S          uint32
 *    24  vocabulary V         uint32
 *    28  bytes per log-prob   uint32 (4: float32)
 *    32  temperature          float64
 *    40  data fingerprint     32 bytes (SHA-256 of the token stream and T, TrainingData.fingerprint)
 *    72  zeros to 128
 *   then sequence after sequence (in text order), each ROW = T · (8k + 4) bytes:
 *     ids  int32   [T, k]   (most likely first)
 *     logp float32 [T, k]   log p_T of those ids
 *     rest float32 [T]      log(1 − Σ_k p_T), −∞ when the k ids hold all the mass
 * so the file is HEADER_BYTES + S · T · (8k + 4) bytes. Log-probabilities are kept in float32: in float16
 * a log-probability near −10 is off by up to 0.004, which the KL would carry (the saving is 2k of 8k + 4
 * bytes per position).
 *
 * The file is written under a temporary name and renamed when complete, so a cancelled build leaves none.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { TrainBatch, TrainingData } from '../train/data.ts';
import { REST_LOGP_FLOOR, TEACHER_REST_LOGP, TEACHER_TOPK_IDS, TEACHER_TOPK_LOGP } from './kd-head.ts';
import type { Teacher } from './teacher.ts';

export const HEADER_BYTES = 128;
const MAGIC = 'WHTOPK01';
const VERSION = 1;

/** Bytes of the cache of `positions` = S · T positions at `k` ids each (header included). */
export function topkCacheBytes(positions: number, k: number): number {
  return HEADER_BYTES + positions * (8 * k + 4);
}

export interface TopkCacheHeader {
  k: number;
  length: number;
  sequences: number;
  vocab: number;
  temperature: number;
  /** TrainingData.fingerprint of the text the cache was built on (hex). */
  dataFingerprint: string;
}

function encodeHeader(h: TopkCacheHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.write(MAGIC, 0, 'ascii');
  b.writeUInt32LE(VERSION, 8);
  b.writeUInt32LE(h.k, 12);
  b.writeUInt32LE(h.length, 16);
  b.writeUInt32LE(h.sequences, 20);
  b.writeUInt32LE(h.vocab, 24);
  b.writeUInt32LE(4, 28);
  b.writeDoubleLE(h.temperature, 32);
  Buffer.from(h.dataFingerprint, 'hex').copy(b, 40);
  return b;
}

function decodeHeader(b: Buffer, file: string): TopkCacheHeader {
  if (b.length < HEADER_BYTES || b.toString('ascii', 0, 8) !== MAGIC || b.readUInt32LE(8) !== VERSION || b.readUInt32LE(28) !== 4) {
    throw new WhittleError('INVALID_INPUT', `${file} is not a Whittle top-k teacher cache (or was written by another version). Build the cache again.`, { file });
  }
  return {
    k: b.readUInt32LE(12), length: b.readUInt32LE(16), sequences: b.readUInt32LE(20), vocab: b.readUInt32LE(24),
    temperature: b.readDoubleLE(32), dataFingerprint: b.toString('hex', 40, 72),
  };
}

export interface BuildTopkCacheOptions {
  k: number;
  temperature: number;
  /** The cache file to write (replaced atomically). */
  file: string;
  signal?: AbortSignal;
  onProgress?: (p: { done: number; total: number }) => void;
}

export interface BuiltTopkCache {
  file: string;
  bytes: number;
  seconds: number;
  k: number;
  positions: number;
}

/** Runs the teacher once over every sequence of `data` (in text order, B at a time) and writes the cache. */
export async function buildTopkCache(teacher: Teacher, data: TrainingData, options: BuildTopkCacheOptions): Promise<BuiltTopkCache> {
  const started = performance.now();
  const { k, temperature } = options;
  const T = data.length;
  if (!Number.isInteger(k) || k < 1 || k > teacher.view.vocab) {
    throw new WhittleError('INVALID_INPUT', `The top-k cache needs k between 1 and the vocabulary (${teacher.view.vocab}); got ${k}.`);
  }
  if (!(temperature > 0)) throw new WhittleError('INVALID_INPUT', `The distillation temperature must be above 0 (got ${temperature}).`);
  if (teacher.view.batch !== data.batch || teacher.view.length !== T) {
    throw new WhittleError('INTERNAL', `The teacher was opened for batches of ${teacher.view.batch} × ${teacher.view.length} tokens, the data gives ${data.batch} × ${T}.`);
  }
  const header: TopkCacheHeader = { k, length: T, sequences: data.sequences, vocab: teacher.view.vocab, temperature, dataFingerprint: data.fingerprint };
  const temp = `${options.file}.partial-${randomBytes(4).toString('hex')}`;
  const rowBytes = T * (8 * k + 4);
  let fh: FileHandle | null = await open(temp, 'w');
  try {
    await fh.write(encodeHeader(header), 0, HEADER_BYTES, 0);
    let done = 0;
    for (const batch of data.inOrder()) {
      throwIfAborted(options.signal);
      const rows = await teacher.topk(batch, k, temperature);
      const sequences = batch.sequences ?? new Int32Array(0);
      const out = Buffer.alloc(rowBytes * sequences.filter((s) => s >= 0).length);
      let at = 0;
      for (let row = 0; row < sequences.length; row++) {
        if (sequences[row] < 0) continue;
        const ids = new Int32Array(out.buffer, out.byteOffset + at, T * k);
        const logp = new Float32Array(out.buffer, out.byteOffset + at + 4 * T * k, T * k);
        const rest = new Float32Array(out.buffer, out.byteOffset + at + 8 * T * k, T);
        for (let i = 0; i < T * k; i++) ids[i] = Number(rows.ids[row * T * k + i]);
        logp.set(rows.logp.subarray(row * T * k, (row + 1) * T * k));
        rest.set(rows.rest.subarray(row * T, (row + 1) * T));
        at += rowBytes;
      }
      await fh.write(out, 0, out.length, HEADER_BYTES + done * rowBytes);
      done += out.length / rowBytes;
      options.onProgress?.({ done, total: data.sequences });
    }
    await fh.sync();
    await fh.close();
    fh = null;
    throwIfAborted(options.signal);
    await rename(temp, options.file);
  } catch (e) {
    await fh?.close();
    await rm(temp, { force: true });
    throw e;
  }
  const bytes = topkCacheBytes(data.sequences * T, k);
  return { file: options.file, bytes, seconds: (performance.now() - started) / 1000, k, positions: data.sequences * T };
}

/** A built cache, read by sequence. */
export class TopkCache {
  readonly file: string;
  readonly header: TopkCacheHeader;
  private readonly fh: FileHandle;

  private constructor(file: string, header: TopkCacheHeader, fh: FileHandle) {
    this.file = file;
    this.header = header;
    this.fh = fh;
  }

  static async open(file: string): Promise<TopkCache> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      throw new WhittleError('NOT_FOUND', `The top-k teacher cache ${file} cannot be read (${(e as Error).message}). Build it again.`, { file }, { cause: e });
    }
    try {
      const b = Buffer.alloc(HEADER_BYTES);
      await fh.read(b, 0, HEADER_BYTES, 0);
      const header = decodeHeader(b, file);
      const { size } = await fh.stat();
      if (size !== topkCacheBytes(header.sequences * header.length, header.k)) {
        throw new WhittleError('INVALID_INPUT', `The top-k teacher cache ${file} is ${size} bytes, but its header promises ${topkCacheBytes(header.sequences * header.length, header.k)}: it is damaged. Build it again.`, { file });
      }
      return new TopkCache(file, header, fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get k(): number { return this.header.k; }

  /** Refuses a cache built for another text, sequence length, vocabulary or temperature. */
  assertFits(data: { fingerprint: string; length: number; sequences: number }, vocab: number, temperature: number): void {
    const h = this.header;
    const why = h.dataFingerprint !== data.fingerprint || h.length !== data.length || h.sequences !== data.sequences
      ? `it was built on another text or sequence length (${h.sequences} sequences of ${h.length} tokens; this run has ${data.sequences} of ${data.length})`
      : h.vocab !== vocab ? `its teacher scores ${h.vocab} words, the student ${vocab}`
        : h.temperature !== temperature ? `it holds log-probabilities at temperature ${h.temperature}, this run distils at ${temperature}` : null;
    if (why) throw new WhittleError('INVALID_INPUT', `The top-k teacher cache ${this.file} does not fit this run: ${why}. Build the cache again for this run.`, { file: this.file });
  }

  /**
   * The head's three inputs for a batch of `rows` sequences (−1: an empty row, filled with ids 0 … k−1 and
   * a rest of REST_LOGP_FLOOR; its labels are −1 so the head does not count it).
   */
  async rows(sequences: Int32Array): Promise<Record<string, ort.Tensor>> {
    const { k, length: T } = this.header;
    const B = sequences.length;
    const rowBytes = T * (8 * k + 4);
    const ids = new BigInt64Array(B * T * k);
    const logp = new Float32Array(B * T * k);
    const rest = new Float32Array(B * T).fill(REST_LOGP_FLOOR);
    const buf = Buffer.alloc(rowBytes);
    for (let row = 0; row < B; row++) {
      const s = sequences[row];
      if (s < 0) {
        for (let i = 0; i < T * k; i++) ids[row * T * k + i] = BigInt(i % k);
        continue;
      }
      if (s >= this.header.sequences) throw new WhittleError('INTERNAL', `Sequence ${s} is past the cache's ${this.header.sequences} sequences.`);
      const { bytesRead } = await this.fh.read(buf, 0, rowBytes, HEADER_BYTES + s * rowBytes);
      if (bytesRead !== rowBytes) throw new WhittleError('INVALID_INPUT', `The top-k teacher cache ${this.file} ends early. Build it again.`);
      const id32 = new Int32Array(buf.buffer, buf.byteOffset, T * k);
      for (let i = 0; i < T * k; i++) ids[row * T * k + i] = BigInt(id32[i]);
      logp.set(new Float32Array(buf.buffer, buf.byteOffset + 4 * T * k, T * k), row * T * k);
      rest.set(new Float32Array(buf.buffer, buf.byteOffset + 8 * T * k, T), row * T);
    }
    return {
      [TEACHER_TOPK_IDS]: new ort.Tensor('int64', ids, [B, T, k]),
      [TEACHER_TOPK_LOGP]: new ort.Tensor('float32', logp, [B, T, k]),
      [TEACHER_REST_LOGP]: new ort.Tensor('float32', rest, [B, T, 1]),
    };
  }

  /** The head's inputs for a training batch (its rows name their sequences). */
  async feeds(batch: TrainBatch): Promise<Record<string, ort.Tensor>> {
    if (!batch.sequences || batch.source !== this.header.dataFingerprint) {
      throw new WhittleError('INVALID_INPUT', `The top-k teacher cache ${this.file} holds the training text's sequences only; a batch from another text (held-out loss) needs the teacher itself. `
        + 'Distil with the teacher session, or leave out the held-out text.');
    }
    return this.rows(batch.sequences);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
