/**
 * The configuration files the export layouts write when the source had none: a Hugging Face config.json
 * (what Transformers.js reads: model_type, sizes, head counts; the cache shape it feeds is
 * [batch, num_key_value_heads, past, head_dim]) and ONNX Runtime GenAI's genai_config.json. Both are made
 * from one set of facts read off the graph (the architecture map, the graph's inputs and outputs), the
 * source's config.json where it has one, and the tokenizer.
 */
import type { OutputLayout } from '../../../preload/recipe.ts';
import type { TextTokenizer } from '../data/tokenizer.ts';
import { WhittleError } from '../errors.ts';
import { findInitializer, toNumber } from '../onnx/graph.ts';
import type { ModelProto, ValueInfoProto } from '../onnx/proto-types.ts';
import type { ArchitectureFamily, ArchitectureMap } from '../rewrite/architecture.ts';

/** Cache names as printf-style patterns with %d for the layer ('past_key_values.%d.key'). */
export interface CacheNames {
  key: string | null;
  value: string | null;
  /** One tensor per layer holding key and value (GPT-2 exports of onnxruntime.transformers: 'past_%d'). */
  combined: string | null;
}

export interface ModelFacts {
  family: Exclude<ArchitectureFamily, 'unknown'>;
  /** config.json's model_type when the source had one, else the family. */
  modelType: string;
  layers: number;
  heads: number;
  kvHeads: number;
  headSize: number;
  hidden: number;
  vocab: number;
  intermediate: number | null;
  activation: string | null;
  tiedEmbedding: boolean;
  contextLength: number;
  inputs: { inputIds: string; attentionMask: string | null; positionIds: string | null; past: CacheNames };
  outputs: { logits: string; present: CacheNames };
}

const DEFAULT_CONTEXT = 2048;

function positive(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null;
}

/** The one pattern (first number → %d) that `layers` of `names` share and whose name contains `part`. */
function namePattern(names: readonly string[], layers: number, accept: (pattern: string) => boolean): string | null {
  const count = new Map<string, Set<number>>();
  for (const n of names) {
    const m = /\d+/.exec(n);
    if (!m) continue;
    const pattern = `${n.slice(0, m.index)}%d${n.slice(m.index + m[0].length)}`;
    if (!accept(pattern)) continue;
    const set = count.get(pattern) ?? new Set<number>();
    set.add(Number(m[0]));
    count.set(pattern, set);
  }
  for (const [pattern, layersSeen] of count) {
    if (layersSeen.size === layers && [...Array(layers).keys()].every((i) => layersSeen.has(i))) return pattern;
  }
  return null;
}

function cacheNames(values: readonly ValueInfoProto[], layers: number, prefix: RegExp): CacheNames {
  const names = values.map((v) => v.name ?? '').filter((n) => prefix.test(n));
  // Key or value by the last of the two words in the name: 'past_key_values.%d.value' holds values.
  const last = (p: string): string | undefined => /.*(key|value)/i.exec(p)?.[1].toLowerCase();
  const key = namePattern(names, layers, (p) => last(p) === 'key');
  const value = namePattern(names, layers, (p) => last(p) === 'value');
  const combined = key || value ? null : namePattern(names, layers, () => true);
  return { key, value, combined };
}

function lastDim(v: ValueInfoProto | undefined): number | null {
  const dims = v?.type?.tensorType?.shape?.dim ?? [];
  const d = dims[dims.length - 1];
  return d?.dimValue !== undefined ? positive(toNumber(d.dimValue)) : null;
}

function unsupported(layout: OutputLayout, why: string): WhittleError {
  return new WhittleError('UNSUPPORTED_MODEL', `The ${layout} layout cannot be written for this model: ${why}. Write the plain layout instead.`, { layout });
}

/**
 * What the configs need, from the graph `proto` (its inputs and outputs), the architecture map `map` of
 * `mapped` (the same graph, or its source where the rewrite hid the projections, e.g. MatMulNBits), the folder's config.json and
 * tokenizer_config.json (either may be null) and its tokenizer. Throws UNSUPPORTED_MODEL when the graph
 * is not a model family Whittle recognises or its head counts cannot be read.
 */
export function modelFacts(
  proto: ModelProto, mapped: ModelProto, map: ArchitectureMap, config: Record<string, unknown> | null, tokenizerConfig: Record<string, unknown> | null,
  tokenizer: TextTokenizer, layout: OutputLayout,
): ModelFacts {
  const graph = proto.graph;
  if (!graph || map.family === 'unknown' || map.blocks.length === 0) {
    throw unsupported(layout, `Whittle does not recognise its architecture (Llama, GPT-2 or BERT family)${map.issues.length > 0 ? ` — ${map.issues[0]}` : ''}`);
  }
  const first = map.blocks[0].attention;
  const heads = first.heads;
  if (heads === null) throw unsupported(layout, 'the number of attention heads cannot be read from the graph');
  const kvHeads = first.kvHeads ?? heads;
  const table = map.embedding ? findInitializer(graph, map.embedding) ?? (mapped.graph ? findInitializer(mapped.graph, map.embedding) : undefined) : undefined;
  const tableDims = table?.dims.map((d) => toNumber(d)) ?? [];
  const headSize = first.headSize ?? (tableDims.length === 2 ? tableDims[1] / heads : null);
  if (headSize === null || !Number.isInteger(headSize)) throw unsupported(layout, 'the attention head size cannot be read from the graph');
  const hidden = tableDims.length === 2 ? tableDims[1] : heads * headSize;
  const logits = graph.output[0];
  const vocab = lastDim(logits) ?? (tableDims.length === 2 ? tableDims[0] : tokenizer.vocabSize);

  const positionTable = map.otherEmbeddings.map((n) => findInitializer(graph, n) ?? (mapped.graph ? findInitializer(mapped.graph, n) : undefined)).find((t) => t && t.dims.length === 2);
  const contextLength = positive(config?.max_position_embeddings) ?? positive(config?.n_positions)
    ?? (positionTable ? positive(toNumber(positionTable.dims[0])) : null)
    ?? (positive(tokenizerConfig?.model_max_length) !== null && (tokenizerConfig?.model_max_length as number) <= 1_048_576 ? (tokenizerConfig?.model_max_length as number) : null)
    ?? DEFAULT_CONTEXT;
  const inputNames = graph.input.map((i) => i.name ?? '');
  const layers = map.blocks.length;
  return {
    family: map.family,
    modelType: typeof config?.model_type === 'string' ? config.model_type : map.family,
    layers,
    heads,
    kvHeads,
    headSize,
    hidden,
    vocab,
    intermediate: map.blocks[0].mlp.intermediate,
    activation: map.blocks[0].mlp.activation,
    tiedEmbedding: map.tiedEmbedding,
    contextLength,
    inputs: {
      inputIds: inputNames.find((n) => n === 'input_ids') ?? inputNames[0],
      attentionMask: inputNames.find((n) => n === 'attention_mask') ?? null,
      positionIds: inputNames.find((n) => n === 'position_ids') ?? null,
      past: cacheNames(graph.input, layers, /past/i),
    },
    outputs: { logits: logits?.name ?? 'logits', present: cacheNames(graph.output, layers, /present/i) },
  };
}

/** A Hugging Face config.json for a model whose source folder had none. */
export function huggingFaceConfig(f: ModelFacts): Record<string, unknown> {
  const cached = f.inputs.past.key !== null || f.inputs.past.combined !== null;
  if (f.family === 'gpt2') {
    return {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2',
      n_embd: f.hidden, n_head: f.heads, n_layer: f.layers, n_positions: f.contextLength, n_ctx: f.contextLength,
      ...(f.intermediate !== null ? { n_inner: f.intermediate } : {}), vocab_size: f.vocab, use_cache: cached,
    };
  }
  if (f.family === 'bert') {
    return {
      architectures: ['BertModel'], model_type: 'bert',
      hidden_size: f.hidden, num_attention_heads: f.heads, num_hidden_layers: f.layers,
      ...(f.intermediate !== null ? { intermediate_size: f.intermediate } : {}), vocab_size: f.vocab, max_position_embeddings: f.contextLength,
    };
  }
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama',
    hidden_size: f.hidden, num_attention_heads: f.heads, num_key_value_heads: f.kvHeads, head_dim: f.headSize, num_hidden_layers: f.layers,
    ...(f.intermediate !== null ? { intermediate_size: f.intermediate } : {}), vocab_size: f.vocab, max_position_embeddings: f.contextLength,
    hidden_act: f.activation ?? 'silu', tie_word_embeddings: f.tiedEmbedding, use_cache: cached,
  };
}

/** genai_config.json for `filename` (ONNX Runtime GenAI's decoder-only format; greedy search by default). */
export function genaiConfig(f: ModelFacts, tokenizer: Pick<TextTokenizer, 'bosId' | 'eosId'>, filename: string): Record<string, unknown> {
  if (f.family === 'bert') throw unsupported('genai', 'ONNX Runtime GenAI runs decoders and this is an encoder (BERT family)');
  const { past } = f.inputs;
  const { present } = f.outputs;
  const split = past.key !== null && past.value !== null && present.key !== null && present.value !== null;
  const combined = past.combined !== null && present.combined !== null;
  if (!split && !combined) {
    throw unsupported('genai', 'ONNX Runtime GenAI needs a decoder with a key/value cache (past_key_values.N.key / present.N.key inputs and outputs) and this graph has none');
  }
  const inputs: Record<string, string> = { input_ids: f.inputs.inputIds };
  if (f.inputs.attentionMask) inputs.attention_mask = f.inputs.attentionMask;
  if (f.inputs.positionIds) inputs.position_ids = f.inputs.positionIds;
  const outputs: Record<string, string> = { logits: f.outputs.logits };
  if (split) {
    Object.assign(inputs, { past_key_names: past.key, past_value_names: past.value });
    Object.assign(outputs, { present_key_names: present.key, present_value_names: present.value });
  } else {
    Object.assign(inputs, { past_names: past.combined });
    Object.assign(outputs, { present_names: present.combined });
  }
  const eos = tokenizer.eosId ?? 0;
  return {
    model: {
      bos_token_id: tokenizer.bosId ?? eos,
      context_length: f.contextLength,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename,
        head_size: f.headSize,
        hidden_size: f.hidden,
        inputs,
        outputs,
        num_attention_heads: f.heads,
        num_hidden_layers: f.layers,
        num_key_value_heads: f.kvHeads,
      },
      eos_token_id: eos,
      pad_token_id: eos,
      type: f.modelType,
      vocab_size: f.vocab,
    },
    search: {
      diversity_penalty: 0, do_sample: false, early_stopping: true, length_penalty: 1, max_length: f.contextLength, min_length: 0,
      no_repeat_ngram_size: 0, num_beams: 1, num_return_sequences: 1, past_present_share_buffer: false, repetition_penalty: 1,
      temperature: 1, top_k: 1, top_p: 1,
    },
  };
}
