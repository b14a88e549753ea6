/**
 * A llama2.c checkpoint written as a Hugging Face Llama folder, the way Transformers' conversion does:
 * header of 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: unshared
 * classifier), seq_len), then fp32 weights in llama2.c order: token embedding [V, d], rms_att [L, d],
 * wq [L, d, d], wk [L, kv, d], wv [L, kv, d], wo [L, d, d], rms_ffn [L, d], w1 [L, h, d], w2 [L, d, h],
 * w3 [L, h, d], rms_final [d], freq_cis_real/imag [seq, hd/2] (skipped), wcls [V, d] when unshared.
 * q and k rows are permuted from llama2.c's interleaved rotary pairs to Hugging Face's half-split layout:
 * permute(w, n) = w.view(n, rows/n/2, 2, cols).transpose(1, 2).reshape(rows, cols).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { float32ToBfloat16, writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../main/engine/interop/safetensors-writer.ts';
import { fixture } from './fixtures.ts';

export interface Llama2cCheckpoint {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seqLen: number;
  shared: boolean;
  /** Hugging Face names → fp32 values (q/k already permuted). */
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
}

/** Rows of w [rows, cols] reordered per head: (i, j) pair order → (j, i) (see the header). */
export function permuteRotary(w: Float32Array, heads: number, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const hd = rows / heads;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      for (let j = 0; j < 2; j++) {
        const from = h * hd + i * 2 + j;
        const to = h * hd + j * (hd / 2) + i;
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

export function readLlama2c(file = fixture('stories260K', 'stories260K.bin')): Llama2cCheckpoint {
  const buf = readFileSync(file);
  const head = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 28));
  const [dim, hidden, layers, heads, kvHeads, vocabSigned, seqLen] = Array.from(head);
  const vocab = Math.abs(vocabSigned);
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset + 28, buf.byteOffset + buf.length));
  const hd = dim / heads;
  const kv = kvHeads * hd;
  let at = 0;
  const take = (n: number): Float32Array => floats.subarray(at, (at += n));
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  const put = (name: string, shape: number[], values: Float32Array): void => { tensors.set(name, { shape, values: Float32Array.from(values) }); };
  const perLayer = (n: number): Float32Array[] => { const all = take(layers * n); return Array.from({ length: layers }, (_, l) => all.subarray(l * n, (l + 1) * n)); };

  const embed = take(vocab * dim);
  put('model.embed_tokens.weight', [vocab, dim], embed);
  const rmsAtt = perLayer(dim), wq = perLayer(dim * dim), wk = perLayer(kv * dim), wv = perLayer(kv * dim), wo = perLayer(dim * dim);
  const rmsFfn = perLayer(dim), w1 = perLayer(hidden * dim), w2 = perLayer(dim * hidden), w3 = perLayer(hidden * dim);
  const final = take(dim);
  take(seqLen * (hd / 2) * 2);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    put(`${p}.input_layernorm.weight`, [dim], rmsAtt[l]);
    put(`${p}.self_attn.q_proj.weight`, [dim, dim], permuteRotary(wq[l], heads, dim, dim));
    put(`${p}.self_attn.k_proj.weight`, [kv, dim], permuteRotary(wk[l], kvHeads, kv, dim));
    put(`${p}.self_attn.v_proj.weight`, [kv, dim], wv[l]);
    put(`${p}.self_attn.o_proj.weight`, [dim, dim], wo[l]);
    put(`${p}.post_attention_layernorm.weight`, [dim], rmsFfn[l]);
    put(`${p}.mlp.gate_proj.weight`, [hidden, dim], w1[l]);
    put(`${p}.mlp.down_proj.weight`, [dim, hidden], w2[l]);
    put(`${p}.mlp.up_proj.weight`, [hidden, dim], w3[l]);
  }
  put('model.norm.weight', [dim], final);
  const shared = vocabSigned > 0;
  if (!shared) put('lm_head.weight', [vocab, dim], take(vocab * dim));
  return { dim, hidden, layers, heads, kvHeads, vocab, seqLen, shared, tensors };
}

export function hfConfig(c: Llama2cCheckpoint): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: c.dim, intermediate_size: c.hidden,
    num_hidden_layers: c.layers, num_attention_heads: c.heads, num_key_value_heads: c.kvHeads, vocab_size: c.vocab,
    max_position_embeddings: c.seqLen, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu',
    tie_word_embeddings: c.shared, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
  };
}

/** Writes `c` into `dir` as a Hugging Face folder (config, safetensors, the fixture's tokenizer files). */
export async function writeHfFolder(dir: string, c: Llama2cCheckpoint, opts: { dtype?: 'F32' | 'BF16'; shards?: number; config?: Record<string, unknown> } = {}): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const dtype = opts.dtype ?? 'F32';
  const tensors: TensorToWrite[] = [...c.tensors].map(([name, t]) => ({
    name, dtype, shape: t.shape,
    bytes: () => { const v = dtype === 'BF16' ? float32ToBfloat16(t.values) : t.values; return new Uint8Array(v.buffer, v.byteOffset, v.byteLength); },
  }));
  if ((opts.shards ?? 1) > 1) await writeShardedSafetensors(dir, tensors, opts.shards!);
  else await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...hfConfig(c), ...opts.config }, null, 2));
  writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(fixture('stories260K', f), path.join(dir, f));
}
