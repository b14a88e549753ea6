/**
 * What identifies a model's content for comparisons and the evaluation cache.
 *
 * `sha256` is the hash of the .onnx file alone (what the history records for every experiment).
 * That is not enough when weights live in external data: a quantized model.onnx holds little more than
 * the graph, so two different quantized models of one architecture can share it byte for byte.
 * `contentSha256` therefore also covers every external data file the graph references:
 *   no external data   contentSha256 = sha256
 *   otherwise          sha256 of "onnx <sha256>\n" + "<file name> <sha256 of the file>\n" per file (sorted by name)
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { sha256File } from '../rewrite/manifest.ts';
import { readModel } from '../onnx/reader.ts';

export interface ModelIdentity {
  path: string;
  sha256: string;
  contentSha256: string;
  externalData: { name: string; sha256: string }[];
}

export type HashFile = (file: string) => Promise<string>;

/** Combines the .onnx hash with its external data files' hashes (see the file header). */
export function combineContentHash(onnxSha256: string, externalData: readonly { name: string; sha256: string }[]): string {
  if (externalData.length === 0) return onnxSha256;
  const hash = createHash('sha256').update(`onnx ${onnxSha256}\n`);
  for (const f of [...externalData].sort((a, b) => a.name.localeCompare(b.name))) hash.update(`${f.name} ${f.sha256}\n`);
  return hash.digest('hex');
}

/**
 * Hashes the model file and the external data files it references (the graph is parsed; tensor payloads
 * are not read into memory). `hashFile` lets a caller reuse hashes it has already computed.
 */
export async function modelIdentity(modelPath: string, hashFile: HashFile = sha256File): Promise<ModelIdentity> {
  const file = path.resolve(modelPath);
  const model = await readModel(file);
  const sha256 = await hashFile(file);
  const externalData: { name: string; sha256: string }[] = [];
  for (const f of model.externalDataFiles) externalData.push({ name: path.basename(f), sha256: await hashFile(f) });
  return { path: file, sha256, contentSha256: combineContentHash(sha256, externalData), externalData };
}
