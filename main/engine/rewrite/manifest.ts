/**
 * whittle.json: what produced an output folder — Whittle's version, the recipe and step, the source model
 * (path, sha256 of its .onnx file, bytes with external data), the files written and every weight's fate.
 * The runner adds metrics later through `updateManifest`, while the folder still has its partial name.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { appRoot } from '../../paths.ts';

export const MANIFEST_FILE = 'whittle.json';

export interface ManifestWeight {
  name: string;
  shape: number[];
  bits: number | null;
  blockSize: number | null;
  status: 'quantized' | 'pruned' | 'trained' | 'skipped';
  reason?: string;
  /** Σ (w − dequant(w))² over the weight. */
  sqError?: number;
}

export interface Manifest {
  whittle: string;
  created: string;
  recipe: unknown;
  step: unknown;
  source: { path: string; sha256: string; bytes: number; externalData: string[] };
  output: { bytes: number; files: { name: string; bytes: number }[] };
  weights: ManifestWeight[];
  [extra: string]: unknown;
}

let version: string | undefined;
export function whittleVersion(): string {
  if (version === undefined) {
    try { version = String(JSON.parse(readFileSync(path.join(appRoot(), 'package.json'), 'utf8')).version); } catch { version = 'unknown'; }
  }
  return version;
}

/** sha256 of a file, streamed. */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Written through a temporary file in the same folder, so a reader never sees half a file. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const file = path.join(dir, MANIFEST_FILE);
  const tmp = path.join(dir, `.${MANIFEST_FILE}.tmp-${process.pid}`);
  try {
    await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmp, file);
  } catch (e) {
    // A full disk or a failed rename leaves no temporary file behind.
    await rm(tmp, { force: true }).catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOSPC' ? 'the disk is full; free some space and run the job again' : err.message;
    throw new WhittleError('IO', `Could not write ${file}: ${why}.`, { path: file, code: err.code ?? null }, { cause: e });
  }
}

export async function readManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, MANIFEST_FILE);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Manifest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new WhittleError('NOT_FOUND', `No ${MANIFEST_FILE} in ${dir}: it is not a Whittle output folder.`, { path: dir });
    throw new WhittleError('INVALID_INPUT', `${file} is not valid JSON.`, { path: file });
  }
}

/**
 * Merges `patch` into whittle.json (top-level keys replaced; plain-object values merged one level deep,
 * so `{ metrics: { perplexity: … } }` adds to existing metrics). Written atomically.
 */
export async function updateManifest(dir: string, patch: Record<string, unknown>): Promise<Manifest> {
  const current = await readManifest(dir);
  const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  for (const [key, value] of Object.entries(patch)) {
    const old = current[key];
    current[key] = isPlain(old) && isPlain(value) ? { ...old, ...value } : value;
  }
  await writeManifest(dir, current);
  return current;
}

export async function fileBytes(file: string): Promise<number> {
  return (await stat(file)).size;
}
