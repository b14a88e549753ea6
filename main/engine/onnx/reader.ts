/**
 * Reading an .onnx file into a ModelProto without loading its weights: the file is parsed through a
 * positional, windowed reader; tensor payloads become references (model file or external data file).
 * A file that is not an ONNX model is recognised by its bytes and reported with a precise message.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { isWhittleError, WhittleError } from '../errors.ts';
import { decodeModel, decodeTensorBody, fieldName } from './decode.ts';
import { ExternalDataResolver } from './external-data.ts';
import type { ModelProto, OnnxModel, TensorProto } from './proto-types.ts';
import { notAFileMessage, recogniseFile, specialFileKind } from './sniff.ts';
import { BufferSource, FileSource, ProtoCursor, ProtoError } from './wire.ts';

export interface ReadOptions {
  /** Payloads (raw_data) below this many bytes are copied into memory; larger ones stay file references. */
  inlineBelow?: number;
}

export const DEFAULT_INLINE_BELOW = 4096;

async function statFile(filePath: string, label: string): Promise<number> {
  try {
    const st = await stat(filePath);
    if (st.isDirectory()) throw new WhittleError('INVALID_INPUT', `${label} is a folder, not an ONNX model file. Choose the .onnx file inside it.`, { path: filePath });
    const special = specialFileKind(st);
    if (special) throw new WhittleError('INVALID_INPUT', notAFileMessage(label, special), { path: filePath, kind: special });
    return st.size;
  } catch (e) {
    if (isWhittleError(e)) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new WhittleError('NOT_FOUND', `No such file: ${filePath}`, { path: filePath });
    if (err.code === 'EACCES' || err.code === 'EPERM') throw new WhittleError('IO', `Permission denied: ${filePath}`, { path: filePath });
    throw new WhittleError('IO', `Cannot read ${filePath}: ${err.message}`, { path: filePath });
  }
}

function wireError(e: ProtoError, c: ProtoCursor, label: string, size: number, filePath: string): WhittleError {
  const field = c.field > 0 ? `${c.message}.${fieldName(c.message, c.field)}` : c.message || 'the first field';
  const where = c.label ? `${field} of ${c.label}` : field;
  if (e.kind === 'truncated') {
    return new WhittleError('MODEL_PARSE', `${label} is truncated: the file ends inside ${where} (the file has ${size} byte${size === 1 ? '' : 's'}). Copy or export the model again.`, { path: filePath, at: e.at, where });
  }
  const detail = e.message.includes(field) ? e.message : `${e.message} in ${where}`;
  return new WhittleError('MODEL_PARSE', `${label} is not an ONNX model: its bytes are not a valid ONNX protobuf (${detail}, at byte ${e.at}).`, { path: filePath, at: e.at, where });
}

/** Reads the model at `filePath`. Throws WhittleError (MODEL_PARSE, NOT_FOUND, INVALID_INPUT, IO). */
export async function readModel(filePath: string, opts: ReadOptions = {}): Promise<OnnxModel> {
  const abs = path.resolve(filePath);
  const label = path.basename(abs);
  const size = await statFile(abs, label);

  let src: FileSource;
  try {
    src = new FileSource(abs);
  } catch (e) {
    throw new WhittleError('IO', `Cannot open ${abs}: ${(e as Error).message}`, { path: abs }, { cause: e });
  }
  try {
    const head = src.view(0, Math.min(4096, size)).slice();
    const foreign = recogniseFile(head, size);
    if (foreign) throw new WhittleError('MODEL_PARSE', `${label} ${foreign.message}`, { path: abs, format: foreign.format });

    const external = new ExternalDataResolver(abs, label);
    const c = new ProtoCursor(src);
    let proto: ModelProto;
    try {
      proto = decodeModel(c, { inlineBelow: opts.inlineBelow ?? DEFAULT_INLINE_BELOW, resolveExternal: (t) => external.resolve(t) });
    } catch (e) {
      if (e instanceof ProtoError) throw wireError(e, c, label, size, abs);
      throw e;
    }
    if (!proto.graph) {
      throw new WhittleError('MODEL_PARSE', `${label} is not a usable ONNX model: it has no graph. The file may be cut short, or be another kind of protobuf file.`, { path: abs });
    }
    if (proto.opsetImport.length === 0) {
      throw new WhittleError('MODEL_PARSE', `${label} is not a usable ONNX model: it imports no operator set (opset_import). The file may be cut short.`, { path: abs });
    }
    return { path: abs, proto, fileBytes: size, externalDataFiles: external.used };
  } finally {
    src.close();
  }
}

/** Reads a standalone serialized TensorProto (the input_N.pb / output_N.pb files of ONNX's tests). */
export async function readTensorFile(filePath: string, opts: ReadOptions = {}): Promise<TensorProto> {
  const abs = path.resolve(filePath);
  const label = path.basename(abs);
  const size = await statFile(abs, label);
  const src = new FileSource(abs);
  try {
    const c = new ProtoCursor(src);
    c.message = 'TensorProto';
    const external = new ExternalDataResolver(abs, label);
    try {
      return decodeTensorBody(c, { inlineBelow: opts.inlineBelow ?? DEFAULT_INLINE_BELOW, resolveExternal: (t) => external.resolve(t) });
    } catch (e) {
      if (e instanceof ProtoError) throw wireError(e, c, label, size, abs);
      throw e;
    }
  } finally {
    src.close();
  }
}

/** Decodes a serialized TensorProto held in memory (payload copied into memory). */
export function decodeTensorBytes(bytes: Uint8Array): TensorProto {
  const c = new ProtoCursor(new BufferSource(bytes));
  c.message = 'TensorProto';
  try {
    return decodeTensorBody(c, { inlineBelow: Number.POSITIVE_INFINITY });
  } catch (e) {
    if (e instanceof ProtoError) throw wireError(e, c, 'the tensor', bytes.length, '');
    throw e;
  }
}

/** Decodes a serialized ModelProto held in memory (payloads copied; external data is refused). */
export function decodeModelBytes(bytes: Uint8Array): ModelProto {
  const c = new ProtoCursor(new BufferSource(bytes));
  try {
    return decodeModel(c, { inlineBelow: Number.POSITIVE_INFINITY });
  } catch (e) {
    if (e instanceof ProtoError) throw wireError(e, c, 'the model', bytes.length, '');
    throw e;
  }
}
