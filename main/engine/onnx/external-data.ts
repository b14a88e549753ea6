/**
 * External data (https://onnx.ai/onnx/repo-docs/ExternalData.html): a tensor's bytes live in another file,
 * named by `location` relative to the model's folder, at `offset` for `length` bytes.
 * Only files inside the model's folder are accepted: absolute paths, `..` segments and symbolic links
 * that resolve outside the folder are refused, so a model cannot make Whittle read arbitrary files.
 * "The folder" is the folder the model path is in, or, when the model file is itself a symbolic link,
 * also the folder its target is in (the Hugging Face cache keeps model.onnx and model.onnx.data as
 * links into one blobs folder).
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { byteSize, dtypeName } from './dtype.ts';
import type { TensorProto, TensorSource } from './proto-types.ts';
import { elementCount } from './tensor-data.ts';

interface DataFile { path: string; size: number }

export class ExternalDataResolver {
  private readonly modelDir: string;
  private readonly allowedDirs: string[];
  private readonly label: string;
  private readonly files = new Map<string, DataFile>();
  /** Absolute paths of the data files, in first-use order. */
  readonly used: string[] = [];

  /** `modelPath`: absolute path of the .onnx file; `label`: how messages name it (its file name). */
  constructor(modelPath: string, label: string) {
    this.modelDir = path.dirname(modelPath);
    this.allowedDirs = [...new Set([realpathSync(this.modelDir), path.dirname(realpathSync(modelPath))])];
    this.label = label;
  }

  private file(location: string, tensorName: string): DataFile {
    const cached = this.files.get(location);
    if (cached) return cached;
    const details = { location, tensor: tensorName, modelDir: this.modelDir };
    if (location === '') {
      throw new WhittleError('MODEL_PARSE', `${this.label} is damaged: tensor '${tensorName}' uses external data but names no file.`, details);
    }
    if (path.isAbsolute(location) || path.win32.isAbsolute(location) || location.startsWith('\\')) {
      throw new WhittleError('INVALID_INPUT', `${this.label} refers to external data by an absolute path ('${location}', tensor '${tensorName}'). Only files beside the model are allowed: move the file next to the model and re-export with a relative location.`, details);
    }
    if (location.split(/[\\/]/).includes('..')) {
      throw new WhittleError('INVALID_INPUT', `${this.label} refers to external data outside its folder ('${location}', tensor '${tensorName}'). Only files beside the model are allowed.`, details);
    }
    const full = path.join(this.modelDir, location);
    let real: string;
    try {
      real = realpathSync(full);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new WhittleError('NOT_FOUND', `${this.label} keeps its weights in '${location}', which is missing. Keep that file beside the model, in the same folder.`, { ...details, path: full });
      }
      throw new WhittleError('IO', `Cannot open '${location}', the external data of ${this.label}: ${(e as Error).message}`, { ...details, path: full });
    }
    if (!this.allowedDirs.some((dir) => real.startsWith(dir + path.sep))) {
      throw new WhittleError('INVALID_INPUT', `${this.label} refers to external data '${location}' that leads outside the model's folder (through a symbolic link). Copy the file beside the model instead.`, { ...details, path: full, realPath: real });
    }
    const st = statSync(real);
    if (!st.isFile()) {
      throw new WhittleError('INVALID_INPUT', `${this.label} refers to external data '${location}', which is not a file.`, { ...details, path: full });
    }
    const f = { path: full, size: st.size };
    this.files.set(location, f);
    this.used.push(full);
    return f;
  }

  /** The file reference holding tensor `t`'s bytes; checks the location and that the bytes exist. */
  resolve(t: TensorProto): TensorSource {
    const name = t.name ?? '';
    const kv = new Map<string, string>();
    for (const e of t.externalData) if (e.key !== undefined) kv.set(e.key, e.value ?? '');
    const location = kv.get('location') ?? '';
    const f = this.file(location, name);
    const offset = parseCount(kv.get('offset') ?? '0', 'offset', name, this.label);
    let length: number;
    if (kv.has('length')) {
      length = parseCount(kv.get('length') ?? '', 'length', name, this.label);
    } else {
      const need = byteSize(t.dataType, elementCount(t.dims));
      length = Number.isFinite(need) ? need : f.size - offset;
    }
    if (offset + length > f.size) {
      throw new WhittleError('MODEL_PARSE', `The external data file '${location}' of ${this.label} is truncated: tensor '${name}' needs bytes ${offset} to ${offset + length} but the file has ${f.size} bytes. Copy the file again.`, { location, tensor: name, offset, length, fileSize: f.size });
    }
    const need = byteSize(t.dataType, elementCount(t.dims));
    if (Number.isFinite(need) && need !== length) {
      throw new WhittleError('MODEL_PARSE', `${this.label} is damaged: tensor '${name}' has shape [${t.dims.join(', ')}] of ${dtypeName(t.dataType)} (${need} bytes) but its external data is ${length} bytes.`, { location, tensor: name });
    }
    return { kind: 'file', path: f.path, offset, length };
  }
}

function parseCount(s: string, what: string, tensor: string, label: string): number {
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw new WhittleError('MODEL_PARSE', `${label} is damaged: tensor '${tensor}' has external data ${what} '${s}', which is not a byte count.`);
  }
  return Number(s);
}
