/**
 * Students built from a teacher (DistilBERT initialisation): keep a subset of the teacher's blocks, with
 * their weights copied, and drop the rest.
 *
 * Everything comes from the architecture map (rewrite/architecture.ts), never from names: a dropped block
 * is bypassed by routing the readers of its output to its residual input (each of its two residual joins
 * passes the stream on unchanged), after which its nodes and initializers are unread and swept. That is
 * structured pruning's block cut (prune/structured-apply.ts) with the blocks chosen by the user instead of
 * by importance. The student keeps the teacher's layout: the cache inputs and outputs of kept blocks only,
 * renumbered 0…n−1 (past_key_values.N.key / present.N.key, or the combined past_N / present_N), the same
 * opset and dtypes; genai_config.json / config.json beside it give the new block count and the tokenizer
 * files come along. The folder is written through the output-folder lifecycle (rewrite/write-folder.ts):
 * a failure leaves nothing at the target.
 *
 * A student the user brings is checked against the teacher (checkStudentCompatible): the same vocabulary
 * (logits width) and a decoder layout the training engine can feed.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadTokenizer } from '../data/tokenizer.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { countParameters } from '../model/parameters.ts';
import { encodeModel, payloadLength, type ExternalPlacement } from '../onnx/encode.ts';
import { allTensors, toNumber } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, OnnxModel, TensorProto, ValueInfoProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { EXTERNAL_ALIGNMENT } from '../onnx/writer.ts';
import { applyStructured, type StructuredApplyResult } from '../prune/structured-apply.ts';
import type { StructuredPlan } from '../prune/structured-plan.ts';
import { mapArchitecture, type ArchitectureMap } from '../rewrite/architecture.ts';
import { MANIFEST_FILE, updateManifest } from '../rewrite/manifest.ts';
import { DATA_FILE, listFiles } from '../rewrite/output-folder.ts';
import { TensorSpool } from '../rewrite/spool.ts';
import { WeightReader } from '../rewrite/weight-reader.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';

export interface StudentOptions extends OutputOptions {
  /** The step recorded in whittle.json (default: a distill step naming the kept blocks). */
  step?: unknown;
}

export interface StudentResult extends WrittenFolder {
  /** The teacher's blocks the student keeps, ascending (student block j is teacher block blocks[j]). */
  blocks: number[];
  /** The student's parameter count (model/parameters.ts). */
  params: number;
  teacherParams: number;
  /** Cache graph inputs/outputs of dropped blocks that went. */
  removedCache: string[];
  /** Config files beside the model that now give the student's block count. */
  configs: string[];
}

export interface StudentSize {
  /** Kept teacher blocks, ascending. */
  blocks: number[];
  params: number;
  /** Bytes of the student's model.onnx and model.onnx.data as the output folder writes them. */
  bytes: number;
  teacherParams: number;
  teacherBytes: number;
}

// ── choosing blocks ──────────────────────────────────────────────────────────────────────────────────

/** DistilBERT's choice: blocks 0, 2, 4, … of a teacher with `n` blocks (⌈n / 2⌉ of them). */
export function everyOtherBlock(n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new WhittleError('INVALID_INPUT', `A teacher needs at least one block to choose from; it has ${n}.`, { blocks: n });
  const out: number[] = [];
  for (let i = 0; i < n; i += 2) out.push(i);
  return out;
}

/** Checks a list of kept blocks against a teacher of `n` blocks; returns it ascending. */
export function checkBlockList(keep: readonly number[], n: number): number[] {
  if (keep.length === 0) throw new WhittleError('INVALID_INPUT', `The list of blocks to keep is empty; name at least one of the teacher's ${n} blocks (0–${n - 1}).`, { blocks: n });
  const bad = keep.filter((b) => !Number.isInteger(b) || b < 0 || b >= n);
  if (bad.length) {
    throw new WhittleError('INVALID_INPUT', `Block ${bad.join(', ')} is not one of the teacher's blocks: it has ${n} block${n === 1 ? '' : 's'}, numbered 0–${n - 1}.`, { blocks: n, invalid: bad });
  }
  const seen = new Set<number>();
  const dup = keep.filter((b) => (seen.has(b) ? true : (seen.add(b), false)));
  if (dup.length) throw new WhittleError('INVALID_INPUT', `Block ${[...new Set(dup)].join(', ')} is listed more than once; name each block to keep once.`, { duplicates: [...new Set(dup)] });
  return [...keep].sort((a, b) => a - b);
}

/** '0,2,4' (spaces allowed) → [0, 2, 4], checked against a teacher of `n` blocks. */
export function parseBlockList(text: string, n: number): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 1 && parts[0] === '') return checkBlockList([], n);
  const notNumbers = parts.filter((p) => !/^\d+$/.test(p));
  if (notNumbers.length) {
    throw new WhittleError('INVALID_INPUT', `'${text}' is not a list of block numbers: ${notNumbers.map((p) => `'${p}'`).join(', ')} ${notNumbers.length === 1 ? 'is' : 'are'} not a whole number. Write the blocks to keep as 0,2,4.`, { text });
  }
  return checkBlockList(parts.map(Number), n);
}

/** INVALID_INPUT, saying why, unless every block of the map can be bypassed. */
function checkMappable(map: ArchitectureMap, teacherPath: string): void {
  const bypassable = map.blocks.length > 0 && map.blocks.every((b) => b.residual.input && b.residual.attentionJoin && b.residual.mlpJoin && b.attention.o && b.mlp.down);
  if (map.family !== 'unknown' && bypassable) return;
  const why = map.issues.length ? map.issues.slice(0, 4).join('; ') : map.blocks.length ? 'the residual joins of some blocks were not found' : 'no transformer blocks were found';
  throw new WhittleError('INVALID_INPUT', `A student cannot be built from ${path.basename(teacherPath)} by keeping some of its blocks: its blocks could not be mapped (${why}). Bring a student model instead.`, { issues: map.issues });
}

function plan(map: ArchitectureMap, keep: number[]): StructuredPlan {
  const kept = new Set(keep);
  const layers = map.blocks.map((b) => b.index).filter((i) => !kept.has(i));
  return {
    target: 'layers', cuts: [], layers, layerParams: layers.map(() => 0), groupSize: 1, removedParameters: 0,
    lines: layers.map((i) => `block ${i}: dropped (not kept by the student)`),
  };
}

async function teacherModel(teacherPath: string): Promise<{ model: OnnxModel; map: ArchitectureMap; source: string }> {
  const source = path.resolve(teacherPath);
  const model = await readModel(source);
  if (!model.proto.graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);
  return { model, map: mapArchitecture(model), source };
}

async function modelBytes(model: OnnxModel): Promise<number> {
  const sizes = await Promise.all(model.externalDataFiles.map(async (f) => (await stat(f)).size));
  return model.fileBytes + sizes.reduce((a, b) => a + b, 0);
}

/** Tensors of this many bytes or more go to model.onnx.data (as write-folder.ts writes the model). */
const WRITE_THRESHOLD = 1024;

/**
 * Bytes of model.onnx + model.onnx.data for `proto` as the output folder writes it (onnx/writer.ts:
 * tensors of WRITE_THRESHOLD bytes or more external, each at a 4096-aligned offset), without writing.
 */
function writtenBytes(proto: ModelProto): number {
  const placed = new Map<TensorProto, ExternalPlacement>();
  let cursor = 0;
  for (const t of allTensors(proto)) {
    const length = payloadLength(t);
    if (!t.data || placed.has(t) || length < WRITE_THRESHOLD) continue;
    const offset = Math.ceil(cursor / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    placed.set(t, { location: DATA_FILE, offset, length });
    cursor = offset + length;
  }
  return encodeModel(proto, { placement: (t) => placed.get(t) ?? null }).size + cursor;
}

/**
 * The student's size before it is built: its kept blocks, parameter count and model file bytes, from
 * the same surgery done in memory (no tensor is read, nothing is written).
 */
export async function describeStudent(teacherPath: string, keep: readonly number[]): Promise<StudentSize> {
  const { model, map, source } = await teacherModel(teacherPath);
  checkMappable(map, source);
  const blocks = checkBlockList(keep, map.blocks.length);
  const teacherParams = countParameters(model.proto).parameters;
  const teacherBytes = await modelBytes(model);
  // The block cut reads no tensor and writes none: the reader and spool stay unused.
  const reader = new WeightReader();
  try {
    await applyStructured(model.proto, map, plan(map, blocks), { reader, spool: new TensorSpool(path.join(os.tmpdir(), 'whittle-student-unused.tmp')) });
  } finally {
    await reader.close();
  }
  return { blocks, params: countParameters(model.proto).parameters, bytes: writtenBytes(model.proto), teacherParams, teacherBytes };
}

// ── config files ─────────────────────────────────────────────────────────────────────────────────────

const LAYER_KEYS = ['num_hidden_layers', 'n_layer', 'num_layers', 'n_layers'];

/**
 * Sets the block count in genai_config.json (model.decoder.num_hidden_layers) and config.json (its
 * top-level layer count, and under `model` where a config nests it) in `dir`; returns the files changed.
 * Only keys already present are changed; a file that is not JSON is left alone.
 */
export async function setConfigLayers(dir: string, layers: number): Promise<string[]> {
  const changed: string[] = [];
  const setIn = (o: unknown): boolean => {
    if (!o || typeof o !== 'object') return false;
    const rec = o as Record<string, unknown>;
    let any = false;
    for (const k of LAYER_KEYS) if (typeof rec[k] === 'number') { rec[k] = layers; any = true; }
    return any;
  };
  const edit = async (file: string, apply: (json: Record<string, unknown>) => boolean): Promise<void> => {
    let json: Record<string, unknown>;
    try { json = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Record<string, unknown>; } catch { return; }
    if (!apply(json)) return;
    await writeFile(path.join(dir, file), `${JSON.stringify(json, null, 4)}\n`);
    changed.push(file);
  };
  await edit('genai_config.json', (j) => setIn((j.model as Record<string, unknown> | undefined)?.decoder));
  await edit('config.json', (j) => [setIn(j), setIn(j.model), setIn(j.text_config)].some((x) => x));
  return changed;
}

// ── writing the student ──────────────────────────────────────────────────────────────────────────────

/**
 * Writes the student keeping the teacher's blocks `keep` (any order; the student keeps them in the
 * teacher's order) to `outDir`: model.onnx (+ data), companions, updated configs, whittle.json. Every
 * check runs before any work; nothing is left at `outDir` unless the whole write succeeds.
 */
export async function writeStudentByBlocks(teacherPath: string, keep: readonly number[], outDir: string, ctx: JobContext, options: StudentOptions = {}): Promise<StudentResult> {
  const { model, map, source } = await teacherModel(teacherPath);
  checkMappable(map, source);
  const blocks = checkBlockList(keep, map.blocks.length);
  const teacherParams = countParameters(model.proto).parameters;
  const p = plan(map, blocks);
  ctx.log('info', `student: keeps block${blocks.length === 1 ? '' : 's'} ${blocks.join(', ')} of the teacher's ${map.blocks.length}`);
  const written = await writeOutputFolder<{ applied: StructuredApplyResult; params: number }>(model, outDir, ctx, {
    step: options.step ?? { type: 'distill', student: { kind: 'blocks', blocks } },
    options: { ...options, deliver: 'partial' },
    rewrite: async (m, scope) => {
      const applied = await applyStructured(m.proto, map, p, scope);
      throwIfAborted(ctx.signal);
      return { applied, params: countParameters(m.proto).parameters };
    },
    manifest: (r) => ({
      weights: [],
      extra: { student: { teacherBlocks: map.blocks.length, keptBlocks: blocks, droppedBlocks: r.applied.removedBlocks, teacherParams, params: r.params } },
    }),
  });
  const pending = written.pending!;
  try {
    const configs = await setConfigLayers(pending.dir, blocks.length);
    const files = (await listFiles(pending.dir)).filter((f) => f.name !== MANIFEST_FILE);
    const bytes = files.reduce((a, f) => a + f.bytes, 0);
    await updateManifest(pending.dir, { output: { bytes, files } });
    throwIfAborted(ctx.signal);
    const result = {
      blocks, params: written.result.params, teacherParams, removedCache: written.result.applied.removedCache, configs, files, bytes,
    };
    if (options.deliver === 'partial') return { ...result, outDir: pending.dir, modelPath: written.modelPath, pending };
    const finalDir = await pending.commit();
    return { ...result, outDir: finalDir, modelPath: path.join(finalDir, path.basename(written.modelPath)) };
  } catch (e) {
    await pending.discard();
    throw e;
  }
}

// ── a student the user brings ────────────────────────────────────────────────────────────────────────

/** Inputs the training engine knows how to feed (train/view.ts). */
const FEEDABLE = /^(input_ids|attention_mask|position_ids|use_cache_branch)$|^past/i;

export interface StudentCheck {
  /** Logits width shared by teacher and student. */
  vocab: number;
  teacherBlocks: number;
  studentBlocks: number;
}

function dimsOf(v: ValueInfoProto): (number | string | undefined)[] {
  return v.type?.tensorType?.shape?.dim.map((d) => (d.dimValue !== undefined ? toNumber(d.dimValue) : d.dimParam)) ?? [];
}

/** The logits width: the logits output's last axis when fixed, else the LM head's output features. */
function logitsWidth(graph: GraphProto, map: ArchitectureMap): number | null {
  const logits = graph.output.find((o) => o.name === 'logits')
    ?? (() => { const c = graph.output.filter((o) => !/^present/i.test(o.name ?? '') && dimsOf(o).length === 3); return c.length === 1 ? c[0] : undefined; })();
  const last = logits ? dimsOf(logits).at(-1) : undefined;
  if (typeof last === 'number' && last > 0) return last;
  if (!map.lmHead) return null;
  const t = graph.initializer.find((x) => x.name === map.lmHead);
  if (!t || t.dims.length !== 2) return null;
  const [r, c] = t.dims.map((d) => toNumber(d));
  // Tied LM head: the embedding table [vocab, dim]; a MatMul weight is [dim, vocab].
  return map.tiedEmbedding ? r : c;
}

/** Why the engine could not train `graph` as a decoder, or null when it can. */
function untrainable(graph: GraphProto, map: ArchitectureMap): string | null {
  const inits = new Set(graph.initializer.map((t) => t.name));
  const inputs = graph.input.filter((v) => !inits.has(v.name));
  if (!inputs.some((v) => v.name === 'input_ids')) return `it takes no input_ids (its inputs: ${inputs.map((v) => v.name).join(', ')})`;
  const unknown = inputs.filter((v) => !FEEDABLE.test(v.name ?? ''));
  if (unknown.length) return `it needs input${unknown.length > 1 ? 's' : ''} the training engine cannot feed: ${unknown.map((v) => v.name).join(', ')}`;
  if (map.family === 'bert') return 'it is an encoder (no causal attention, no LM head), not a decoder';
  if (map.blocks.length === 0) return `its transformer blocks were not found (${map.issues.slice(0, 3).join('; ') || 'no attention'})`;
  return null;
}

/**
 * Checks that a student the user brings can learn from `teacherPath`: a decoder the engine can train,
 * with the teacher's vocabulary (logits width), and, given the tokenizer, one whose ids fit both.
 * INVALID_INPUT (or UNSUPPORTED_MODEL for a student the engine cannot train) says what differs.
 */
export async function checkStudentCompatible(teacherPath: string, studentPath: string, tokenizer?: string): Promise<StudentCheck> {
  const [teacher, student] = await Promise.all([readModel(path.resolve(teacherPath)), readModel(path.resolve(studentPath))]);
  const tg = teacher.proto.graph, sg = student.proto.graph;
  if (!tg) throw new WhittleError('MODEL_PARSE', `The teacher ${teacherPath} has no graph.`);
  if (!sg) throw new WhittleError('MODEL_PARSE', `The student ${studentPath} has no graph.`);
  const tmap = mapArchitecture(teacher), smap = mapArchitecture(student);
  const sWhy = untrainable(sg, smap);
  if (sWhy) throw new WhittleError('UNSUPPORTED_MODEL', `The student ${path.basename(studentPath)} cannot be trained by Whittle: ${sWhy}. Bring a decoder language model (input_ids → logits, optionally with a KV cache).`, { path: studentPath });
  const tWhy = untrainable(tg, tmap);
  if (tWhy) throw new WhittleError('UNSUPPORTED_MODEL', `The teacher ${path.basename(teacherPath)} cannot be run as a decoder teacher: ${tWhy}.`, { path: teacherPath });
  const tv = logitsWidth(tg, tmap), sv = logitsWidth(sg, smap);
  if (tv === null) throw new WhittleError('UNSUPPORTED_MODEL', `The teacher's vocabulary size could not be read: its logits output has no fixed width and no LM head was found.`, { path: teacherPath });
  if (sv === null) throw new WhittleError('UNSUPPORTED_MODEL', `The student's vocabulary size could not be read: its logits output has no fixed width and no LM head was found.`, { path: studentPath });
  if (tv !== sv) {
    throw new WhittleError('INVALID_INPUT', `The student's vocabulary (${sv} logits) differs from the teacher's (${tv}): distillation compares them token by token, so both must use the same tokenizer. Bring a student built for the teacher's tokenizer.`, { teacherVocab: tv, studentVocab: sv });
  }
  if (tokenizer) {
    const tok = await loadTokenizer(path.resolve(tokenizer));
    if (tok.vocabSize > tv) {
      throw new WhittleError('INVALID_INPUT', `The tokenizer ${path.basename(tokenizer)} has ${tok.vocabSize} tokens but the models score only ${tv}: it is not their tokenizer. Use the teacher's tokenizer.json.`, { tokenizerVocab: tok.vocabSize, vocab: tv });
    }
  }
  return { vocab: tv, teacherBlocks: tmap.blocks.length, studentBlocks: smap.blocks.length };
}
