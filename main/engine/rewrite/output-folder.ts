/**
 * The folder a model-writing step delivers: model.onnx (+ model.onnx.data), the tokenizer and config files
 * that travel with a model, genai_config.json (ORT GenAI) and whittle.json.
 *
 * It is built as `<outDir>.partial-<pid>-<random>` beside the target and renamed into place only when the
 * whole job has succeeded, so a cancelled, failed or killed job never leaves a folder that looks finished.
 * The pid in the name tells whose it is: a partial folder whose process is gone was interrupted and is
 * removed by the next write to the same target, or by the next start of Whittle (jobs/output-folder.ts).
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadTokenizer } from '../data/tokenizer.ts';
import { isWhittleError, WhittleError } from '../errors.ts';
import { cannotCreateFolder } from '../folder-error.ts';
import type { LogLevel } from '../job-context.ts';

export const MODEL_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';

/** Files that belong with a model and are copied from its folder when present. */
export const COMPANION_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'vocab.txt', 'merges.txt', 'tokenizer.model', 'spiece.model', 'sentencepiece.bpe.model',
  'config.json', 'generation_config.json', 'chat_template.jinja',
];
/** Of those, the ones that describe the tokenizer (a recipe's tokenizer folder supplies these). */
const TOKENIZER_FILES = new Set(['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'vocab.txt', 'merges.txt', 'tokenizer.model', 'spiece.model', 'sentencepiece.bpe.model', 'chat_template.jinja']);

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

async function isEmptyDir(p: string): Promise<boolean> {
  try { return (await readdir(p)).length === 0; } catch { return false; }
}

/** Fails early when `outDir` is taken (an existing non-empty folder or a file). */
export async function checkOutputDir(outDir: string): Promise<void> {
  if (!(await exists(outDir))) return;
  if (await isEmptyDir(outDir)) return;
  throw new WhittleError('INVALID_INPUT', `The output folder ${outDir} already exists and is not empty. Choose another folder or remove it.`, { path: outDir });
}

const PARTIAL_NAME = /^(.+)\.partial-(\d+)-[0-9a-f]+$/;

/** `<target>.partial-<pid>-<random>` → the target's name and the writing process, or null. */
export function parsePartialName(name: string): { target: string; pid: number } | null {
  const m = PARTIAL_NAME.exec(name);
  return m ? { target: m[1], pid: Number(m[2]) } : null;
}

/** Whether a process with this id runs (a process of another user counts as running). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the partial folders in `dir` whose writing process is gone (all of them, or only those of the
 * target named `target`). Returns the folders removed.
 */
export async function removeStalePartials(dir: string, target?: string): Promise<string[]> {
  let names: string[];
  try { names = await readdir(dir); } catch { return []; }
  const removed: string[] = [];
  for (const name of names) {
    const p = parsePartialName(name);
    if (!p || (target !== undefined && p.target !== target) || processAlive(p.pid)) continue;
    await rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

/** A folder being written under a temporary name beside its final one. */
export interface PartialFolder {
  /** Where to write (the temporary name). */
  dir: string;
  /** The name it gets when committed. */
  finalDir: string;
  /** Renames the folder to its final name; returns it. */
  commit(): Promise<string>;
  /** Removes everything written (on cancel or error). */
  discard(): Promise<void>;
}

export async function createPartialFolder(outDir: string): Promise<PartialFolder> {
  const finalDir = path.resolve(outDir);
  await removeStalePartials(path.dirname(finalDir), path.basename(finalDir));
  await checkOutputDir(finalDir);
  const dir = `${finalDir}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(path.dirname(finalDir), { recursive: true });
    await mkdir(dir);
  } catch (e) {
    throw await cannotCreateFolder(e, finalDir, 'the output folder', 'choose another output folder (--out, or the output field of the form)');
  }
  return {
    dir,
    finalDir,
    async commit() {
      await checkOutputDir(finalDir);
      if (await exists(finalDir)) await rm(finalDir, { recursive: true, force: true }); // empty folder
      await rename(dir, finalDir);
      return finalDir;
    },
    async discard() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Copies tokenizer/config companions from the source model's folder, then the recipe's tokenizer
 * (tokenizer.json and its siblings, which win over the model folder's). Returns the file names copied.
 * A tokenizer.json is checked before it is copied: the recipe's must be a usable tokenizer (INVALID_INPUT
 * otherwise); one in the model's folder that is not is left out with a warning.
 */
export async function copyCompanions(sourceModel: string, tokenizerPath: string | undefined, outDir: string, log: (level: LogLevel, text: string) => void): Promise<string[]> {
  const copied = new Set<string>();
  const srcDir = path.dirname(path.resolve(sourceModel));
  const tokPath = tokenizerPath ? path.resolve(tokenizerPath) : null;
  if (tokPath) await loadTokenizer(tokPath);
  for (const name of COMPANION_FILES) {
    const from = path.join(srcDir, name);
    if (!(await exists(from))) continue;
    if (name === 'tokenizer.json' && from !== tokPath && !(await usableTokenizer(from, log))) continue;
    await copyFile(from, path.join(outDir, name));
    copied.add(name);
  }
  if (tokPath) {
    const tokDir = path.dirname(tokPath);
    if (tokDir !== srcDir) {
      await copyFile(tokPath, path.join(outDir, 'tokenizer.json'));
      copied.add('tokenizer.json');
      for (const name of TOKENIZER_FILES) {
        if (name === 'tokenizer.json') continue;
        const from = path.join(tokDir, name);
        if (await exists(from)) { await copyFile(from, path.join(outDir, name)); copied.add(name); }
      }
    }
  }
  await copyGenaiConfig(srcDir, outDir, log).then((ok) => ok && copied.add('genai_config.json'));
  return [...copied];
}

/** Whether the model folder's tokenizer.json loads; a warning says why not. */
async function usableTokenizer(file: string, log: (level: LogLevel, text: string) => void): Promise<boolean> {
  try {
    await loadTokenizer(file);
    return true;
  } catch (e) {
    if (!isWhittleError(e) || e.code !== 'INVALID_INPUT') throw e;
    log('warn', `The model folder's tokenizer.json was not copied: ${e.message}`);
    return false;
  }
}

/**
 * genai_config.json names the decoder file (`model.decoder.filename`); the output is always model.onnx,
 * so the name is updated when it differs. An unreadable config is copied verbatim with a warning.
 */
async function copyGenaiConfig(srcDir: string, outDir: string, log: (level: LogLevel, text: string) => void): Promise<boolean> {
  const from = path.join(srcDir, 'genai_config.json');
  if (!(await exists(from))) return false;
  const text = await readFile(from, 'utf8');
  let config: { model?: { decoder?: { filename?: unknown } } };
  try {
    config = JSON.parse(text);
  } catch {
    log('warn', 'genai_config.json is not valid JSON; copied unchanged.');
    await writeFile(path.join(outDir, 'genai_config.json'), text);
    return true;
  }
  const decoder = config.model?.decoder;
  if (decoder && typeof decoder === 'object' && decoder.filename !== MODEL_FILE) {
    log('info', `genai_config.json: decoder filename ${String(decoder.filename)} → ${MODEL_FILE}`);
    decoder.filename = MODEL_FILE;
  }
  await writeFile(path.join(outDir, 'genai_config.json'), `${JSON.stringify(config, null, 4)}\n`);
  return true;
}

/** Every file in a folder with its size (not recursive: the output folder is flat). */
export async function listFiles(dir: string): Promise<{ name: string; bytes: number }[]> {
  const out: { name: string; bytes: number }[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const s = await stat(path.join(dir, name));
    if (s.isFile()) out.push({ name, bytes: s.size });
  }
  return out;
}
