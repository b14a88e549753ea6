/**
 * What kind of graph a model is, and for decoders the exact names needed to feed it with onnxruntime.
 *
 * Layouts recognised (detected from names, shapes and ops, never assumed):
 * - 'decoder': input_ids [batch, seq] (+ attention_mask, position_ids) → logits [batch, seq, vocab];
 * - 'decoder-hf-cache': plus past_key_values.N.key/value [batch, kv_heads, past, head_size] →
 *   present.N.key/value (Hugging Face / optimum naming);
 * - 'decoder-genai-cache': past_N / present_N holding key and value together
 *   [2, batch, heads, past, head_size] (onnxruntime.transformers GPT-2), or any cache feeding a
 *   com.microsoft attention op (Attention, MultiHeadAttention, GroupQueryAttention: ORT GenAI builder);
 * - 'encoder': input_ids with token_type_ids, or outputs such as last_hidden_state / pooled or 2-D logits;
 * - 'decoder-unsupported-cache': a decoder with a `past*` input that is not a key/value cache of
 *   [batch, heads, past, head_size] or [2, batch, heads, past, head_size] (the convolution state
 *   past_conv.N [batch, channels, kernel] of hybrid models, a recurrent state, …). Nothing can feed it,
 *   so every job refuses such a model before any work (`unsupportedParts` names each input).
 */
import type { GraphKind, TensorInfo } from '../../../preload/contract.ts';
import { WhittleError } from '../errors.ts';
import { attrInt, getAttribute, producerMap, toNumber } from '../onnx/graph.ts';
import type { GraphProto, ModelProto, NodeProto, OnnxModel } from '../onnx/proto-types.ts';
import { graphInputs, graphOutputs, type Dim } from './tensor-info.ts';

export interface CacheTensor {
  name: string;
  layer: number;
  /** 'kv': key and value stacked on axis 0 (shape [2, batch, heads, seq, head_size]). */
  role: 'key' | 'value' | 'kv';
  dtype: string;
  shape: Dim[];
  batchAxis: number;
  /** The axis that grows with the sequence (past length for inputs, total length for outputs). */
  seqAxis: number;
}

export interface DecoderLayout {
  kind: 'decoder' | 'decoder-hf-cache' | 'decoder-genai-cache' | 'decoder-unsupported-cache';
  inputIds: TensorInfo;
  attentionMask: TensorInfo | null;
  positionIds: TensorInfo | null;
  logits: TensorInfo;
  /** Cache inputs in layer order (key before value). Empty for 'decoder'. */
  past: CacheTensor[];
  /** Cache outputs, in the same order as `past`. */
  present: CacheTensor[];
  /** Inputs not recognised above; a caller must feed these itself (or refuse the model). */
  otherInputs: TensorInfo[];
  /** One line per `past*` input that is not a key/value cache (empty when every cache is one). */
  unsupported: string[];
  layers?: number;
  kvHeads?: number;
  headSize?: number;
  vocabSize?: number;
}

const CONTRIB_ATTENTION = new Set(['Attention', 'MultiHeadAttention', 'GroupQueryAttention', 'DecoderMaskedMultiHeadAttention', 'DecoderMaskedSelfAttention', 'PackedMultiHeadAttention', 'SparseAttention']);

interface CacheMatch { layer: number; role: CacheTensor['role'] }

/** Recognised cache names: past_key_values.N.key, past.N.value, past_key_values_N_key, past_N, … */
export function matchCacheName(name: string, io: 'past' | 'present'): CacheMatch | null {
  const prefix = io === 'past' ? '(?:past_key_values|past_key_value|past)' : '(?:present_key_values|present)';
  let m = new RegExp(`^${prefix}[._](\\d+)[._](key|value)$`).exec(name);
  if (m) return { layer: Number(m[1]), role: m[2] as 'key' | 'value' };
  m = new RegExp(`^${io}[._](key|value)[._](\\d+)$`).exec(name);
  if (m) return { layer: Number(m[2]), role: m[1] as 'key' | 'value' };
  m = new RegExp(`^${io}[._](\\d+)$`).exec(name);
  if (m) return { layer: Number(m[1]), role: 'kv' };
  return null;
}

function axesFor(shape: Dim[], role: CacheTensor['role']): { batchAxis: number; seqAxis: number } {
  const byName = (re: RegExp): number => shape.findIndex((d) => typeof d === 'string' && re.test(d));
  const batch = byName(/batch/i);
  const seq = byName(/past|total|seq|len/i);
  const batchAxis = batch >= 0 ? batch : role === 'kv' ? 1 : 0;
  const seqAxis = seq >= 0 ? seq : role === 'kv' ? 3 : 2;
  return { batchAxis, seqAxis };
}

function cacheTensors(list: TensorInfo[], io: 'past' | 'present'): CacheTensor[] {
  const out: CacheTensor[] = [];
  for (const t of list) {
    const m = matchCacheName(t.name, io);
    if (!m) continue;
    out.push({ name: t.name, layer: m.layer, role: m.role, dtype: t.dtype, shape: t.shape, ...axesFor(t.shape, m.role) });
  }
  const roleOrder = { key: 0, value: 1, kv: 0 };
  return out.sort((a, b) => a.layer - b.layer || roleOrder[a.role] - roleOrder[b.role]);
}

const shapeText = (shape: readonly Dim[]): string => `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;

const KV_SHAPES = 'a key/value cache is [batch, heads, past, head_size] or [2, batch, heads, past, head_size]';

/**
 * The state inputs a decoder takes that are not key/value caches, one line each naming the input and its
 * shape: a `past*` input whose name is not a key/value cache name (past_conv.0, past_ssm_state.3, …), or
 * a key/value name with the wrong rank (past_key_values.0.key of 3 dimensions).
 */
function unsupportedCaches(inputs: TensorInfo[]): string[] {
  const lines: string[] = [];
  for (const t of inputs) {
    if (!/^past/i.test(t.name)) continue;
    const m = matchCacheName(t.name, 'past');
    const rank = t.shape.length;
    const dims = `${rank} dimension${rank === 1 ? '' : 's'}`;
    if (!m) lines.push(`input ${t.name} ${shapeText(t.shape)} (${dims}) is a state Whittle cannot feed: it is not a key/value cache (${KV_SHAPES})`);
    else if ((m.role === 'kv' ? 5 : 4) !== rank) lines.push(`input ${t.name} ${shapeText(t.shape)} has ${dims}, so it is not a key/value cache (${KV_SHAPES})`);
  }
  return lines;
}

function findInput(inputs: TensorInfo[], names: string[]): TensorInfo | null {
  for (const n of names) {
    const t = inputs.find((i) => i.name === n);
    if (t) return t;
  }
  return null;
}

function contribAttentionNodes(graph: GraphProto): NodeProto[] {
  return graph.node.filter((n) => n.domain === 'com.microsoft' && CONTRIB_ATTENTION.has(n.opType ?? ''));
}

/** Numeric last dim of logits, else the rows of the embedding table gathered by input_ids. */
function vocabSize(graph: GraphProto, logits: TensorInfo, inputIds: TensorInfo): number | undefined {
  const last = logits.shape[logits.shape.length - 1];
  if (typeof last === 'number') return last;
  const producers = producerMap(graph);
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  for (const n of graph.node) {
    if (n.opType !== 'Gather' || (n.domain ?? '') !== '') continue;
    let idx = n.input[1];
    const p = producers.get(idx);
    if (p && p.opType === 'Cast') idx = p.input[0];
    const table = inits.get(n.input[0]);
    if (idx === inputIds.name && table && table.dims.length === 2) return toNumber(table.dims[0]);
  }
  return undefined;
}

interface KindResult { kind: GraphKind; layout: DecoderLayout | null }

function analyse(proto: ModelProto): KindResult {
  const graph = proto.graph;
  if (!graph) return { kind: 'unknown', layout: null };
  const inputs = graphInputs(graph);
  const outputs = graphOutputs(graph);
  const inputIds = findInput(inputs, ['input_ids']) ?? inputs.find((i) => /input_ids$|^tokens?$/.test(i.name) && /int/.test(i.dtype)) ?? null;
  const tokenTypes = findInput(inputs, ['token_type_ids']);
  const logits = outputs.find((o) => o.name === 'logits') ?? null;
  const past = cacheTensors(inputs, 'past');
  const present = cacheTensors(outputs, 'present');

  const decoderLogits = logits && (logits.shape.length === 3 || (logits.shape.length === 0 && !tokenTypes));
  if (!inputIds || !logits || !decoderLogits || (tokenTypes && past.length === 0)) {
    const encoderOutputs = outputs.some((o) => /last_hidden_state|pooler_output|sentence_embedding|embeddings?$/.test(o.name))
      || (logits !== null && logits.shape.length === 2);
    const kind: GraphKind = inputIds && (tokenTypes || encoderOutputs) ? 'encoder' : 'unknown';
    return { kind, layout: null };
  }

  const attention = contribAttentionNodes(graph);
  const pastNames = new Set(past.map((p) => p.name));
  const contribWithPast = attention.some((n) => n.input.some((i) => pastNames.has(i)));
  const unsupported = unsupportedCaches(inputs);
  const kind: DecoderLayout['kind'] = unsupported.length > 0
    ? 'decoder-unsupported-cache'
    : past.length === 0
      ? 'decoder'
      : past.some((p) => p.role === 'kv') || contribWithPast ? 'decoder-genai-cache' : 'decoder-hf-cache';

  const attentionMask = findInput(inputs, ['attention_mask']);
  const positionIds = findInput(inputs, ['position_ids']);
  const known = new Set([inputIds.name, attentionMask?.name, positionIds?.name, ...pastNames]);
  const otherInputs = inputs.filter((i) => !known.has(i.name));

  const layout: DecoderLayout = { kind, inputIds, attentionMask, positionIds, logits, past, present, otherInputs, unsupported };

  // Facts: layers, kv heads, head size, vocabulary.
  if (past.length > 0) layout.layers = new Set(past.map((p) => p.layer)).size;
  else if (attention.length > 0) layout.layers = attention.length;
  const first = past[0];
  if (first) {
    const headsAxis = first.role === 'kv' ? 2 : 1;
    const heads = first.shape[headsAxis];
    const head = first.shape[first.shape.length - 1];
    if (typeof heads === 'number' && first.seqAxis !== headsAxis) layout.kvHeads = heads;
    if (typeof head === 'number') layout.headSize = head;
  }
  if (layout.kvHeads === undefined && attention.length > 0) {
    const a = attention[0];
    const kv = getAttribute(a, 'kv_num_heads') ? attrInt(a, 'kv_num_heads', 0) : attrInt(a, 'num_heads', 0);
    if (kv > 0) layout.kvHeads = kv;
  }
  const vocab = vocabSize(graph, logits, inputIds);
  if (vocab !== undefined) layout.vocabSize = vocab;
  return { kind, layout };
}

function protoOf(model: ModelProto | OnnxModel): ModelProto {
  return 'proto' in model ? model.proto : model;
}

export function detectGraphKind(model: ModelProto | OnnxModel): GraphKind {
  return analyse(protoOf(model)).kind;
}

/** What Whittle cannot run in this model's graph, one line each (empty when nothing stands in the way). */
export function unsupportedParts(model: ModelProto | OnnxModel): string[] {
  return analyse(protoOf(model)).layout?.unsupported ?? [];
}

/** The sentence for a model with parts Whittle cannot feed (from unsupportedParts). */
export function unsupportedMessage(parts: readonly string[]): string {
  return `Whittle cannot run this model: ${parts.join('; ')}. Whittle runs decoders whose only state is a key/value cache; `
    + 'export the model without this state (a plain transformer decoder), or use a model of another family.';
}

/**
 * Refuses (UNSUPPORTED_MODEL) a model with a state input that is not a key/value cache, naming each
 * such input and its shape. Jobs call this before any work.
 */
export function checkModelSupported(model: ModelProto | OnnxModel): void {
  const parts = unsupportedParts(model);
  if (parts.length > 0) throw new WhittleError('UNSUPPORTED_MODEL', unsupportedMessage(parts), { unsupported: parts });
}

/**
 * The names and shapes needed to run a decoder with onnxruntime. Throws UNSUPPORTED_MODEL when the
 * graph is not a decoder Whittle recognises, or has a state it cannot feed.
 */
export function detectDecoderLayout(model: ModelProto | OnnxModel): DecoderLayout {
  const { kind, layout } = analyse(protoOf(model));
  if (layout && layout.unsupported.length > 0) {
    throw new WhittleError('UNSUPPORTED_MODEL', unsupportedMessage(layout.unsupported), { kind, unsupported: layout.unsupported });
  }
  if (!layout) {
    const what = kind === 'encoder' ? 'an encoder (no next-token logits)' : 'not a language-model decoder Whittle recognises (it needs input_ids → logits [batch, sequence, vocabulary])';
    throw new WhittleError('UNSUPPORTED_MODEL', `This model is ${what}.`, { kind });
  }
  if (layout.past.length !== layout.present.length && layout.present.length > 0) {
    throw new WhittleError('UNSUPPORTED_MODEL', `The model has ${layout.past.length} cache inputs but ${layout.present.length} cache outputs; Whittle cannot pair them.`);
  }
  return layout;
}

/**
 * A concrete shape for a cache tensor: batch and sequence axes filled in, other symbolic dims from the
 * detected facts (kv heads, head size). `[batch, kvHeads, 0, headSize]` with pastLength 0 is the
 * empty cache of a fresh sequence.
 */
export function cacheShape(t: CacheTensor, layout: DecoderLayout, batch: number, seqLength: number): number[] {
  return t.shape.map((d, axis) => {
    if (axis === t.batchAxis) return batch;
    if (axis === t.seqAxis) return seqLength;
    if (typeof d === 'number') return d;
    if (t.role === 'kv' && axis === 0) return 2;
    if (axis === t.shape.length - 1 && layout.headSize !== undefined) return layout.headSize;
    if (layout.kvHeads !== undefined) return layout.kvHeads;
    throw new WhittleError('UNSUPPORTED_MODEL', `Cannot tell the size of dimension ${axis} ('${String(d)}') of cache tensor '${t.name}'.`);
  });
}
