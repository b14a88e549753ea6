/**
 * A llama2.c-shaped Llama decoder written as ONNX (opset 17, standard ops only), laid out like the
 * fixture stories260K-kv.onnx (llama2c_to_onnx.js): the same op chains, names and cache layout, any shape.
 *
 *   input_ids [b, s] ─Gather(embed [V, D])─▶ x [b, s, D]
 *   L × {
 *     h = RMSNorm(x)                        x · 1/√(mean(x²) + 1e-5) · g             (Mul/ReduceMean/Add/Sqrt/Div/Mul)
 *     q = h·Wqᵀ [b, s, H, d]  k, v = h·Wkᵀ, h·Wvᵀ [b, s, Hkv, d]
 *     RoPE on q, k in llama2.c's interleaved pairs: Reshape [b, s, h, d/2, 2] → Split (re, im) →
 *        (re·cos − im·sin, re·sin + im·cos) → Concat → Reshape;  cos/sin [maxSeq, d/2] gathered by position
 *     cache: present.N.key = Concat(past_key_values.N.key, k) on the time axis  [b, Hkv, past + s, d]
 *     GQA:   k, v [b, Hkv, t, d] → Unsqueeze → Expand [b, Hkv, H/Hkv, t, d] → Reshape [b, H, t, d]
 *     x += softmax(q·kᵀ/√d + causal mask) · v  → [b, s, D] · Woᵀ
 *     x += (silu(h2·W1ᵀ) ⊙ h2·W3ᵀ) · W2ᵀ      with h2 = RMSNorm(x)
 *   }
 *   logits [b, s, V] = RMSNorm(x) · embedᵀ (tied: Transpose of the table) or · lm_head
 *
 * Weights are kept in llama2.c's (and Hugging Face's) [out, in] layout in memory and written transposed
 * ([in, out], the `_t` initializers) so MatMul reads them directly. Random weights follow llama2.c's init:
 * normal(0, 0.02), the residual projections (Wo, W2) scaled by 1/√(2L), norms 1.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from '../../main/engine/calibrate/prng.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { intAttr, intsAttr, makeNode, sweepUnusedInitializers } from '../../main/engine/onnx/graph.ts';
import type { AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { buildModel, valueInfo } from '../unit/quantize/build-model.ts';

export interface LlamaShape {
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** MLP width (llama2.c's hidden_dim). */
  hidden: number;
  vocab: number;
  /** Rows of the RoPE tables: the longest past + sequence the model accepts. */
  maxSeq: number;
  /** The LM head reads the embedding table. */
  tied: boolean;
}

export interface LlamaOnnxOptions extends LlamaShape {
  seed: number;
  /** Hugging Face cache inputs/outputs (past_key_values.N.key/value → present.N.key/value). */
  cache: boolean;
}

/** One block's weights, matrices [out, in] row-major. */
export interface LlamaLayerWeights {
  attnNorm: Float32Array; // [D]
  wq: Float32Array; // [D, D]
  wk: Float32Array; // [Hkv·d, D]
  wv: Float32Array; // [Hkv·d, D]
  wo: Float32Array; // [D, D]
  mlpNorm: Float32Array; // [D]
  gate: Float32Array; // [F, D]  (llama2.c w1)
  down: Float32Array; // [D, F]  (w2)
  up: Float32Array; // [F, D]    (w3)
}

export interface LlamaWeights {
  embed: Float32Array; // [V, D]
  layers: LlamaLayerWeights[];
  finalNorm: Float32Array; // [D]
  /** [V, D]; null when tied to `embed`. */
  lmHead: Float32Array | null;
}

export interface WrittenLlama {
  model: string;
  params: number;
}

export const headSize = (s: LlamaShape): number => s.dim / s.heads;

export function parameterCount(s: LlamaShape): number {
  const kvDim = s.kvHeads * headSize(s);
  const perLayer = 2 * s.dim + 2 * s.dim * s.dim + 2 * kvDim * s.dim + 3 * s.dim * s.hidden;
  return s.vocab * s.dim + s.layers * perLayer + s.dim + (s.tied ? 0 : s.vocab * s.dim);
}

function checkShape(s: LlamaShape): void {
  const whole = (n: number): boolean => Number.isInteger(n) && n > 0;
  if (![s.dim, s.layers, s.heads, s.kvHeads, s.hidden, s.vocab, s.maxSeq].every(whole)) throw new Error(`Llama shape needs positive integers: ${JSON.stringify(s)}`);
  if (s.dim % s.heads !== 0 || headSize(s) % 2 !== 0) throw new Error(`dim ${s.dim} must split into ${s.heads} heads of an even size`);
  if (s.heads % s.kvHeads !== 0) throw new Error(`heads ${s.heads} must be a multiple of kvHeads ${s.kvHeads}`);
}

/** Seeded normal(0, std) float32s (mulberry32 + Box–Muller). */
function normals(count: number, std: number, next: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next())) * std;
    const a = 2 * Math.PI * next();
    out[i] = r * Math.cos(a);
    if (i + 1 < count) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

/** llama2.c's init: normal(0, 0.02); Wo and W2 (they add into the residual stream) at 0.02/√(2L); norms 1. */
export function randomLlamaWeights(s: LlamaShape, seed: number): LlamaWeights {
  checkShape(s);
  const next = mulberry32(seed).next;
  const D = s.dim, F = s.hidden, kvDim = s.kvHeads * headSize(s);
  const std = 0.02, residualStd = 0.02 / Math.sqrt(2 * s.layers);
  const ones = (): Float32Array => new Float32Array(D).fill(1);
  const embed = normals(s.vocab * D, std, next);
  const layers: LlamaLayerWeights[] = [];
  for (let l = 0; l < s.layers; l++) {
    layers.push({
      attnNorm: ones(),
      wq: normals(D * D, std, next), wk: normals(kvDim * D, std, next), wv: normals(kvDim * D, std, next),
      wo: normals(D * D, residualStd, next),
      mlpNorm: ones(),
      gate: normals(F * D, std, next), down: normals(D * F, residualStd, next), up: normals(F * D, std, next),
    });
  }
  return { embed, layers, finalNorm: ones(), lmHead: s.tied ? null : normals(s.vocab * D, std, next) };
}

/** RoPE tables [maxSeq, d/2]: angle = pos / 10000^(2i/d), as llama2.c computes it (float32 frequency). */
export function ropeTables(maxSeq: number, head: number): { cos: Float32Array; sin: Float32Array } {
  const half = head / 2;
  const cos = new Float32Array(maxSeq * half), sin = new Float32Array(maxSeq * half);
  for (let p = 0; p < maxSeq; p++) {
    for (let i = 0; i < half; i++) {
      const freq = Math.fround(1 / Math.fround(10000 ** ((2 * i) / head)));
      const angle = Math.fround(p * freq);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** [rows, cols] → [cols, rows]. */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

const i64 = (...v: number[]): BigInt64Array => BigInt64Array.from(v.map(BigInt));

/** The ONNX graph of `weights` with shape `s` (see the file header for its layout). */
export function buildLlamaOnnx(s: LlamaShape, weights: LlamaWeights, options: { cache: boolean }): ModelProto {
  checkShape(s);
  const D = s.dim, H = s.heads, KV = s.kvHeads, d = headSize(s), F = s.hidden, rep = H / KV;
  const initializers: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const constant = (name: string, dataType: number, dims: number[], data: Float32Array | BigInt64Array): string => {
    initializers.push(makeTensor(name, dataType, dims, data));
    return name;
  };
  const f32 = (name: string, v: number): string => constant(name, DataType.float32, [], Float32Array.of(v));
  const ints = (name: string, ...v: number[]): string => constant(name, DataType.int64, [v.length], i64(...v));
  const matrix = (name: string, w: Float32Array, out: number, inp: number): string => constant(name, DataType.float32, [inp, out], transpose(w, out, inp));
  const vector = (name: string, w: Float32Array): string => constant(name, DataType.float32, [w.length], w);
  let counter = 0;
  const op = (opType: string, inputs: string[], attributes: AttributeProto[] = [], outputs = 1, names?: string[]): string[] => {
    const name = `${opType}_${counter++}`;
    const out = names ?? Array.from({ length: outputs }, (_, i) => `${name}_o${i}`);
    nodes.push(makeNode({ opType, inputs, outputs: out, name, attributes }));
    return out;
  };
  const one = (opType: string, inputs: string[], attributes: AttributeProto[] = []): string => op(opType, inputs, attributes)[0];

  const c0 = ints('c_0', 0), c1 = ints('c_1', 1), c2 = ints('c_2', 2);
  const s0 = constant('s_0', DataType.int64, [], i64(0)), s1 = constant('s_1', DataType.int64, [], i64(1));
  const eps = f32('rms_eps', 1e-5), oneF = f32('one_f', 1), negBig = f32('neg_big', -1e9), zeroF = f32('zero_f', 0);
  const attnScale = f32('attn_scale', 1 / Math.sqrt(d));
  const rope = ropeTables(s.maxSeq, d);
  const ropeCos = constant('rope_cos', DataType.float32, [s.maxSeq, d / 2], rope.cos);
  const ropeSin = constant('rope_sin', DataType.float32, [s.maxSeq, d / 2], rope.sin);
  const embed = constant('model.embed_tokens.weight', DataType.float32, [s.vocab, D], weights.embed);
  const ropeShape = ints('rope_bshape', 1, -1, 1, d / 2, 1);

  // Positions: past (0 without a cache) … past + seq; batch and lengths as scalars.
  const idsShape = one('Shape', ['input_ids']);
  const batch = one('Gather', [idsShape, s0], [intAttr('axis', 0)]);
  const seq = one('Gather', [idsShape, s1], [intAttr('axis', 0)]);
  let past = s0, total = seq;
  if (options.cache) {
    past = one('Squeeze', [one('Gather', [one('Shape', ['past_key_values.0.key']), c2], [intAttr('axis', 0)]), c0]);
    total = one('Add', [past, seq]);
  }
  const positions = one('Range', [past, total, s1]); // [s]
  const cos = one('Reshape', [one('Gather', [ropeCos, positions], [intAttr('axis', 0)]), ropeShape]); // [1, s, 1, d/2, 1]
  const sin = one('Reshape', [one('Gather', [ropeSin, positions], [intAttr('axis', 0)]), ropeShape]);
  // Causal mask [s, past + s]: −1e9 where the key's position is after the query's.
  const keys = one('Range', [s0, total, s1]);
  const later = one('Greater', [one('Unsqueeze', [keys, c0]), one('Unsqueeze', [positions, c1])]);
  const mask = one('Where', [later, negBig, zeroF]);

  const rmsNorm = (x: string, g: string): string => {
    const meanSquare = one('ReduceMean', [one('Mul', [x, x])], [intsAttr('axes', [-1]), intAttr('keepdims', 1)]);
    const inv = one('Div', [oneF, one('Sqrt', [one('Add', [meanSquare, eps])])]);
    return one('Mul', [one('Mul', [x, inv]), g]);
  };
  // [b, s, heads·d] → rotated [b, heads, s, d]
  const rotate = (t: string, heads: number, tag: string): string => {
    const pairs = one('Reshape', [t, ints(`r5_${tag}`, 0, 0, heads, d / 2, 2)]);
    const [re, im] = op('Split', [pairs, ints(`sp_${tag}`, 1, 1)], [intAttr('axis', -1)], 2);
    const re2 = one('Sub', [one('Mul', [re, cos]), one('Mul', [im, sin])]);
    const im2 = one('Add', [one('Mul', [re, sin]), one('Mul', [im, cos])]);
    const joined = one('Reshape', [one('Concat', [re2, im2], [intAttr('axis', -1)]), ints(`r4_${tag}`, 0, 0, heads, d)]);
    return one('Transpose', [joined], [intsAttr('perm', [0, 2, 1, 3])]);
  };
  // [b, KV, t, d] → [b, H, t, d]: each kv head serves `rep` query heads.
  const repeatKv = (t: string, tag: string): string => {
    if (rep === 1) return t;
    const target = one('Concat', [one('Unsqueeze', [batch, c0]), ints(`kvh_${tag}`, KV, rep), one('Unsqueeze', [total, c0]), ints(`hs_${tag}`, d)], [intAttr('axis', 0)]);
    return one('Reshape', [one('Expand', [one('Unsqueeze', [t, c2]), target]), ints(`gqa_${tag}`, 0, H, -1, d)]);
  };

  const inputs: ValueInfoProto[] = [valueInfo('input_ids', DataType.int64, ['batch_size', 'sequence_length'])];
  const outputs: ValueInfoProto[] = [valueInfo('logits', DataType.float32, ['batch_size', 'sequence_length', s.vocab])];
  let x = one('Gather', [embed, 'input_ids'], [intAttr('axis', 0)]);
  weights.layers.forEach((w, l) => {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, vector(`${p}.input_layernorm.weight`, w.attnNorm));
    const q = rotate(one('MatMul', [h, matrix(`${p}.self_attn.q_proj.weight_t`, w.wq, D, D)]), H, `q${l}`);
    let k = rotate(one('MatMul', [h, matrix(`${p}.self_attn.k_proj.weight_t`, w.wk, KV * d, D)]), KV, `k${l}`);
    const vHeads = one('Reshape', [one('MatMul', [h, matrix(`${p}.self_attn.v_proj.weight_t`, w.wv, KV * d, D)]), ints(`vr_${l}`, 0, 0, KV, d)]);
    let v = one('Transpose', [vHeads], [intsAttr('perm', [0, 2, 1, 3])]);
    if (options.cache) {
      for (const kind of ['key', 'value'] as const) {
        inputs.push(valueInfo(`past_key_values.${l}.${kind}`, DataType.float32, ['batch_size', KV, 'past_sequence_length', d]));
        outputs.push(valueInfo(`present.${l}.${kind}`, DataType.float32, ['batch_size', KV, 'total_sequence_length', d]));
      }
      k = op('Concat', [`past_key_values.${l}.key`, k], [intAttr('axis', 2)], 1, [`present.${l}.key`])[0];
      v = op('Concat', [`past_key_values.${l}.value`, v], [intAttr('axis', 2)], 1, [`present.${l}.value`])[0];
    }
    const kT = one('Transpose', [repeatKv(k, `k${l}`)], [intsAttr('perm', [0, 1, 3, 2])]);
    const scores = one('Add', [one('Mul', [one('MatMul', [q, kT]), attnScale]), mask]); // [b, H, s, t]
    const ctx = one('MatMul', [one('Softmax', [scores], [intAttr('axis', -1)]), repeatKv(v, `v${l}`)]); // [b, H, s, d]
    const merged = one('Reshape', [one('Transpose', [ctx], [intsAttr('perm', [0, 2, 1, 3])]), ints(`ctx_${l}`, 0, 0, D)]);
    x = one('Add', [x, one('MatMul', [merged, matrix(`${p}.self_attn.o_proj.weight_t`, w.wo, D, D)])]);
    const h2 = rmsNorm(x, vector(`${p}.post_attention_layernorm.weight`, w.mlpNorm));
    const g = one('MatMul', [h2, matrix(`${p}.mlp.gate_proj.weight_t`, w.gate, F, D)]);
    const silu = one('Mul', [g, one('Sigmoid', [g])]);
    const gated = one('Mul', [silu, one('MatMul', [h2, matrix(`${p}.mlp.up_proj.weight_t`, w.up, F, D)])]);
    x = one('Add', [x, one('MatMul', [gated, matrix(`${p}.mlp.down_proj.weight_t`, w.down, D, F)])]);
  });
  const final = rmsNorm(x, vector('model.norm.weight', weights.finalNorm));
  const head = weights.lmHead ? matrix('lm_head.weight_t', weights.lmHead, s.vocab, D) : one('Transpose', [embed], [intsAttr('perm', [1, 0])]);
  op('MatMul', [final, head], [], 1, ['logits']);

  const model = buildModel({ nodes, initializers, inputs, outputs, opset: 17, irVersion: 8 });
  sweepUnusedInitializers(model.graph!); // c_2 without a cache and without GQA
  model.producerName = 'whittle-llama-onnx';
  return model;
}

/** Writes `dir`/model.onnx (+ model.onnx.data for the weights) with seeded random weights. */
export async function writeLlamaOnnx(dir: string, options: LlamaOnnxOptions): Promise<WrittenLlama> {
  return writeLlamaWeights(dir, options, randomLlamaWeights(options, options.seed), options.cache);
}

async function writeLlamaWeights(dir: string, shape: LlamaShape, weights: LlamaWeights, cache: boolean): Promise<WrittenLlama> {
  const model = path.join(dir, 'model.onnx');
  await writeModel(buildLlamaOnnx(shape, weights, { cache }), model, { externalData: 'auto' });
  return { model, params: parameterCount(shape) };
}

/**
 * A llama2.c checkpoint (`run.c`'s format): 7 int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size — negative when the classifier is separate — seq_len), then float32 tensors per kind for all
 * layers: embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, the RoPE tables (skipped),
 * and the classifier when not shared.
 */
export async function readLlama2cCheckpoint(file: string): Promise<{ shape: LlamaShape; weights: LlamaWeights }> {
  const fh = await open(file, 'r');
  let bytes: Buffer;
  try {
    bytes = await fh.readFile();
  } finally {
    await fh.close();
  }
  const header = new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + 28));
  const [dim, hidden, layers, heads, kvHeads, signedVocab, maxSeq] = header;
  const shape: LlamaShape = { dim, hidden, layers, heads, kvHeads, vocab: Math.abs(signedVocab), maxSeq, tied: signedVocab > 0 };
  checkShape(shape);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 28, bytes.byteOffset + bytes.length));
  let at = 0;
  const take = (n: number): Float32Array => floats.slice(at, (at += n));
  const perLayer = (n: number): Float32Array[] => Array.from({ length: layers }, () => take(n));
  const d = headSize(shape), kvDim = kvHeads * d;
  const embed = take(shape.vocab * dim);
  const attnNorm = perLayer(dim), wq = perLayer(dim * dim), wk = perLayer(kvDim * dim), wv = perLayer(kvDim * dim), wo = perLayer(dim * dim);
  const mlpNorm = perLayer(dim), gate = perLayer(hidden * dim), down = perLayer(dim * hidden), up = perLayer(hidden * dim);
  const finalNorm = take(dim);
  at += maxSeq * d; // freq_cis_real, freq_cis_imag (recomputed from the shape)
  const lmHead = shape.tied ? null : take(shape.vocab * dim);
  if (at > floats.length) throw new Error(`${file} is shorter than its header says (${floats.length} floats, needs ${at})`);
  return {
    shape,
    weights: {
      embed, finalNorm, lmHead,
      layers: Array.from({ length: layers }, (_, l) => ({ attnNorm: attnNorm[l], wq: wq[l], wk: wk[l], wv: wv[l], wo: wo[l], mlpNorm: mlpNorm[l], gate: gate[l], down: down[l], up: up[l] })),
    },
  };
}

/** Writes a llama2.c checkpoint as `dir`/model.onnx through the same graph builder. */
export async function writeLlama2cOnnx(dir: string, checkpoint: string, options: { cache: boolean }): Promise<WrittenLlama & { shape: LlamaShape; weights: LlamaWeights }> {
  const { shape, weights } = await readLlama2cCheckpoint(checkpoint);
  return { ...(await writeLlamaWeights(dir, shape, weights, options.cache)), shape, weights };
}
