/**
 * A Hugging Face config.json, read into the settings the importer builds from. Every field that changes
 * the computation is either understood or refused by name: an import never silently computes something
 * other than what Transformers would.
 */
import { WhittleError } from '../errors.ts';

export const LLAMA_FAMILY = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export const SUPPORTED_MODEL_TYPES: readonly string[] = [...LLAMA_FAMILY, 'gpt2', 'bert'];

export type RopeScaling =
  | { type: 'none' }
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface LlamaConfig {
  modelType: (typeof LLAMA_FAMILY)[number];
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tiedEmbeddings: boolean;
  /** config.json does not say (the importer then ties when the folder has no lm_head.weight). */
  tieUnstated: boolean;
  /** q/k/v projections carry biases (qwen2 always; llama/qwen3 with attention_bias). */
  qkvBias: boolean;
  /** o projection carries a bias (attention_bias in llama/qwen3). */
  oBias: boolean;
  /** qwen3: RMSNorm over each head of q and k before the rotation. */
  qkNorm: boolean;
  /** Keys further back than this many positions are masked (Mistral's sliding window), or null. */
  slidingWindow: number | null;
  maxPositions: number;
}

function unsupported(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('UNSUPPORTED_MODEL', message, details);
}

function int(cfg: Record<string, unknown>, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new WhittleError('INVALID_INPUT', `config.json: ${key} is ${JSON.stringify(cfg[key])}, expected a positive integer.`, { field: key });
  return v;
}

function num(cfg: Record<string, unknown>, key: string, fallback: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new WhittleError('INVALID_INPUT', `config.json: ${key} is ${JSON.stringify(cfg[key])}, expected a number.`, { field: key });
  return v;
}

function ropeScaling(cfg: Record<string, unknown>): RopeScaling {
  const rs = cfg.rope_scaling;
  if (rs === undefined || rs === null) return { type: 'none' };
  if (typeof rs !== 'object') throw new WhittleError('INVALID_INPUT', `config.json: rope_scaling is ${JSON.stringify(rs)}, expected an object or null.`, { field: 'rope_scaling' });
  const r = rs as Record<string, unknown>;
  const type = String(r.rope_type ?? r.type ?? 'default');
  const factor = typeof r.factor === 'number' ? r.factor : 1;
  if (type === 'default') return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor };
  if (type === 'llama3') {
    return {
      type: 'llama3', factor,
      lowFreqFactor: num(r, 'low_freq_factor', 1), highFreqFactor: num(r, 'high_freq_factor', 4),
      originalMaxPositions: int(r, 'original_max_position_embeddings', 8192),
    };
  }
  throw unsupported(`config.json: rope_scaling type '${type}' is not supported. Whittle imports rope_scaling none, 'linear' and 'llama3'.`, { field: 'rope_scaling', value: type });
}

/** Reads and checks config.json's fields for the Llama family (llama, mistral, qwen2, qwen3). */
export function parseLlamaConfig(cfg: Record<string, unknown>): LlamaConfig {
  const modelType = String(cfg.model_type ?? '');
  if (!(LLAMA_FAMILY as readonly string[]).includes(modelType)) {
    throw unsupported(`config.json: model_type '${modelType}' is not supported. Whittle imports ${SUPPORTED_MODEL_TYPES.join(', ')}.`, { field: 'model_type', value: modelType, supported: SUPPORTED_MODEL_TYPES });
  }
  const refused: string[] = [];
  const act = cfg.hidden_act ?? cfg.hidden_activation ?? 'silu';
  if (act !== 'silu') refused.push(`hidden_act '${String(act)}' (only 'silu')`);
  if (cfg.mlp_bias === true) refused.push('mlp_bias true');
  if (cfg.partial_rotary_factor !== undefined && cfg.partial_rotary_factor !== 1) refused.push(`partial_rotary_factor ${String(cfg.partial_rotary_factor)}`);
  if (cfg.pretraining_tp !== undefined && cfg.pretraining_tp !== 1) refused.push(`pretraining_tp ${String(cfg.pretraining_tp)}`);
  if (cfg.quantization_config !== undefined) refused.push('quantization_config (a quantized checkpoint; import the float weights)');
  if (modelType === 'qwen2' || modelType === 'qwen3') {
    const maxWindowLayers = cfg.max_window_layers;
    if (cfg.use_sliding_window === true && (typeof maxWindowLayers !== 'number' || maxWindowLayers < int(cfg, 'num_hidden_layers'))) refused.push('use_sliding_window true with max_window_layers below num_hidden_layers (a window on some layers only)');
  }
  if (refused.length) {
    throw unsupported(`config.json has settings Whittle cannot import: ${refused.join('; ')}.`, { fields: refused });
  }

  const hiddenSize = int(cfg, 'hidden_size');
  const heads = int(cfg, 'num_attention_heads');
  const kvHeads = int(cfg, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0) throw new WhittleError('INVALID_INPUT', `config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}.`);
  const headDim = cfg.head_dim === undefined || cfg.head_dim === null ? hiddenSize / heads : int(cfg, 'head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new WhittleError('INVALID_INPUT', `config.json: the head size ${headDim} (hidden_size / num_attention_heads) must be an even integer.`);

  let slidingWindow: number | null = null;
  const maxPositions = int(cfg, 'max_position_embeddings', 2048);
  const sw = cfg.sliding_window;
  const windowOn = modelType === 'mistral' ? true : cfg.use_sliding_window === true;
  if (windowOn && typeof sw === 'number' && sw > 0 && sw < maxPositions) slidingWindow = sw;

  return {
    modelType: modelType as LlamaConfig['modelType'],
    hiddenSize,
    intermediateSize: int(cfg, 'intermediate_size'),
    layers: int(cfg, 'num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    vocabSize: int(cfg, 'vocab_size'),
    rmsNormEps: num(cfg, 'rms_norm_eps', 1e-6),
    ropeTheta: num(cfg, 'rope_theta', 10000),
    ropeScaling: ropeScaling(cfg),
    tiedEmbeddings: cfg.tie_word_embeddings === true,
    tieUnstated: cfg.tie_word_embeddings === undefined,
    qkvBias: modelType === 'qwen2' || cfg.attention_bias === true,
    oBias: modelType !== 'qwen2' && cfg.attention_bias === true,
    qkNorm: modelType === 'qwen3',
    slidingWindow,
    maxPositions,
  };
}

/**
 * Rotary inverse frequencies [headDim / 2]: θ^(−2i/d), then scaled as rope_scaling says
 * (linear: ÷ factor; llama3: low frequencies ÷ factor, high ones kept, a smooth blend between).
 */
export function ropeInverseFrequencies(c: LlamaConfig): Float32Array {
  const half = c.headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
    const s = c.ropeScaling;
    if (s.type === 'linear') f /= s.factor;
    else if (s.type === 'llama3') {
      const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositions / s.highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) f /= s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - smooth) * (f / s.factor) + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}

export interface Gpt2Config {
  modelType: 'gpt2';
  hiddenSize: number;
  layers: number;
  heads: number;
  inner: number;
  vocabSize: number;
  positions: number;
  layerNormEps: number;
  /** gelu_new / gelu_pytorch_tanh: the tanh approximation; gelu: the exact erf form. */
  activation: 'gelu_tanh' | 'gelu';
  tiedEmbeddings: boolean;
}

/** Reads and checks config.json's fields for GPT-2. */
export function parseGpt2Config(cfg: Record<string, unknown>): Gpt2Config {
  const refused: string[] = [];
  const act = String(cfg.activation_function ?? 'gelu_new');
  if (!['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'gelu'].includes(act)) refused.push(`activation_function '${act}' (gelu_new, gelu_pytorch_tanh, gelu_fast or gelu)`);
  if (cfg.scale_attn_by_inverse_layer_idx === true) refused.push('scale_attn_by_inverse_layer_idx true');
  if (cfg.scale_attn_weights === false) refused.push('scale_attn_weights false');
  if (cfg.add_cross_attention === true) refused.push('add_cross_attention true');
  if (cfg.quantization_config !== undefined) refused.push('quantization_config (a quantized checkpoint; import the float weights)');
  if (refused.length) throw unsupported(`config.json has settings Whittle cannot import: ${refused.join('; ')}.`, { fields: refused });
  const hiddenSize = int(cfg, 'n_embd');
  const heads = int(cfg, 'n_head');
  if (hiddenSize % heads !== 0) throw new WhittleError('INVALID_INPUT', `config.json: n_embd ${hiddenSize} is not a multiple of n_head ${heads}.`);
  return {
    modelType: 'gpt2',
    hiddenSize,
    layers: int(cfg, 'n_layer'),
    heads,
    inner: cfg.n_inner === undefined || cfg.n_inner === null ? 4 * hiddenSize : int(cfg, 'n_inner'),
    vocabSize: int(cfg, 'vocab_size'),
    positions: int(cfg, 'n_positions', 1024),
    layerNormEps: num(cfg, 'layer_norm_epsilon', 1e-5),
    activation: act === 'gelu' ? 'gelu' : 'gelu_tanh',
    tiedEmbeddings: cfg.tie_word_embeddings !== false,
  };
}

export interface BertConfig {
  modelType: 'bert';
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediateSize: number;
  vocabSize: number;
  positions: number;
  typeVocabSize: number;
  layerNormEps: number;
  activation: 'gelu_tanh' | 'gelu';
}

/** Reads and checks config.json's fields for a BERT-style encoder. */
export function parseBertConfig(cfg: Record<string, unknown>): BertConfig {
  const refused: string[] = [];
  const act = String(cfg.hidden_act ?? 'gelu');
  if (!['gelu', 'gelu_new', 'gelu_pytorch_tanh'].includes(act)) refused.push(`hidden_act '${act}' (gelu, gelu_new or gelu_pytorch_tanh)`);
  const pos = cfg.position_embedding_type ?? 'absolute';
  if (pos !== 'absolute') refused.push(`position_embedding_type '${String(pos)}' (only 'absolute')`);
  if (cfg.is_decoder === true) refused.push('is_decoder true');
  if (cfg.quantization_config !== undefined) refused.push('quantization_config (a quantized checkpoint; import the float weights)');
  if (refused.length) throw unsupported(`config.json has settings Whittle cannot import: ${refused.join('; ')}.`, { fields: refused });
  const hiddenSize = int(cfg, 'hidden_size');
  const heads = int(cfg, 'num_attention_heads');
  if (hiddenSize % heads !== 0) throw new WhittleError('INVALID_INPUT', `config.json: hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${heads}.`);
  return {
    modelType: 'bert', hiddenSize, heads,
    layers: int(cfg, 'num_hidden_layers'),
    intermediateSize: int(cfg, 'intermediate_size'),
    vocabSize: int(cfg, 'vocab_size'),
    positions: int(cfg, 'max_position_embeddings', 512),
    typeVocabSize: int(cfg, 'type_vocab_size', 2),
    layerNormEps: num(cfg, 'layer_norm_eps', 1e-12),
    activation: act === 'gelu' ? 'gelu' : 'gelu_tanh',
  };
}
