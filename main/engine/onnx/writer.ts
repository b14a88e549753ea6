/**
 * Writing a model: the .onnx protobuf plus (optionally) one external data file, both streamed.
 * Tensor payloads are copied one at a time from their sources in 4 MiB chunks; external tensors start at
 * 4096-byte aligned offsets (mmap-friendly) and are named by a relative `location` (just the file name).
 * Atomic: both files are written under temporary names and renamed only once complete; on any error the
 * temporaries are removed and a previous output stays as it was.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { encodeModel, payloadLength, type ExternalPlacement } from './encode.ts';
import { allTensors } from './graph.ts';
import type { ModelProto, OnnxModel, TensorProto } from './proto-types.ts';
import { DataType } from './dtype.ts';
import { copyPayload, COPY_CHUNK_BYTES, elementCount, writeFully } from './tensor-data.ts';
import type { WritePart } from './wire.ts';

/** protobuf's hard limit for one message (2 GiB - 1). */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;
export const EXTERNAL_ALIGNMENT = 4096;

export interface WriteOptions {
  /** 'auto': tensors of `threshold` bytes or more go to external data; 'all': every tensor except small
   *  integer shape/axes tensors (see isShapeLike); 'none': everything inline. */
  externalData?: 'auto' | 'none' | 'all';
  /** Bytes from which a tensor goes to external data in 'auto' mode (default 1024). */
  threshold?: number;
  /** File name of the external data file, beside the model (default '<model file name>.data'). */
  dataFileName?: string;
  signal?: AbortSignal;
  /** Called after each tensor payload is written. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface WriteResult {
  path: string;
  /** The external data file, or null when every tensor is inline. */
  dataPath: string | null;
  modelBytes: number;
  dataBytes: number;
  externalTensors: number;
}

function checkDataFileName(name: string): void {
  if (name === '' || name === '.' || name === '..' || /[\\/]/.test(name) || name.includes('\0')) {
    throw new WhittleError('INVALID_INPUT', `The external data file name '${name}' must be a plain file name (no folders).`);
  }
}

/** Tensors eligible for external data: initializers and tensor attributes in every graph. */
function placeTensors(proto: ModelProto, select: (t: TensorProto) => boolean, location: string): { map: Map<TensorProto, ExternalPlacement>; order: TensorProto[]; end: number } {
  const map = new Map<TensorProto, ExternalPlacement>();
  const order: TensorProto[] = [];
  let cursor = 0;
  for (const t of allTensors(proto)) {
    if (!t.data || map.has(t)) continue;
    const length = payloadLength(t);
    if (length === 0 || !select(t)) continue;
    const offset = Math.ceil(cursor / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    map.set(t, { location, offset, length });
    order.push(t);
    cursor = offset + length;
  }
  return { map, order, end: cursor };
}

/**
 * Small integer tensors (≤ 64 elements) are the shapes, axes and indices that ONNX Runtime reads while
 * loading the graph (shape inference), and it cannot read those from external data; 'all' keeps them inline.
 */
export function isShapeLike(t: TensorProto): boolean {
  const integer = t.dataType === DataType.int64 || t.dataType === DataType.int32;
  return integer && elementCount(t.dims) <= 64;
}

function tempName(target: string): string {
  return `${target}.tmp-${randomBytes(6).toString('hex')}`;
}

async function writeParts(fh: FileHandle, parts: WritePart[], chunk: Uint8Array, signal: AbortSignal | undefined, progress: (n: number) => void): Promise<number> {
  let at = 0;
  // Merge small byte parts into one buffer before writing.
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) return;
    const buf = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
    await writeFully(fh, buf, at);
    at += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  for (const p of parts) {
    if (p instanceof Uint8Array) {
      pending.push(p);
      pendingBytes += p.length;
      if (pendingBytes >= COPY_CHUNK_BYTES) await flush();
      continue;
    }
    await flush();
    throwIfAborted(signal);
    const tensorLike: TensorProto = { dims: [], stringData: [], externalData: [], metadataProps: [], data: p.source, name: p.name ?? '' };
    at += await copyPayload(tensorLike, fh, at, chunk);
    progress(p.length);
  }
  await flush();
  return at;
}

/**
 * Writes `model` to `outPath` (and `<dataFileName>` beside it when tensors go to external data).
 * The model's tensor sources must stay readable until this resolves.
 */
export async function writeModel(model: OnnxModel | ModelProto, outPath: string, opts: WriteOptions = {}): Promise<WriteResult> {
  const proto: ModelProto = 'proto' in model ? model.proto : model;
  const out = path.resolve(outPath);
  const mode = opts.externalData ?? 'auto';
  const threshold = opts.threshold ?? 1024;
  const dataFileName = opts.dataFileName ?? `${path.basename(out)}.data`;
  checkDataFileName(dataFileName);
  const dataPath = path.join(path.dirname(out), dataFileName);
  if (!proto.graph) throw new WhittleError('INVALID_INPUT', 'The model has no graph to write.');

  const select = mode === 'all' ? (t: TensorProto) => !isShapeLike(t) : mode === 'none' ? () => false : (t: TensorProto) => payloadLength(t) >= threshold;
  let placed = placeTensors(proto, select, dataFileName);
  let writer = encodeModel(proto, { placement: (t) => placed.map.get(t) ?? null });
  if (writer.size > PROTOBUF_LIMIT && mode === 'auto') {
    // Still over the limit with the threshold: put every tensor in external data.
    placed = placeTensors(proto, () => true, dataFileName);
    writer = encodeModel(proto, { placement: (t) => placed.map.get(t) ?? null });
  }
  if (writer.size > PROTOBUF_LIMIT) {
    const gib = (writer.size / 2 ** 30).toFixed(2);
    throw new WhittleError('UNSUPPORTED_MODEL', `The model would be a ${gib} GiB protobuf, over protobuf's 2 GiB limit. Write it with external data (externalData 'auto' or 'all').`, { bytes: writer.size });
  }
  const parts = writer.finish();

  const totalBytes = writer.size + placed.end;
  let doneBytes = 0;
  const progress = (n: number): void => {
    doneBytes += n;
    opts.onProgress?.(doneBytes, totalBytes);
  };
  const chunk = new Uint8Array(Math.min(COPY_CHUNK_BYTES, Math.max(placed.end, writer.size, 1)));
  const modelTmp = tempName(out);
  const dataTmp = placed.order.length > 0 ? tempName(dataPath) : null;
  let modelBytes = 0;

  try {
    if (dataTmp) {
      const fh = await open(dataTmp, 'wx');
      try {
        for (const t of placed.order) {
          throwIfAborted(opts.signal);
          const where = placed.map.get(t) as ExternalPlacement;
          await copyPayload(t, fh, where.offset, chunk);
          progress(where.length);
        }
        await fh.truncate(placed.end);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    const fh = await open(modelTmp, 'wx');
    try {
      modelBytes = await writeParts(fh, parts, chunk, opts.signal, progress);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    throwIfAborted(opts.signal);
    if (dataTmp) await rename(dataTmp, dataPath);
    await rename(modelTmp, out);
  } catch (e) {
    await rm(modelTmp, { force: true }).catch(() => undefined);
    if (dataTmp) await rm(dataTmp, { force: true }).catch(() => undefined);
    if (e instanceof WhittleError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOSPC') throw new WhittleError('IO', `The disk is full while writing ${out}. Free some space and try again.`, { path: out }, { cause: e });
    if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') throw new WhittleError('IO', `Cannot write ${out}: permission denied.`, { path: out }, { cause: e });
    if (err.code === 'ENOENT') throw new WhittleError('NOT_FOUND', `Cannot write ${out}: the folder does not exist.`, { path: out }, { cause: e });
    throw new WhittleError('IO', `Writing ${out} failed: ${err.message}`, { path: out }, { cause: e });
  }
  return { path: out, dataPath: dataTmp ? dataPath : null, modelBytes, dataBytes: placed.end, externalTensors: placed.order.length };
}
