/**
 * Importing a Hugging Face model folder (config.json + safetensors + tokenizer files) as an ONNX decoder,
 * without Python. Everything that can be wrong with the input is checked before the output folder is
 * created: config fields, every shard's header, every weight's name, shape and dtype, the tokenizer's
 * vocabulary against the config. Then the weights are converted one tensor at a time into model.onnx.data
 * (never a whole shard in memory), model.onnx is written beside it, the tokenizer and config files are
 * copied, and the folder appears under its final name only when complete.
 */
import { copyFile, open, readFile, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { throwIfAborted, WhittleError } from '../errors.ts';
import { encodeModel } from '../onnx/encode.ts';
import { DataType } from '../onnx/dtype.ts';
import type { GraphProto, ModelProto, TensorProto } from '../onnx/proto-types.ts';
import { writeFully } from '../onnx/tensor-data.ts';
import { EXTERNAL_ALIGNMENT } from '../onnx/writer.ts';
import { createPartialFolder, DATA_FILE, listFiles, MODEL_FILE } from '../rewrite/output-folder.ts';
import { convertTensor, type TargetDtype } from './convert.ts';
import { buildGpt2Graph } from './gpt2-graph.ts';
import { parseBertConfig, parseGpt2Config, parseLlamaConfig, SUPPORTED_MODEL_TYPES } from './hf-config.ts';
import { buildBertGraph } from './bert-graph.ts';
import { buildLlamaGraph, type DeclaredWeight } from './llama-graph.ts';
import { FLOAT_DTYPES, SafetensorsSet } from './safetensors.ts';
import { pathExists } from './path-exists.ts';

export const COPIED_FILES = ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'generation_config.json', 'special_tokens_map.json'];

/** Tensors a checkpoint may hold that the computation does not read. */
/** Rows of an untransposed tensor converted at a time: about this many source bytes. */
const CHUNK_BYTES = 16 << 20;

/** Rotary tables, GPT-2's causal-mask buffers, BERT's position-id buffer and pre-training heads (cls.*). */
const IGNORED_TENSORS = /(^|\.)rotary_emb\.inv_freq$|(^|\.)attn\.(masked_)?bias$|(^|\.)embeddings\.position_ids$|^cls\./;

export interface ImportOptions {
  dtype?: TargetDtype;
  /** Write past_key_values / present (default true). */
  cache?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: { phase: 'check' | 'weights' | 'write'; done: number; total: number; message?: string }) => void;
}

export interface ImportResult {
  outDir: string;
  modelPath: string;
  modelType: string;
  dtype: TargetDtype;
  cache: boolean;
  parameters: number;
  tiedEmbeddings: boolean;
  files: { name: string; bytes: number }[];
  bytes: number;
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new WhittleError('IO', `Cannot read ${file}: ${(e as Error).message}`, { path: file });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new WhittleError('INVALID_INPUT', `${file} is not a JSON object.`, { path: file });
  }
}

/** The number of token ids tokenizer.json defines (1 + the largest id in its vocabulary and added tokens). */
export function tokenizerIdCount(tok: Record<string, unknown>): { count: number; largest: { id: number; token: string } | null } {
  let largest: { id: number; token: string } | null = null;
  const see = (id: unknown, token: string): void => {
    if (typeof id === 'number' && (!largest || id > largest.id)) largest = { id, token };
  };
  const model = tok.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) vocab.forEach((entry, i) => see(i, Array.isArray(entry) ? String(entry[0]) : String(entry))); // Unigram: [[piece, score], …]
  else if (vocab && typeof vocab === 'object') for (const [token, id] of Object.entries(vocab)) see(id, token);
  for (const a of (tok.added_tokens as { id?: unknown; content?: unknown }[] | undefined) ?? []) see(a.id, String(a.content));
  const l = largest as { id: number; token: string } | null;
  return { count: l ? l.id + 1 : 0, largest: l };
}

interface Plan {
  config: { modelType: string };
  rawConfig: Record<string, unknown>;
  weights: DeclaredWeight[];
  proto: ModelProto;
  tied: boolean;
  parameters: number;
}

function sourceShape(w: DeclaredWeight): number[] {
  return w.transpose ? [...w.dims].reverse() : w.dims;
}

/** Writes each of the `cols` rows of `out` ([cols, n] elements of `width` bytes) at `at(c)`. */
async function writeColumns(fh: FileHandle, out: Uint8Array, cols: number, n: number, width: number, at: (c: number) => number): Promise<void> {
  for (let c = 0; c < cols; c++) await writeFully(fh, out.subarray(c * n * width, (c + 1) * n * width), at(c));
}

/** Every check on the input folder; nothing is written. */
async function plan(dir: string, set: SafetensorsSet, raw: Record<string, unknown>, opts: Required<Pick<ImportOptions, 'dtype' | 'cache'>>): Promise<Plan> {
  const hasHead = set.get('lm_head.weight') !== undefined;
  let config: { modelType: string; vocabSize: number };
  let tied: boolean;
  let built: { graph: GraphProto; weights: DeclaredWeight[] };
  if (raw.model_type === 'gpt2') {
    const c = parseGpt2Config(raw);
    // GPT2LMHeadModel saves 'transformer.h.0…'; the original checkpoints 'h.0…'.
    const prefix = set.get('transformer.wte.weight') ? 'transformer.' : '';
    tied = c.tiedEmbeddings || !hasHead;
    built = buildGpt2Graph(c, { ...opts, prefix }, tied);
    config = c;
  } else if (raw.model_type === 'bert') {
    const c = parseBertConfig(raw);
    const prefix = set.get('bert.embeddings.word_embeddings.weight') ? 'bert.' : '';
    const classifier = set.get('classifier.weight');
    const pooler = set.get(`${prefix}pooler.dense.weight`) !== undefined;
    tied = false;
    built = buildBertGraph(c, { dtype: opts.dtype, prefix, pooler, classes: pooler && classifier ? classifier.shape[0] : null });
    config = c;
  } else {
    const c = parseLlamaConfig(raw);
    tied = c.tiedEmbeddings || (c.tieUnstated && !hasHead);
    built = buildLlamaGraph(c, opts, tied);
    config = c;
  }
  const { graph, weights } = built;

  const problems: string[] = [];
  for (const w of weights) {
    const e = set.get(w.source);
    if (!e) { problems.push(`'${w.source}' is missing`); continue; }
    const want = sourceShape(w);
    if (e.shape.length !== want.length || e.shape.some((d, i) => d !== want[i])) problems.push(`'${w.source}' has shape [${e.shape.join(', ')}], config.json implies [${want.join(', ')}]`);
    if (!FLOAT_DTYPES.includes(e.dtype)) problems.push(`'${w.source}' is ${e.dtype} (Whittle imports F32, F16, BF16)`);
  }
  const used = new Set(weights.map((w) => w.source));
  const extra = [...set.tensors.keys()].filter((n) => !used.has(n) && !IGNORED_TENSORS.test(n) && !(tied && n === 'lm_head.weight'));
  if (extra.length) problems.push(`${extra.length} tensor${extra.length > 1 ? 's are' : ' is'} not part of a ${config.modelType} model as config.json describes it: ${extra.slice(0, 5).map((n) => `'${n}'`).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  if (problems.length) {
    throw new WhittleError('INVALID_INPUT', `The weights in ${dir} do not match config.json: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}.`, { path: dir, problems });
  }

  const tokPath = path.join(dir, 'tokenizer.json');
  if (await pathExists(tokPath)) {
    const { count, largest } = tokenizerIdCount(await readJson(tokPath));
    if (count > config.vocabSize) {
      throw new WhittleError('INVALID_INPUT', `tokenizer.json does not match config.json: the tokenizer has ids up to ${largest!.id} ('${largest!.token}'), ${count} in all, but vocab_size is ${config.vocabSize}, so the model has no logits or embeddings for ${count - config.vocabSize} of its tokens. Use the tokenizer that came with these weights.`, { path: tokPath, tokenizerIds: count, vocabSize: config.vocabSize });
    }
  }

  const parameters = weights.reduce((a, w) => a + w.dims.reduce((x, y) => x * y, 1), 0);
  const proto: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'whittle import',
    graph,
    metadataProps: [{ key: 'source_model_type', value: config.modelType }],
    trainingInfo: [],
    functions: [],
    configuration: [],
  };
  return { config, rawConfig: raw, weights, proto, tied, parameters };
}

/** Imports the Hugging Face folder `dir` into the new folder `outDir` (see the file header). */
export async function importHuggingFace(dir: string, outDir: string, options: ImportOptions = {}): Promise<ImportResult> {
  const source = path.resolve(dir);
  const dtype = options.dtype ?? 'fp32';
  const cache = options.cache ?? true;
  const progress = options.onProgress ?? (() => {});
  if (!(await pathExists(source))) throw new WhittleError('NOT_FOUND', `The folder ${source} does not exist.`, { path: source });
  if (!(await stat(source)).isDirectory()) throw new WhittleError('INVALID_INPUT', `${source} is a file; give the Hugging Face model folder (with config.json and the safetensors files).`, { path: source });
  const configPath = path.join(source, 'config.json');
  if (!(await pathExists(configPath))) {
    throw new WhittleError('INVALID_INPUT', `${source} has no config.json, so it is not a Hugging Face model folder. Give the folder that holds config.json, the *.safetensors weights and tokenizer.json.`, { path: source });
  }
  const raw = await readJson(configPath);
  const modelType = String(raw.model_type ?? '');
  if (!SUPPORTED_MODEL_TYPES.includes(modelType)) {
    throw new WhittleError('UNSUPPORTED_MODEL', `config.json: model_type '${modelType}' is not supported. Whittle imports ${SUPPORTED_MODEL_TYPES.join(', ')}.`, { field: 'model_type', value: modelType, supported: SUPPORTED_MODEL_TYPES });
  }
  progress({ phase: 'check', done: 0, total: 1 });
  const set = await SafetensorsSet.openFolder(source);
  try {
    const p = await plan(source, set, raw, { dtype, cache });
    throwIfAborted(options.signal);

    const partial = await createPartialFolder(outDir);
    try {
      const dataPath = path.join(partial.dir, DATA_FILE);
      const elem = dtype === 'fp16' ? DataType.float16 : DataType.float32;
      const width = dtype === 'fp16' ? 2 : 4;
      const total = p.weights.reduce((a, w) => a + w.dims.reduce((x, y) => x * y, 1) * width, 0);
      const placed = new Map<string, TensorProto>();
      const fh = await open(dataPath, 'wx');
      let cursor = 0;
      let writing: Promise<void> = Promise.resolve();
      try {
        for (const w of p.weights) {
          throwIfAborted(options.signal);
          if (placed.has(w.name)) continue;
          const e = set.get(w.source)!;
          const src = sourceShape(w);
          const rows = src.length === 2 ? src[0] : 1;
          const cols = src.length === 2 ? src[1] : src[0];
          const offset = Math.ceil(cursor / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
          // In runs of about CHUNK_BYTES of source rows, so no large tensor (an embedding, an untied LM head)
          // is ever held whole. A transposed run [n, cols] becomes [cols, n]: column c's n values go to
          // output row c at element c·rows + r.
          const rowBytes = e.length / rows;
          const step = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
          for (let r = 0; r < rows; r += step) {
            const n = Math.min(step, rows - r);
            const out = convertTensor(await set.readRange(e, r * rowBytes, n * rowBytes), e.dtype, dtype, n, cols, w.transpose);
            // One write in flight while the next run is read and converted.
            await writing;
            writing = !w.transpose ? writeFully(fh, out, offset + r * cols * width)
              : n === rows ? writeFully(fh, out, offset)
                : writeColumns(fh, out, cols, n, width, (c) => offset + (c * rows + r) * width);
          }
          const at = offset + rows * cols * width;
          cursor = at;
          const length = at - offset;
          placed.set(w.name, { name: w.name, dataType: elem, dims: w.dims, data: { kind: 'file', path: dataPath, offset, length }, stringData: [], externalData: [], metadataProps: [] });
          progress({ phase: 'weights', done: cursor, total, message: w.source });
        }
        await writing;
        await fh.datasync();
      } finally {
        await writing.catch(() => {});
        await fh.close();
      }
      p.proto.graph!.initializer.push(...placed.values());
      const writer = encodeModel(p.proto, {
        placement: (t) => (t.data?.kind === 'file' ? { location: DATA_FILE, offset: t.data.offset, length: t.data.length } : null),
      });
      const parts = writer.finish().map((part) => {
        if (part instanceof Uint8Array) return part;
        if (part.source.kind === 'bytes') return part.source.bytes;
        throw new WhittleError('INTERNAL', `Tensor '${part.name ?? ''}' was to be inline but its data is in a file.`);
      });
      progress({ phase: 'write', done: 0, total: 1, message: MODEL_FILE });
      const modelPath = path.join(partial.dir, MODEL_FILE);
      const mh = await open(modelPath, 'wx');
      try {
        await writeFully(mh, Buffer.concat(parts), 0);
        await mh.datasync();
      } finally {
        await mh.close();
      }
      for (const f of COPIED_FILES) {
        const from = path.join(source, f);
        if (await pathExists(from)) await copyFile(from, path.join(partial.dir, f));
      }
      throwIfAborted(options.signal);
      const files = await listFiles(partial.dir);
      const finalDir = await partial.commit();
      progress({ phase: 'write', done: 1, total: 1 });
      return {
        outDir: finalDir, modelPath: path.join(finalDir, MODEL_FILE), modelType: p.config.modelType, dtype, cache: cache && p.config.modelType !== 'bert',
        parameters: p.parameters, tiedEmbeddings: p.tied, files, bytes: files.reduce((a, f) => a + f.bytes, 0),
      };
    } catch (e) {
      await partial.discard();
      throw e;
    }
  } finally {
    await set.close();
  }
}
