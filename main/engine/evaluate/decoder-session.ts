/**
 * Decoder-only language models run through onnxruntime, whatever their input/output layout.
 *
 * Three layouts are recognised from the session's input/output names and metadata (never assumed):
 *   no-cache        input_ids [batch, seq] (+ attention_mask, position_ids) → logits [batch, seq, vocab]
 *   hf-cache        + past_key_values.N.key/value [batch, kv_heads, past, head] → present.N.key/value
 *                   (Hugging Face / optimum naming; ORT GenAI's model builder uses it too, often in fp16)
 *   combined-cache  + past_N [2, batch, heads, past, head] → present_N (onnxruntime.transformers' GPT-2)
 *
 * A fresh sequence gets empty past tensors (past length 0) of the graph's own dtype. attention_mask is all
 * ones over [batch, past + seq]; position_ids run past .. past + seq - 1. Graphs without a cache are
 * still decoded token by token: their state keeps the tokens so far and each step re-runs them.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { WhittleError } from '../errors.ts';
import { halfToFloat32 } from './fp16.ts';
import { rowCouplingOfFile, type RowCoupling } from './row-coupling.ts';

export type DecoderLayoutKind = 'no-cache' | 'hf-cache' | 'combined-cache';
type IntType = 'int64' | 'int32';
type FloatType = 'float32' | 'float16';

export interface CacheSlot {
  past: string;
  present: string;
  dtype: FloatType;
  /** Shape of the past input with `batch` and `past` axes marked; the other dims are fixed numbers. */
  dims: (number | 'batch' | 'past')[];
}

export interface DecoderLayout {
  kind: DecoderLayoutKind;
  inputIds: { name: string; dtype: IntType };
  attentionMask: { name: string; dtype: IntType } | null;
  positionIds: { name: string; dtype: IntType } | null;
  /** Merged decoders (optimum) take a bool switch between the no-past and with-past branches. */
  useCacheBranch: string | null;
  logits: { name: string; dtype: FloatType };
  cache: CacheSlot[];
}

/** What a decoder remembers between calls: the cache tensors (or the tokens, without a cache). */
export interface DecoderState {
  pastLength: number;
  past: Map<string, ort.Tensor>;
  /** Tokens fed so far; only kept (and needed) for graphs without a cache. */
  tokens: number[];
}

export interface ForwardResult {
  /** [n, vocab] row-major, float32 whatever the graph's dtype. */
  logits: Float32Array;
  state: DecoderState;
}

/** Logits as onnxruntime returned them: float32, or float16 as raw bits (no conversion). */
export type RawLogits = Float32Array | Uint16Array;

export interface Decoder {
  path: string;
  layout: DecoderLayout;
  vocabSize: number;
  /** Whether rows of one run can influence each other (dynamic activation quantization): row-coupling.ts. */
  rowCoupling: RowCoupling;
  /** Intra-op threads asked of onnxruntime; 0 = its default (one per physical core). */
  threads: number;
  /** Run `ids` after `state` (a fresh sequence without it); logits for the new positions only. */
  forward(ids: number[], state?: DecoderState): Promise<ForwardResult>;
  /**
   * Fresh sequences of different lengths in one run, right-padded to the longest: a causal decoder's
   * logits at real positions only see earlier (real) positions, so the padding cannot change them.
   * Logits are [rows, seqLen, vocab]; rows shorter than seqLen have padding logits after their length.
   */
  forwardBatch(rows: number[][]): Promise<{ logits: Float32Array; seqLen: number }>;
  /** forwardBatch with the logits left in the graph's dtype (float16 as raw bits), for the scoring kernel. */
  forwardBatchRaw(rows: number[][]): Promise<{ logits: RawLogits; seqLen: number }>;
  release(): Promise<void>;
}

export interface OpenDecoderOptions {
  threads?: number;
}

const KNOWN_INPUTS = new Set(['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch']);

interface ValueMeta { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] }

function metaOf(session: ort.InferenceSession, which: 'input' | 'output'): ValueMeta[] {
  const list = (which === 'input' ? session.inputMetadata : session.outputMetadata) as unknown as readonly ValueMeta[];
  return [...list];
}

function unsupported(modelPath: string, why: string): WhittleError {
  return new WhittleError('UNSUPPORTED_MODEL', `${path.basename(modelPath)} is not a decoder Whittle can run: ${why}.`, { path: modelPath });
}

function intType(meta: ValueMeta, modelPath: string): IntType {
  if (meta.type === 'int64' || meta.type === 'int32') return meta.type;
  throw unsupported(modelPath, `input ${meta.name} has type ${meta.type}, expected int64 or int32`);
}

function floatType(meta: ValueMeta, modelPath: string): FloatType {
  if (meta.type === 'float32' || meta.type === 'float16') return meta.type;
  throw unsupported(modelPath, `${meta.name} has type ${meta.type}, expected float32 or float16`);
}

/** The layer number in a cache tensor name (past_key_values.3.key → 3, past_3 → 3). */
function layerIndex(name: string): number {
  const m = /(\d+)/.exec(name);
  return m ? Number(m[1]) : 0;
}

function presentNameFor(past: string, outputs: Set<string>): string | null {
  const candidates = [past.replace(/^past_key_values/, 'present'), past.replace(/^past_key_values/, 'present_key_values'), past.replace(/^past/, 'present')];
  return candidates.find((c) => outputs.has(c)) ?? null;
}

/** Mark the batch and past axes of a cache input's shape. */
function cacheDims(meta: ValueMeta, batchName: string | number | undefined, modelPath: string): CacheSlot['dims'] {
  const shape = meta.shape ?? [];
  const combined = shape.length === 5;
  if (shape.length !== 4 && !combined) throw unsupported(modelPath, `cache input ${meta.name} has ${shape.length} dimensions, expected 4 or 5`);
  // Defaults when the symbolic names do not tell: [batch, heads, past, head] or [2, batch, heads, past, head].
  let batchAxis = combined ? 1 : 0;
  let pastAxis = combined ? 3 : 2;
  const symbolic = shape.map((d, i) => (typeof d === 'string' ? i : -1)).filter((i) => i >= 0);
  if (typeof batchName === 'string' && shape.includes(batchName)) batchAxis = shape.indexOf(batchName);
  const others = symbolic.filter((i) => i !== batchAxis);
  if (others.length === 1) pastAxis = others[0];
  return shape.map((d, i) => {
    if (i === batchAxis) return 'batch';
    if (i === pastAxis) return 'past';
    if (typeof d !== 'number' || d < 0) throw unsupported(modelPath, `cache input ${meta.name} has an unknown size (${String(d)}) on axis ${i}`);
    return d;
  });
}

export function detectDecoderLayoutFromSession(session: ort.InferenceSession, modelPath: string): DecoderLayout {
  const inputs = metaOf(session, 'input');
  const outputs = metaOf(session, 'output');
  const byName = new Map(inputs.map((m) => [m.name, m]));
  const outputNames = new Set(outputs.map((m) => m.name));

  const ids = byName.get('input_ids');
  if (!ids) throw unsupported(modelPath, `it has no input_ids input (inputs: ${inputs.map((m) => m.name).join(', ')})`);
  const pastInputs = inputs.filter((m) => /^past/i.test(m.name));
  const unknown = inputs.filter((m) => !KNOWN_INPUTS.has(m.name) && !/^past/i.test(m.name));
  if (unknown.length > 0) throw unsupported(modelPath, `it needs inputs Whittle does not know how to feed: ${unknown.map((m) => m.name).join(', ')}`);

  const logitsMeta = outputs.find((m) => m.name === 'logits') ?? outputs.find((m) => !/^present/i.test(m.name) && (m.shape?.length ?? 0) === 3);
  if (!logitsMeta) throw unsupported(modelPath, 'it has no logits output');

  const batchName = ids.shape?.[0];
  const cache: CacheSlot[] = pastInputs
    .map((m) => {
      const present = presentNameFor(m.name, outputNames);
      if (!present) throw unsupported(modelPath, `cache input ${m.name} has no matching present output`);
      return { past: m.name, present, dtype: floatType(m, modelPath), dims: cacheDims(m, batchName, modelPath) };
    })
    .sort((a, b) => layerIndex(a.past) - layerIndex(b.past) || a.past.localeCompare(b.past));

  let kind: DecoderLayoutKind = 'no-cache';
  if (cache.length > 0) kind = cache[0].dims.length === 5 ? 'combined-cache' : 'hf-cache';

  const mask = byName.get('attention_mask');
  const positions = byName.get('position_ids');
  const branch = byName.get('use_cache_branch');
  return {
    kind,
    inputIds: { name: ids.name, dtype: intType(ids, modelPath) },
    attentionMask: mask ? { name: mask.name, dtype: intType(mask, modelPath) } : null,
    positionIds: positions ? { name: positions.name, dtype: intType(positions, modelPath) } : null,
    useCacheBranch: branch ? branch.name : null,
    logits: { name: logitsMeta.name, dtype: floatType(logitsMeta, modelPath) },
    cache,
  };
}

function intTensor(dtype: IntType, values: ArrayLike<number>, dims: number[]): ort.Tensor {
  if (dtype === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}

/**
 * onnxruntime-node hands float16 out as a Float16Array where the runtime has one, but its native binding
 * only reads float16 input from a Uint16Array (a Float16Array feed arrives as 0 bytes: "not enough space").
 * The tensor constructor turns Uint16Array into Float16Array, so the raw bits are put back on the instance.
 */
export function float16Feed(bits: Uint16Array, dims: readonly number[]): ort.Tensor {
  const tensor = new ort.Tensor('float16', bits, dims);
  if (!(tensor.data instanceof Uint16Array)) Object.defineProperty(tensor, 'data', { value: bits });
  return tensor;
}

/** A tensor onnxruntime returned, made fit to feed back (float16 as raw bits: a Float16Array input reads as 0 bytes). */
export function asFeed(tensor: ort.Tensor): ort.Tensor {
  if (tensor.type !== 'float16' || tensor.data instanceof Uint16Array) return tensor;
  const data = tensor.data as unknown as ArrayBufferView & { length: number };
  return float16Feed(new Uint16Array(data.buffer, data.byteOffset, data.length), tensor.dims);
}

function emptyFloatTensor(dtype: FloatType, dims: number[]): ort.Tensor {
  if (dtype === 'float32') return new ort.Tensor('float32', new Float32Array(0), dims);
  return float16Feed(new Uint16Array(0), dims);
}

/** Feeds for `batch` rows of `seqLen` new tokens (row-major in `ids`) after `pastLength` cached ones. */
export function decoderFeeds(layout: DecoderLayout, ids: ArrayLike<number>, batch: number, seqLen: number, pastLength: number, past?: Map<string, ort.Tensor>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = { [layout.inputIds.name]: intTensor(layout.inputIds.dtype, ids, [batch, seqLen]) };
  if (layout.attentionMask) {
    feeds[layout.attentionMask.name] = intTensor(layout.attentionMask.dtype, new Array<number>(batch * (pastLength + seqLen)).fill(1), [batch, pastLength + seqLen]);
  }
  if (layout.positionIds) {
    const pos = new Array<number>(batch * seqLen);
    for (let b = 0; b < batch; b++) for (let t = 0; t < seqLen; t++) pos[b * seqLen + t] = pastLength + t;
    feeds[layout.positionIds.name] = intTensor(layout.positionIds.dtype, pos, [batch, seqLen]);
  }
  if (layout.useCacheBranch) feeds[layout.useCacheBranch] = new ort.Tensor('bool', Uint8Array.of(pastLength > 0 ? 1 : 0), [1]);
  for (const slot of layout.cache) {
    const given = past?.get(slot.past);
    feeds[slot.past] = given ?? emptyFloatTensor(slot.dtype, slot.dims.map((d) => (d === 'batch' ? batch : d === 'past' ? 0 : d)));
  }
  return feeds;
}

function rawLogits(tensor: ort.Tensor): RawLogits {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') {
    const data = tensor.data as unknown as ArrayBufferView & { length: number };
    return data instanceof Uint16Array ? data : new Uint16Array(data.buffer, data.byteOffset, data.length);
  }
  throw new WhittleError('UNSUPPORTED_MODEL', `The model's logits are ${tensor.type}; Whittle reads float32 or float16 logits.`);
}

function logitsAsFloat32(tensor: ort.Tensor): Float32Array {
  if (tensor.type === 'float32') return tensor.data as Float32Array;
  if (tensor.type === 'float16') return halfToFloat32(tensor.data as ArrayLike<number>);
  throw new WhittleError('UNSUPPORTED_MODEL', `The model's logits are ${tensor.type}; Whittle reads float32 or float16 logits.`);
}

export async function createSession(modelPath: string, threads = 0): Promise<ort.InferenceSession> {
  const file = path.resolve(modelPath);
  if (!existsSync(file)) throw new WhittleError('NOT_FOUND', `The model file ${file} does not exist.`, { path: file });
  if (statSync(file).isDirectory()) throw new WhittleError('INVALID_INPUT', `${file} is a folder; choose the .onnx file inside it.`, { path: file });
  const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', executionMode: 'sequential' };
  if (threads > 0) options.intraOpNumThreads = threads;
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    throw new WhittleError('MODEL_PARSE', `onnxruntime could not load ${path.basename(file)}: ${message.split('\n')[0]}`, { path: file, onnxruntime: message }, { cause: e });
  }
}

export async function openDecoder(modelPath: string, options: OpenDecoderOptions = {}): Promise<Decoder> {
  const file = path.resolve(modelPath);
  const threads = options.threads ?? 0;
  const session = await createSession(file, threads);
  let layout: DecoderLayout;
  try {
    layout = detectDecoderLayoutFromSession(session, file);
  } catch (e) {
    await session.release();
    throw e;
  }

  async function runRaw(feeds: Record<string, ort.Tensor>, batch: number, seqLen: number): Promise<{ tensor: ort.Tensor; outputs: ort.InferenceSession.OnnxValueMapType }> {
    let outputs;
    try {
      outputs = await session.run(feeds);
    } catch (e) {
      throw new WhittleError('UNSUPPORTED_MODEL', `onnxruntime failed to run ${path.basename(file)}: ${((e as Error).message ?? String(e)).split('\n')[0]}`, { path: file }, { cause: e });
    }
    const tensor = outputs[layout.logits.name] as ort.Tensor;
    const dims = tensor.dims;
    if (dims.length !== 3 || dims[0] !== batch || dims[1] !== seqLen) {
      throw unsupported(file, `its logits have shape [${dims.join(', ')}] for ${batch}×${seqLen} tokens; Whittle needs logits for every position`);
    }
    return { tensor, outputs };
  }

  async function run(feeds: Record<string, ort.Tensor>, batch: number, seqLen: number): Promise<{ logits: Float32Array; outputs: ort.InferenceSession.OnnxValueMapType }> {
    const { tensor, outputs } = await runRaw(feeds, batch, seqLen);
    return { logits: logitsAsFloat32(tensor), outputs };
  }

  const forward = async (ids: number[], state?: DecoderState): Promise<ForwardResult> => {
    if (ids.length === 0) throw new WhittleError('INTERNAL', 'forward needs at least one token.');
    if (layout.cache.length === 0) {
      // No cache: run everything so far and keep the logits of the new positions.
      const before = state?.tokens ?? [];
      const all = before.concat(ids);
      const { logits } = await run(decoderFeeds(layout, all, 1, all.length, 0), 1, all.length);
      const vocab = logits.length / all.length;
      return { logits: logits.slice(before.length * vocab), state: { pastLength: all.length, past: new Map(), tokens: all } };
    }
    const pastLength = state?.pastLength ?? 0;
    const { logits, outputs } = await run(decoderFeeds(layout, ids, 1, ids.length, pastLength, state?.past), 1, ids.length);
    const past = new Map<string, ort.Tensor>();
    for (const slot of layout.cache) past.set(slot.past, asFeed(outputs[slot.present] as ort.Tensor));
    return { logits, state: { pastLength: pastLength + ids.length, past, tokens: [] } };
  };

  /** Rows right-padded (with token 0) to the longest: ids [rows, seqLen] row-major. */
  const padded = (rows: number[][]): { ids: number[]; seqLen: number } => {
    const seqLen = Math.max(...rows.map((r) => r.length));
    if (rows.length === 0 || seqLen === 0) throw new WhittleError('INTERNAL', 'forwardBatch needs at least one token.');
    const ids = new Array<number>(rows.length * seqLen).fill(0);
    rows.forEach((row, b) => { for (let t = 0; t < row.length; t++) ids[b * seqLen + t] = row[t]; });
    return { ids, seqLen };
  };

  const forwardBatch = async (rows: number[][]): Promise<{ logits: Float32Array; seqLen: number }> => {
    const { ids, seqLen } = padded(rows);
    const { logits } = await run(decoderFeeds(layout, ids, rows.length, seqLen, 0), rows.length, seqLen);
    return { logits, seqLen };
  };

  const forwardBatchRaw = async (rows: number[][]): Promise<{ logits: RawLogits; seqLen: number }> => {
    const { ids, seqLen } = padded(rows);
    const { tensor } = await runRaw(decoderFeeds(layout, ids, rows.length, seqLen, 0), rows.length, seqLen);
    return { logits: rawLogits(tensor), seqLen };
  };

  // The vocabulary is the logits' last dimension; when the graph leaves it symbolic, one token tells.
  let vocabSize: number;
  const declared = (metaOf(session, 'output').find((m) => m.name === layout.logits.name)?.shape ?? []).at(-1);
  if (typeof declared === 'number' && declared > 0) {
    vocabSize = declared;
  } else {
    try {
      vocabSize = (await forward([0])).logits.length;
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  let rowCoupling: RowCoupling;
  try {
    rowCoupling = await rowCouplingOfFile(file);
  } catch (e) {
    await session.release();
    throw e;
  }

  return { path: file, layout, vocabSize, rowCoupling, threads, forward, forwardBatch, forwardBatchRaw, release: () => session.release() };
}
