/**
 * Training checkpoints: weights, AdamW moments and step count, data position, RNG state and the curve,
 * written atomically so that a run killed at any moment resumes from its last complete checkpoint.
 *
 * Layout, one folder per checkpoint in the checkpoint directory:
 *   step-000123/tensors.bin   every float32 array back to back (little-endian), in the order of state.json
 *   step-000123/state.json    format, version, fingerprints, step, position, rng, curve, and the table of
 *                             arrays: parameters { name, dims, weights } and moments { name, m, v } as
 *                             { offset, length } into tensors.bin
 * Writing: both files go into a temporary folder `.checkpoint-tmp-…` beside the others, one array at a
 * time (never one buffer of the whole model), each file fsynced; the folder is then renamed to
 * `step-NNNNNN` and the checkpoint directory fsynced. A folder named step-NNNNNN is therefore complete;
 * a kill mid-write leaves only a temporary, which readers ignore and the next write removes. Only the
 * newest KEEP_CHECKPOINTS checkpoints are kept.
 * Reading: the newest step folder whose state.json parses, has this format's version and whose arrays fit
 * tensors.bin exactly; a folder failing the size checks is passed over for the one before it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { writeFully } from '../onnx/tensor-data.ts';
import type { DataPosition } from './data.ts';
import type { AdamWState } from './optimizer.ts';
import type { TrainPoint } from './types.ts';

export const CHECKPOINT_FORMAT = 'whittle-train-checkpoint';
export const CHECKPOINT_VERSION = 1;
/** Checkpoints kept in a directory (the newest ones). */
export const KEEP_CHECKPOINTS = 2;

const STATE_FILE = 'state.json';
const TENSORS_FILE = 'tensors.bin';
const TEMP_PREFIX = '.checkpoint-tmp-';
const STEP_FOLDER = /^step-(\d+)$/;

export interface CheckpointParameter {
  name: string;
  dims: number[];
  weights: Float32Array;
}

/** What a checkpoint holds (what the training loop gives and gets back). */
export interface CheckpointState {
  /** Identifies the model being trained; resuming refuses a checkpoint of another model. */
  modelFingerprint: string;
  /** Identifies the settings that shape the run (optional; `assertResumable` compares it when given). */
  configFingerprint?: string;
  /** Optimizer steps done. */
  step: number;
  position: DataPosition;
  /** Any further generator state, as JSON. */
  rng?: unknown;
  curve: TrainPoint[];
  parameters: CheckpointParameter[];
  optimizer: AdamWState;
}

/** A checkpoint as read back: its state, the format version and the folder it came from. */
export interface ReadCheckpoint extends CheckpointState {
  version: number;
  folder: string;
}

/** Where an array lies in tensors.bin, in float32 elements. */
interface ArrayRef {
  offset: number;
  length: number;
}

interface StateFile {
  format: string;
  version: number;
  modelFingerprint: string;
  configFingerprint?: string;
  step: number;
  position: DataPosition;
  rng?: unknown;
  curve: TrainPoint[];
  parameters: { name: string; dims: number[]; weights: ArrayRef }[];
  optimizer: { step: number; moments: { name: string; m: ArrayRef; v: ArrayRef }[] };
  /** Bytes of tensors.bin. */
  tensorBytes: number;
}

/** The folder name of step s: step-000123 (six digits at least, so names sort by step). */
export function checkpointFolderName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function ioError(what: string, e: unknown, details: Record<string, unknown>): WhittleError {
  if (e instanceof WhittleError) return e;
  return new WhittleError('IO', `${what}: ${(e as Error).message}`, details, { cause: e });
}

/** fsync a folder so a rename in it is durable (not possible on Windows, where renames are journaled anyway). */
async function syncFolder(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function checkState(state: CheckpointState): void {
  const bad = (message: string): never => { throw new WhittleError('INTERNAL', `Cannot write the checkpoint: ${message}`); };
  if (typeof state.modelFingerprint !== 'string' || state.modelFingerprint.length === 0) bad('the model fingerprint is missing.');
  if (!Number.isSafeInteger(state.step) || state.step < 0) bad(`the step ${state.step} is not a whole number ≥ 0.`);
  for (const p of state.parameters) {
    const count = p.dims.reduce((a, d) => a * d, 1);
    if (!(p.weights instanceof Float32Array) || count !== p.weights.length) bad(`${p.name} has dims [${p.dims.join(', ')}] but ${p.weights.length} weights.`);
  }
  for (const m of state.optimizer.moments) {
    if (!(m.m instanceof Float32Array) || !(m.v instanceof Float32Array) || m.m.length !== m.v.length) bad(`the moments of ${m.name} differ in size.`);
  }
}

/** Removes temporaries left by writes that never finished (a killed process). */
async function removeTemporaries(dir: string, names: string[]): Promise<void> {
  for (const name of names) {
    if (name.startsWith(TEMP_PREFIX)) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

async function listEntries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`Could not list the checkpoints in ${dir}`, e, { dir });
  }
}

/** The step folders of a directory, newest first. */
function stepFolders(names: string[]): { name: string; step: number }[] {
  return names
    .map((name) => ({ name, match: STEP_FOLDER.exec(name) }))
    .filter((x): x is { name: string; match: RegExpExecArray } => x.match !== null)
    .map((x) => ({ name: x.name, step: Number(x.match[1]) }))
    .sort((a, b) => b.step - a.step);
}

/**
 * Writes `state` as the checkpoint of its step in `dir` (created if needed), atomically (see the header),
 * replacing a checkpoint of the same step, then removes all but the newest KEEP_CHECKPOINTS and any
 * leftover temporaries. Returns the checkpoint's folder.
 */
export async function writeCheckpoint(dir: string, state: CheckpointState): Promise<string> {
  checkState(state);
  const details = { dir, step: state.step };
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw ioError(`Could not create the checkpoint folder ${dir}`, e, details);
  }
  await removeTemporaries(dir, await listEntries(dir));

  const temp = path.join(dir, `${TEMP_PREFIX}${checkpointFolderName(state.step)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const final = path.join(dir, checkpointFolderName(state.step));
  try {
    await mkdir(temp);
    // tensors.bin, one array at a time, recording where each lies.
    let offset = 0;
    const handle = await open(path.join(temp, TENSORS_FILE), 'w');
    const put = async (a: Float32Array): Promise<ArrayRef> => {
      const ref = { offset, length: a.length };
      await writeFully(handle, new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset * 4);
      offset += a.length;
      return ref;
    };
    let table: Pick<StateFile, 'parameters' | 'optimizer'>;
    try {
      const parameters = [];
      for (const p of state.parameters) parameters.push({ name: p.name, dims: [...p.dims], weights: await put(p.weights) });
      const moments = [];
      for (const m of state.optimizer.moments) moments.push({ name: m.name, m: await put(m.m), v: await put(m.v) });
      table = { parameters, optimizer: { step: state.optimizer.step, moments } };
      await handle.sync();
    } finally {
      await handle.close();
    }

    const file: StateFile = {
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      modelFingerprint: state.modelFingerprint,
      ...(state.configFingerprint !== undefined ? { configFingerprint: state.configFingerprint } : {}),
      step: state.step,
      position: state.position,
      ...(state.rng !== undefined ? { rng: state.rng } : {}),
      curve: state.curve,
      ...table,
      tensorBytes: offset * 4,
    };
    const json = await open(path.join(temp, STATE_FILE), 'w');
    try {
      await json.writeFile(JSON.stringify(file), 'utf8');
      await json.sync();
    } finally {
      await json.close();
    }
    await syncFolder(temp);

    // A checkpoint of the same step (written again at cancel) is moved aside, then replaced.
    const previous = stepFolders(await listEntries(dir)).find((f) => f.step === state.step);
    let aside: string | null = null;
    if (previous) {
      aside = `${temp}-replaced`;
      await rename(path.join(dir, previous.name), aside);
    }
    await rename(temp, final);
    await syncFolder(dir);
    if (aside) await rm(aside, { recursive: true, force: true });
  } catch (e) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(`Could not write the checkpoint of step ${state.step} in ${dir}`, e, details);
  }

  for (const old of stepFolders(await listEntries(dir)).slice(KEEP_CHECKPOINTS)) {
    await rm(path.join(dir, old.name), { recursive: true, force: true });
  }
  return final;
}

async function readFully(handle: FileHandle, target: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, target.length - done, position + done);
    if (bytesRead === 0) throw new Error('tensors.bin ends early');
    done += bytesRead;
  }
}

function isRef(r: unknown, total: number): r is ArrayRef {
  const x = r as ArrayRef;
  return typeof x === 'object' && x !== null && Number.isSafeInteger(x.offset) && Number.isSafeInteger(x.length)
    && x.offset >= 0 && x.length >= 0 && x.offset + x.length <= total;
}

/** Why the state file cannot be read as a complete checkpoint, or null when it can. */
function problemOf(file: StateFile, binBytes: number): string | null {
  if (file.tensorBytes !== binBytes) return `${TENSORS_FILE} holds ${binBytes} bytes, ${file.tensorBytes} expected`;
  const total = binBytes / 4;
  if (!Array.isArray(file.parameters) || !file.optimizer || !Array.isArray(file.optimizer.moments)) return 'its table of arrays is missing';
  for (const p of file.parameters) {
    if (!isRef(p.weights, total)) return `the weights of ${p.name} lie outside ${TENSORS_FILE}`;
    if (!Array.isArray(p.dims) || p.dims.reduce((a, d) => a * d, 1) !== p.weights.length) return `${p.name} has dims that do not match its weights`;
  }
  for (const m of file.optimizer.moments) {
    if (!isRef(m.m, total) || !isRef(m.v, total) || m.m.length !== m.v.length) return `the moments of ${m.name} lie outside ${TENSORS_FILE}`;
  }
  if (!Number.isSafeInteger(file.step) || typeof file.modelFingerprint !== 'string' || !file.position || !Array.isArray(file.curve)) {
    return 'its step, fingerprint, position or curve is missing';
  }
  return null;
}

/** Reads one checkpoint folder; null when it is incomplete or damaged; throws for another format version. */
async function readFolder(folder: string): Promise<ReadCheckpoint | null> {
  let file: StateFile;
  let binBytes: number;
  try {
    file = JSON.parse(await readFile(path.join(folder, STATE_FILE), 'utf8')) as StateFile;
    binBytes = (await stat(path.join(folder, TENSORS_FILE))).size;
  } catch {
    return null;
  }
  if (typeof file !== 'object' || file === null || file.format !== CHECKPOINT_FORMAT) return null;
  if (file.version !== CHECKPOINT_VERSION) {
    throw new WhittleError('INVALID_INPUT',
      `The checkpoint ${folder} has format version ${String(file.version)}; this version of Whittle reads version ${CHECKPOINT_VERSION}. `
      + 'Start the training again (without resuming), or resume it with the Whittle version that wrote it.',
      { folder, version: file.version, expected: CHECKPOINT_VERSION });
  }
  if (problemOf(file, binBytes) !== null) return null;

  const handle = await open(path.join(folder, TENSORS_FILE), 'r');
  try {
    const load = async (ref: ArrayRef): Promise<Float32Array> => {
      const a = new Float32Array(ref.length);
      await readFully(handle, new Uint8Array(a.buffer), ref.offset * 4);
      return a;
    };
    const parameters: CheckpointParameter[] = [];
    for (const p of file.parameters) parameters.push({ name: p.name, dims: p.dims, weights: await load(p.weights) });
    const moments: AdamWState['moments'] = [];
    for (const m of file.optimizer.moments) moments.push({ name: m.name, m: await load(m.m), v: await load(m.v) });
    return {
      version: file.version,
      folder,
      modelFingerprint: file.modelFingerprint,
      ...(file.configFingerprint !== undefined ? { configFingerprint: file.configFingerprint } : {}),
      step: file.step,
      position: file.position,
      ...(file.rng !== undefined ? { rng: file.rng } : {}),
      curve: file.curve,
      parameters,
      optimizer: { step: file.optimizer.step, moments },
    };
  } finally {
    await handle.close();
  }
}

/**
 * The newest complete checkpoint in `dir`, or null when there is none (no folder, only temporaries, or
 * only damaged checkpoints). Leftover temporaries are removed.
 */
export async function readLatestCheckpoint(dir: string): Promise<ReadCheckpoint | null> {
  const names = await listEntries(dir);
  await removeTemporaries(dir, names);
  for (const f of stepFolders(names)) {
    let read: ReadCheckpoint | null;
    try {
      read = await readFolder(path.join(dir, f.name));
    } catch (e) {
      throw ioError(`Could not read the checkpoint ${path.join(dir, f.name)}`, e, { dir, folder: f.name });
    }
    if (read) return read;
  }
  return null;
}

/**
 * Throws WhittleError('INVALID_INPUT') when the checkpoint belongs to another model (or, when both are
 * given, to other training settings) than the run about to resume from it.
 */
export function assertResumable(state: Pick<CheckpointState, 'modelFingerprint' | 'configFingerprint' | 'step'> & { folder?: string }, modelFingerprint: string, configFingerprint?: string): void {
  const where = state.folder ? ` (${state.folder})` : '';
  if (state.modelFingerprint !== modelFingerprint) {
    throw new WhittleError('INVALID_INPUT',
      `The checkpoint at step ${state.step}${where} was written while training another model, so this run cannot resume from it. `
      + 'Resume with the model it was made from, or start the training again without resuming.',
      { checkpointModel: state.modelFingerprint, model: modelFingerprint, step: state.step });
  }
  if (configFingerprint !== undefined && state.configFingerprint !== undefined && state.configFingerprint !== configFingerprint) {
    throw new WhittleError('INVALID_INPUT',
      `The checkpoint at step ${state.step}${where} was written with other training settings (text, batch, length, schedule or frozen weights). `
      + 'Resume with the settings it was made with, or start the training again without resuming.',
      { checkpointConfig: state.configFingerprint, config: configFingerprint, step: state.step });
  }
}
