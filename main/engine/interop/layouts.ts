/**
 * Output folder layouts, applied by the output-folder lifecycle (rewrite/write-folder.ts) once model.onnx,
 * its external data and the companions (tokenizer, config.json, genai_config.json) are in the folder.
 * model.onnx stays where every part of Whittle reads it; a layout adds what another runtime looks for:
 *
 *   plain            nothing
 *   transformers-js  onnx/model<suffix>.onnx (+ onnx/model<suffix>.onnx_data, a hard link to
 *                    model.onnx.data when the disk allows, else a copy), config.json with
 *                    `transformers.js_config` (dtype, use_external_data_format), generation_config.json,
 *                    tokenizer_config.json when the tokenizer came without one
 *   genai            genai_config.json (ONNX Runtime GenAI) when the source had none
 *
 * The suffix is the one @huggingface/transformers (4.x, utils/dtypes.js) maps each dtype to:
 * fp32 '', fp16 '_fp16', q8 '_quantized', q4 '_q4', q4f16 '_q4f16', q2 '_q2', int8 '_int8', uint8 '_uint8'.
 */
import { copyFile, link, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputLayout } from '../../../preload/recipe.ts';
import { loadTokenizer, type TextTokenizer } from '../data/tokenizer.ts';
import { WhittleError } from '../errors.ts';
import type { LogLevel } from '../job-context.ts';
import { DataType } from '../onnx/dtype.ts';
import { encodeModel, type ExternalPlacement } from '../onnx/encode.ts';
import { allNodes, attrInt } from '../onnx/graph.ts';
import type { ModelProto, TensorProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { copyPayload, COPY_CHUNK_BYTES, writeFully } from '../onnx/tensor-data.ts';
import { mapArchitecture, type ArchitectureMap } from '../rewrite/architecture.ts';
import { DATA_FILE, MODEL_FILE } from '../rewrite/output-folder.ts';
import { genaiConfig, huggingFaceConfig, modelFacts, type ModelFacts } from './layout-configs.ts';

/** The Transformers.js dtypes a Whittle output can have, with the file-name suffix that library looks for. */
export const TRANSFORMERS_JS_SUFFIX = { fp32: '', fp16: '_fp16', q8: '_quantized', q4: '_q4', q4f16: '_q4f16', q2: '_q2' } as const;
export type TransformersJsDtype = keyof typeof TRANSFORMERS_JS_SUFFIX;

/** What a layout added to the folder (paths relative to it), recorded in whittle.json. */
export interface AppliedLayout {
  layout: OutputLayout;
  /** Files the layout wrote, relative to the folder ('onnx/model_q4.onnx', 'config.json', …). */
  written: string[];
  /** transformers-js: the dtype Transformers.js loads by default, and the model file it opens. */
  dtype?: TransformersJsDtype;
  model?: string;
}

type Log = (level: LogLevel, text: string) => void;

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

async function readJson(file: string): Promise<Record<string, unknown> | null> {
  if (!(await exists(file))) return null;
  try {
    const v: unknown = JSON.parse(await readFile(file, 'utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The dtype Transformers.js names a model by, read from its graph: MatMulNBits gives q4 / q2 (q4f16 when
 * the logits are float16), 8-bit MatMulNBits or int8 ops (MatMulInteger, DynamicQuantizeLinear,
 * QLinearMatMul, DequantizeLinear of int8 weights) give q8, float16 logits give fp16, anything else fp32.
 */
export function transformersJsDtype(proto: ModelProto): TransformersJsDtype {
  const half = (proto.graph?.output ?? []).some((o) => o.type?.tensorType?.elemType === DataType.float16);
  let nbits: number | null = null;
  let int8 = false;
  for (const { node } of allNodes(proto)) {
    const op = node.opType ?? '';
    if (op === 'MatMulNBits') nbits = Math.min(nbits ?? 8, attrInt(node, 'bits', 4));
    else if (op === 'MatMulInteger' || op === 'DynamicQuantizeLinear' || op === 'QLinearMatMul' || op === 'DynamicQuantizeMatMul' || op === 'MatMulIntegerToFloat') int8 = true;
  }
  if (!int8 && nbits === null) {
    const int8Weights = new Set((proto.graph?.initializer ?? []).filter((t) => t.dataType === DataType.int8 || t.dataType === DataType.uint8).map((t) => t.name));
    for (const { node } of allNodes(proto)) {
      if (node.opType === 'DequantizeLinear' && int8Weights.has(node.input[0])) { int8 = true; break; }
    }
  }
  if (nbits !== null && nbits <= 2) return 'q2';
  if (nbits !== null && nbits <= 4) return half ? 'q4f16' : 'q4';
  if (nbits !== null || int8) return 'q8';
  return half ? 'fp16' : 'fp32';
}

/**
 * Writes `proto` (read from the folder's model.onnx) as `target`, its external tensors pointing at
 * `dataName` beside it at the offsets they have in model.onnx.data, so that file serves unchanged.
 * Inline tensors are copied into the new file.
 */
async function writeRelocated(proto: ModelProto, rootData: string, target: string, dataName: string): Promise<void> {
  const placement = (t: TensorProto): ExternalPlacement | null =>
    t.data?.kind === 'file' && path.resolve(t.data.path) === rootData ? { location: dataName, offset: t.data.offset, length: t.data.length } : null;
  const parts = encodeModel(proto, { placement }).finish();
  const chunk = new Uint8Array(COPY_CHUNK_BYTES);
  const fh = await open(target, 'wx');
  try {
    let at = 0;
    for (const p of parts) {
      if (p instanceof Uint8Array) {
        await writeFully(fh, p, at);
        at += p.length;
      } else {
        at += await copyPayload({ dims: [], stringData: [], externalData: [], metadataProps: [], data: p.source, name: p.name ?? '' }, fh, at, chunk);
      }
    }
  } finally {
    await fh.close();
  }
}

/** A second name for `from` (a hard link, no extra disk), or a copy where links are not possible. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function folderTokenizer(dir: string, layout: OutputLayout): Promise<TextTokenizer> {
  const file = path.join(dir, 'tokenizer.json');
  if (!(await exists(file))) {
    throw new WhittleError('INVALID_INPUT', `The ${layout} layout needs the model's tokenizer.json, and neither the model's folder nor the recipe gave one. Choose a tokenizer (--tokenizer, or the tokenizer field of the form) or write the plain layout.`, { layout });
  }
  return loadTokenizer(file);
}

/** The token strings of `ids` in a tokenizer.json (added tokens first, then the model's vocabulary). */
async function tokenStrings(file: string, ids: (number | null)[]): Promise<(string | null)[]> {
  const json = (await readJson(file)) ?? {};
  const byId = new Map<number, string>();
  for (const t of (json.added_tokens as { id: number; content: string }[] | undefined) ?? []) byId.set(t.id, t.content);
  const vocab = (json.model as { vocab?: unknown } | undefined)?.vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab as Record<string, number>)) if (!byId.has(id)) byId.set(id, token);
  }
  return ids.map((id) => (id === null ? null : byId.get(id) ?? null));
}

async function applyTransformersJs(dir: string, proto: ModelProto, facts: ModelFacts, tokenizer: TextTokenizer, log: Log): Promise<AppliedLayout> {
  const written: string[] = [];
  const dtype = transformersJsDtype(proto);
  const name = `model${TRANSFORMERS_JS_SUFFIX[dtype]}.onnx`;
  const dataName = `${name}_data`;
  const rootData = path.join(dir, DATA_FILE);
  const hasData = await exists(rootData);
  await mkdir(path.join(dir, 'onnx'));
  await writeRelocated(proto, rootData, path.join(dir, 'onnx', name), dataName);
  written.push(`onnx/${name}`);
  if (hasData) {
    await linkOrCopy(rootData, path.join(dir, 'onnx', dataName));
    written.push(`onnx/${dataName}`);
  }

  // config.json: the source's (kept as it is) or one made from the graph, with Transformers.js's own section.
  const configFile = path.join(dir, 'config.json');
  const source = await readJson(configFile);
  if (!source && (await exists(configFile))) log('warn', 'config.json is not valid JSON; a new one is written from the graph.');
  const config = source ?? huggingFaceConfig(facts);
  // The source's own section keeps what it says about devices; dtype and external data describe this file.
  const { use_external_data_format: _stale, ...own } = (typeof config['transformers.js_config'] === 'object' && config['transformers.js_config'] !== null ? config['transformers.js_config'] : {}) as Record<string, unknown>;
  config['transformers.js_config'] = { ...own, dtype, ...(hasData ? { use_external_data_format: { [name]: 1 } } : {}) };
  await writeJson(configFile, config);
  written.push('config.json');

  const generationFile = path.join(dir, 'generation_config.json');
  if (!(await exists(generationFile))) {
    await writeJson(generationFile, {
      ...(tokenizer.bosId !== null ? { bos_token_id: tokenizer.bosId } : {}),
      ...(tokenizer.eosId !== null ? { eos_token_id: tokenizer.eosId } : {}),
    });
    written.push('generation_config.json');
  }

  const tokenizerConfigFile = path.join(dir, 'tokenizer_config.json');
  if (!(await exists(tokenizerConfigFile))) {
    const [bos, eos] = await tokenStrings(path.join(dir, 'tokenizer.json'), [tokenizer.bosId, tokenizer.eosId]);
    await writeJson(tokenizerConfigFile, {
      tokenizer_class: 'PreTrainedTokenizerFast',
      ...(bos !== null ? { bos_token: bos } : {}),
      ...(eos !== null ? { eos_token: eos } : {}),
      add_bos_token: tokenizer.addBosByDefault,
    });
    written.push('tokenizer_config.json');
  }
  log('info', `transformers-js layout: onnx/${name} (dtype ${dtype})`);
  return { layout: 'transformers-js', written, dtype, model: `onnx/${name}` };
}

async function applyGenai(dir: string, facts: ModelFacts, tokenizer: TextTokenizer, log: Log): Promise<AppliedLayout> {
  const file = path.join(dir, 'genai_config.json');
  if (await exists(file)) {
    log('info', 'genai layout: the source\'s genai_config.json is kept (its decoder file name set to model.onnx).');
    return { layout: 'genai', written: [] };
  }
  await writeJson(file, genaiConfig(facts, tokenizer, MODEL_FILE));
  log('info', 'genai layout: genai_config.json written from the graph');
  return { layout: 'genai', written: ['genai_config.json'] };
}

function usable(map: ArchitectureMap): boolean {
  return map.family !== 'unknown' && map.blocks.length > 0 && map.blocks[0].attention.heads !== null;
}

/**
 * Gives the folder `dir` (model.onnx and companions already written) the files of `layout`. Throws
 * WhittleError (INVALID_INPUT, UNSUPPORTED_MODEL) when the model cannot be laid out so; the caller's
 * lifecycle then removes the partial folder. `sourceModel`: the model the folder was made from, whose
 * architecture map stands in when the output's own graph hides its blocks.
 */
export async function applyLayout(layout: OutputLayout, dir: string, log: Log, sourceModel?: string): Promise<AppliedLayout> {
  if (layout === 'plain') return { layout, written: [] };
  const tokenizer = await folderTokenizer(dir, layout);
  const model = await readModel(path.join(dir, MODEL_FILE));
  let mapped = model.proto;
  let map = mapArchitecture(model);
  if (!usable(map) && sourceModel) {
    // Quantized projections (MatMulNBits, …) hide the blocks from the map; the source's shapes are the same.
    const source = await readModel(sourceModel);
    const sourceMap = mapArchitecture(source);
    if (usable(sourceMap)) { map = sourceMap; mapped = source.proto; }
  }
  const facts = modelFacts(model.proto, mapped, map, await readJson(path.join(dir, 'config.json')), await readJson(path.join(dir, 'tokenizer_config.json')), tokenizer, layout);
  try {
    return layout === 'transformers-js' ? await applyTransformersJs(dir, model.proto, facts, tokenizer, log) : await applyGenai(dir, facts, tokenizer, log);
  } catch (e) {
    await rm(path.join(dir, 'onnx'), { recursive: true, force: true });
    throw e;
  }
}
