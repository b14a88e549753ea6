// The Llama family's variants, each imported and checked against a plain float64 forward pass written
// here from Transformers' modeling code (rotate_half rotary, GQA, causal mask): qwen2's q/k/v biases,
// qwen3's q/k RMSNorm and explicit head_dim, mistral's sliding window with an untied LM head and linear
// rope scaling, llama3 rope scaling. Weights start from stories260K; the extra ones are seeded random.
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importHuggingFace } from '../../main/engine/interop/import-hf.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { hfConfig, readLlama2c, writeHfFolder, type Llama2cCheckpoint } from '../helpers/llama2c-hf.ts';
import { maxDiff } from '../helpers/max-diff.ts';

const tmp = tempDir('whittle-import-variants-');
let base: Llama2cCheckpoint;
afterAll(() => tmp.cleanup());
beforeAll(() => { base = readLlama2c(); });

type Weights = Map<string, { shape: number[]; values: Float32Array }>;

function random(n: number, seed: number, scale: number, offset = 0): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return offset + (s / 2147483648 - 0.5) * 2 * scale;
  });
}

/** Inverse frequencies as Transformers' rope init functions compute them (default, linear, llama3). */
function invFreq(cfg: Record<string, unknown>, d: number): number[] {
  const theta = (cfg.rope_theta as number) ?? 10000;
  const base = Array.from({ length: d / 2 }, (_, i) => 1 / theta ** ((2 * i) / d));
  const rs = cfg.rope_scaling as Record<string, number | string> | undefined;
  if (!rs) return base;
  const factor = rs.factor as number;
  if (rs.rope_type === 'linear') return base.map((f) => f / factor);
  const low = rs.low_freq_factor as number, high = rs.high_freq_factor as number, old = rs.original_max_position_embeddings as number;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < old / high) return f;
    if (wavelen > old / low) return f / factor;
    const smooth = (old / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** Logits [T, V] of `tokens` from position 0 (float64 throughout). */
function referenceLogits(cfg: Record<string, unknown>, w: Weights, tokens: number[]): Float32Array {
  const H = cfg.hidden_size as number, L = cfg.num_hidden_layers as number, NH = cfg.num_attention_heads as number, NKV = cfg.num_key_value_heads as number;
  const D = (cfg.head_dim as number | undefined) ?? H / NH, V = cfg.vocab_size as number, eps = cfg.rms_norm_eps as number;
  const type = cfg.model_type as string;
  const window = type === 'mistral' ? (cfg.sliding_window as number | undefined) ?? null : null;
  const get = (n: string): Float32Array | null => w.get(n)?.values ?? null;
  const lin = (x: Float64Array, name: string, out: number): Float64Array => {
    const W = get(`${name}.weight`)!, b = get(`${name}.bias`);
    const y = new Float64Array(out);
    for (let i = 0; i < out; i++) { let a = b ? b[i] : 0; for (let j = 0; j < x.length; j++) a += W[i * x.length + j] * x[j]; y[i] = a; }
    return y;
  };
  const rms = (x: Float64Array, g: Float32Array): Float64Array => {
    let ss = 0; for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + eps);
    return Float64Array.from(x, (v, i) => v * inv * g[i]);
  };
  const freqs = invFreq(cfg, D);
  const rope = (v: Float64Array, pos: number): void => {
    for (let i = 0; i < D / 2; i++) {
      const a = v[i], b = v[i + D / 2], c = Math.cos(pos * freqs[i]), s = Math.sin(pos * freqs[i]);
      v[i] = a * c - b * s;
      v[i + D / 2] = b * c + a * s;
    }
  };
  const T = tokens.length;
  const embed = get('model.embed_tokens.weight')!;
  let xs = tokens.map((t) => Float64Array.from(embed.subarray(t * H, (t + 1) * H)));
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const qs: Float64Array[][] = [], ks: Float64Array[][] = [], vs: Float64Array[][] = [];
    for (let t = 0; t < T; t++) {
      const h = rms(xs[t], get(`${p}.input_layernorm.weight`)!);
      const split = (y: Float64Array, n: number, norm: string | null): Float64Array[] => Array.from({ length: n }, (_, k) => {
        let v: Float64Array = y.slice(k * D, (k + 1) * D);
        if (norm) v = rms(v, get(norm)!);
        return v;
      });
      const q = split(lin(h, `${p}.self_attn.q_proj`, NH * D), NH, type === 'qwen3' ? `${p}.self_attn.q_norm.weight` : null);
      const k = split(lin(h, `${p}.self_attn.k_proj`, NKV * D), NKV, type === 'qwen3' ? `${p}.self_attn.k_norm.weight` : null);
      q.forEach((v) => rope(v, t));
      k.forEach((v) => rope(v, t));
      qs.push(q); ks.push(k); vs.push(split(lin(h, `${p}.self_attn.v_proj`, NKV * D), NKV, null));
    }
    xs = xs.map((x, t) => {
      const ctx = new Float64Array(NH * D);
      for (let hd = 0; hd < NH; hd++) {
        const kv = Math.floor(hd / (NH / NKV));
        const visible = Array.from({ length: t + 1 }, (_, j) => j).filter((j) => window === null || j > t - window);
        const scores = visible.map((j) => { let a = 0; for (let i = 0; i < D; i++) a += qs[t][hd][i] * ks[j][kv][i]; return a / Math.sqrt(D); });
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        visible.forEach((j, n) => { for (let i = 0; i < D; i++) ctx[hd * D + i] += (e[n] / z) * vs[j][kv][i]; });
      }
      const x1 = Float64Array.from(x, (v, i) => v + lin(ctx, `${p}.self_attn.o_proj`, H)[i]);
      const h2 = rms(x1, get(`${p}.post_attention_layernorm.weight`)!);
      const I = cfg.intermediate_size as number;
      const g = lin(h2, `${p}.mlp.gate_proj`, I), u = lin(h2, `${p}.mlp.up_proj`, I);
      const act = Float64Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]);
      const down = lin(act, `${p}.mlp.down_proj`, H);
      return Float64Array.from(x1, (v, i) => v + down[i]);
    });
  }
  const head = get('lm_head.weight') ?? embed;
  const out = new Float32Array(T * V);
  xs.forEach((x, t) => {
    const h = rms(x, get('model.norm.weight')!);
    for (let v = 0; v < V; v++) { let a = 0; for (let i = 0; i < H; i++) a += head[v * H + i] * h[i]; out[t * V + v] = a; }
  });
  return out;
}

async function importedLogits(modelPath: string, tokens: number[], layers: number, kv: number, d: number): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  try {
    const i64 = (v: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), [1, v.length]);
    const feeds: Record<string, ort.Tensor> = { input_ids: i64(tokens), attention_mask: i64(tokens.map(() => 1)), position_ids: i64(tokens.map((_, i) => i)) };
    for (let l = 0; l < layers; l++) for (const k of ['key', 'value']) feeds[`past_key_values.${l}.${k}`] = new ort.Tensor('float32', new Float32Array(0), [1, kv, 0, d]);
    return (await s.run(feeds)).logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

const TOKENS = [1, 403, 407, 261, 378, 285, 352, 266, 432, 259, 300, 498, 270, 261, 310, 343, 276, 399, 290, 267, 45, 306, 258, 411];

async function check(name: string, config: Record<string, unknown>, weights: Weights): Promise<void> {
  const c = { ...base, tensors: weights };
  const dir = path.join(tmp.dir, name);
  await writeHfFolder(dir, c, { config });
  const cfg = { ...hfConfig(base), ...config };
  const r = await importHuggingFace(dir, path.join(tmp.dir, `${name}-onnx`));
  const D = (cfg.head_dim as number | undefined) ?? (cfg.hidden_size as number) / (cfg.num_attention_heads as number);
  const got = await importedLogits(r.modelPath, TOKENS, 5, cfg.num_key_value_heads as number, D);
  const diff = maxDiff(got, referenceLogits(cfg, weights, TOKENS));
  expect(diff).toBeLessThan(1e-4);
  const map = mapArchitecture(await readModel(r.modelPath));
  expect(map.family).toBe('llama');
  expect(map.issues).toEqual([]);
}

describe('Llama-family variants against a plain forward pass', () => {
  it('llama itself (the reference pass agrees with the stories260K weights)', async () => {
    await check('llama', {}, base.tensors);
  }, 60_000);

  it('qwen2: q/k/v biases', async () => {
    const w: Weights = new Map(base.tensors);
    for (let l = 0; l < 5; l++) {
      for (const [p, n] of [['q_proj', 64], ['k_proj', 32], ['v_proj', 32]] as const) w.set(`model.layers.${l}.self_attn.${p}.bias`, { shape: [n], values: random(n, 7 + l * 3 + n, 0.3) });
    }
    await check('qwen2', { model_type: 'qwen2' }, w);
  }, 60_000);

  it('qwen3: head_dim 16 (not hidden / heads) and q/k RMSNorm per head', async () => {
    const w: Weights = new Map(base.tensors);
    const D = 16;
    for (let l = 0; l < 5; l++) {
      const p = `model.layers.${l}.self_attn`;
      w.set(`${p}.q_proj.weight`, { shape: [8 * D, 64], values: random(8 * D * 64, 11 + l, 0.15) });
      w.set(`${p}.k_proj.weight`, { shape: [4 * D, 64], values: random(4 * D * 64, 23 + l, 0.15) });
      w.set(`${p}.v_proj.weight`, { shape: [4 * D, 64], values: random(4 * D * 64, 37 + l, 0.15) });
      w.set(`${p}.o_proj.weight`, { shape: [64, 8 * D], values: random(64 * 8 * D, 41 + l, 0.1) });
      w.set(`${p}.q_norm.weight`, { shape: [D], values: random(D, 53 + l, 0.3, 1) });
      w.set(`${p}.k_norm.weight`, { shape: [D], values: random(D, 59 + l, 0.3, 1) });
    }
    await check('qwen3', { model_type: 'qwen3', head_dim: D }, w);
  }, 60_000);

  it('mistral: sliding window 6, untied LM head, linear rope scaling', async () => {
    const w: Weights = new Map(base.tensors);
    w.set('lm_head.weight', { shape: [512, 64], values: random(512 * 64, 97, 0.2) });
    await check('mistral', { model_type: 'mistral', sliding_window: 6, tie_word_embeddings: false, rope_scaling: { rope_type: 'linear', factor: 2 } }, w);
  }, 60_000);

  it('llama3 rope scaling', async () => {
    await check('llama3', { rope_theta: 500_000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } }, base.tensors);
  }, 60_000);
});
