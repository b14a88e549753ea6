/** Size and SHA-256 of a model file, read as a stream (models can be larger than memory). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../engine/errors.ts';

export interface ModelFileFacts {
  bytes: number;
  sha256: string;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Remembers hashes by (path, size, modification time) so a model used for many jobs is read once. */
export class ModelFileFactsCache {
  private readonly known = new Map<string, { key: string; facts: ModelFileFacts }>();

  async facts(path: string): Promise<ModelFileFacts> {
    let st;
    try {
      st = await stat(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new WhittleError('NOT_FOUND', `The model file ${path} does not exist. Check model.path in the recipe.`, { path });
      }
      throw new WhittleError('IO', `Whittle cannot read the model file ${path} (${(e as Error).message}).`, { path }, { cause: e });
    }
    if (!st.isFile()) throw new WhittleError('INVALID_INPUT', `${path} is not a file. model.path must name an .onnx file.`, { path });
    const key = `${st.size}:${st.mtimeMs}`;
    const cached = this.known.get(path);
    if (cached?.key === key) return cached.facts;
    let sha256: string;
    try {
      sha256 = await sha256File(path);
    } catch (e) {
      throw new WhittleError('IO', `Whittle cannot read the model file ${path} (${(e as Error).message}).`, { path }, { cause: e });
    }
    const facts = { bytes: st.size, sha256 };
    this.known.set(path, { key, facts });
    return facts;
  }
}

/**
 * The model file a recipe names: the path itself, or for a folder (an experiment's output folder) the one
 * .onnx file inside it. A missing path is left for `facts` to report.
 */
export async function modelFileIn(modelPath: string): Promise<string> {
  const st = await stat(modelPath).catch(() => null);
  if (!st?.isDirectory()) return modelPath;
  const names = (await readdir(modelPath, { withFileTypes: true }).catch(() => []))
    .filter((d) => d.isFile() && d.name.toLowerCase().endsWith('.onnx')).map((d) => d.name).sort();
  if (names.length === 1) return path.join(modelPath, names[0]);
  throw new WhittleError(
    'INVALID_INPUT',
    names.length === 0
      ? `The folder ${modelPath} holds no .onnx file. Set model.path to a model file, or to an output folder Whittle wrote.`
      : `The folder ${modelPath} holds ${names.length} .onnx files (${names.join(', ')}). Set model.path to the one to use.`,
    { path: modelPath, files: names },
  );
}
