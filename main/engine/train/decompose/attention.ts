/**
 * Attention from onnxruntime's contrib set (Attention, MultiHeadAttention, GroupQueryAttention) as
 * standard ops, all sharing one scaled-dot-product core:
 *
 *   q [B, N, S, H], k [B, N, T, H], v [B, N, T, Hv]   (T = P + S: P past positions, then the S new ones)
 *   scores = q·kᵀ · scale (+ attention_bias)          [B, N, S, T]
 *   scores = Where(keep, scores, fill)                keep: causal constant (j ≤ P + i) ∧ key padding
 *   out    = softmax(scores) · v → [B, S, N·Hv]
 *
 * Caches: present = Concat(past, new) along the sequence axis; with an empty past (P = 0) it is just the
 * new keys/values. The causal mask is a constant bool tensor (static S and T); masks read from inputs
 * (mask_index, key_padding_mask, seqlens_k) become bool tensors of [B, 1, 1|S, T].
 * GroupQueryAttention repeats each of its kv heads N / kv_heads times (Expand) after the cache.
 */
import { DataType } from '../../onnx/dtype.ts';
import { attrFloat, attrInt, attrInts } from '../../onnx/graph.ts';
import type { NodeProto } from '../../onnx/proto-types.ts';
import { lowestOf, type DecomposeBuilder } from './builder.ts';
import { rotaryBsd } from './rotary.ts';
import { inputOf, outputOf, refuseUnless, type Decomposition } from './rule.ts';

/** [B, L, N·H] → [B, N, L, H]. */
function splitHeads(b: DecomposeBuilder, x: string, heads: number): string {
  const [batch, len, d] = b.shape(x);
  refuseUnless(d % heads === 0, 'a hidden size that is not a multiple of num_heads');
  return b.transpose(b.reshape(x, [batch, len, heads, d / heads]), [0, 2, 1, 3]);
}

/** keep[i][j] = j ≤ past + i, as a constant bool [1, 1, S, T]. */
function causalKeep(b: DecomposeBuilder, seq: number, total: number): string {
  const past = total - seq;
  const values: boolean[] = [];
  for (let i = 0; i < seq; i++) for (let j = 0; j < total; j++) values.push(j <= past + i);
  return b.bools(values, [1, 1, seq, total]);
}

/** keep[b][j] = j < lengths[b], from lengths [B] (any int type), as bool [B, 1, 1, T]. */
function lengthKeep(b: DecomposeBuilder, lengths: string, total: number): string {
  const [batch] = b.shape(lengths);
  const positions = b.ints(Array.from({ length: total }, (_, j) => j), [1, total]);
  return b.reshape(b.less(positions, b.reshape(b.cast(lengths, DataType.int64), [batch, 1])), [batch, 1, 1, total]);
}

/** A key mask read from an input: [B] valid lengths, [B, T] ones/zeros, or [B, S, T]; bool [B, 1, 1|S, T]. */
function maskKeep(b: DecomposeBuilder, mask: string, batch: number, seq: number, total: number): string {
  const shape = b.shape(mask);
  if (shape.length === 1) {
    refuseUnless(shape[0] === batch, 'a 1-D mask_index with start positions');
    return lengthKeep(b, mask, total);
  }
  if (shape.length === 2) {
    refuseUnless(shape[1] === total, 'a 2-D mask whose length is not the total sequence length');
    return b.reshape(b.cast(mask, DataType.bool), [batch, 1, 1, total]);
  }
  refuseUnless(shape.length === 3 && shape[1] === seq && shape[2] === total, 'a mask of an unsupported shape');
  return b.reshape(b.cast(mask, DataType.bool), [batch, 1, seq, total]);
}

function combine(b: DecomposeBuilder, a: string, c: string): string {
  if (!a) return c;
  if (!c) return a;
  return b.and(a, c);
}

interface CoreInputs {
  q: string;               // [B, N, S, H]
  k: string;               // [B, N, T, H]
  v: string;               // [B, N, T, Hv]
  scale: number;
  bias: string;            // additive, broadcast to [B, N, S, T], or ''
  keep: string;            // bool, broadcast to [B, N, S, T], or ''
  fill: number;            // score of masked positions
}

/** softmax(q·kᵀ·scale + bias, masked) · v, as [B, S, N·Hv]. */
function attend(b: DecomposeBuilder, c: CoreInputs): string {
  const [batch, heads, seq] = b.shape(c.q);
  const hv = b.shape(c.v)[3];
  let scores = b.scale(b.matmul(c.q, b.transpose(c.k, [0, 1, 3, 2])), c.scale);     // [B, N, S, T]
  if (c.bias) scores = b.add(scores, c.bias);
  if (c.keep) scores = b.where(c.keep, scores, b.floats([Math.max(c.fill, lowestOf(b.dtype(scores)))], b.dtype(scores)));
  const probs = b.softmax(scores, -1);
  const out = b.matmul(probs, c.v);                                                  // [B, N, S, Hv]
  return b.reshape(b.transpose(out, [0, 2, 1, 3]), [batch, seq, heads * hv]);
}

/** Past [B, N, P, H] and new [B, N, S, H] → [B, N, P + S, H] (no node for an empty past). */
function withPast(b: DecomposeBuilder, past: string, x: string): string {
  return past ? b.concat([past, x], 2) : x;
}

function scaleOf(node: NodeProto, headSize: number): number {
  const s = attrFloat(node, 'scale', 0);
  return s !== 0 ? s : 1 / Math.sqrt(headSize);
}

/**
 * Attention: input [B, S, Din] · weights [Din, Dq + Dk + Dv] (+ bias) → q, k, v; mask_index?, past?
 * [2, B, N, P, H], attention_bias?. Outputs: output [B, S, Dv], present [2, B, N, P + S, H].
 */
export const attention: Decomposition = (node, b) => {
  refuseUnless(attrInt(node, 'do_rotary', 0) === 0, 'do_rotary');
  refuseUnless(attrInt(node, 'past_present_share_buffer', 0) === 0, 'a shared past/present buffer');
  refuseUnless(!inputOf(node, 6) && !inputOf(node, 7), 'past_sequence_length input');
  const heads = attrInt(node, 'num_heads', 0);
  const x = inputOf(node, 0);
  const w = inputOf(node, 1);
  const [batch, seq] = b.shape(x);
  const wShape = b.shape(w);
  refuseUnless(wShape.length === 2 && heads > 0, 'weights that are not 2-D, or no num_heads');
  const sizes = attrInts(node, 'qkv_hidden_sizes') ?? [];
  const [dq, dk, dv] = sizes.length === 3 ? sizes : [wShape[1] / 3, wShape[1] / 3, wShape[1] / 3];
  refuseUnless(dq === dk && dq + dk + dv === wShape[1], 'q, k, v sizes that do not match the weights');

  let qkv = b.matmul(x, w);                                                          // [B, S, Dq+Dk+Dv]
  if (inputOf(node, 2)) qkv = b.add(qkv, inputOf(node, 2));
  const q = splitHeads(b, b.slice(qkv, 2, 0, dq), heads);
  let k = splitHeads(b, b.slice(qkv, 2, dq, dq + dk), heads);                        // [B, N, S, H]
  let v = splitHeads(b, b.slice(qkv, 2, dq + dk, dq + dk + dv), heads);
  const past = inputOf(node, 4);
  if (past && b.shape(past)[3] > 0) {
    const [, , n, p, h] = b.shape(past);
    k = withPast(b, b.reshape(b.slice(past, 0, 0, 1), [batch, n, p, h]), k);
    v = withPast(b, b.reshape(b.slice(past, 0, 1, 2), [batch, n, p, b.shape(v)[3]]), v);
  }
  const total = b.shape(k)[2];
  let keep = attrInt(node, 'unidirectional', 0) !== 0 ? causalKeep(b, seq, total) : '';
  if (inputOf(node, 3)) keep = combine(b, keep, maskKeep(b, inputOf(node, 3), batch, seq, total));
  const out = attend(b, { q, k, v, scale: scaleOf(node, dq / heads), bias: inputOf(node, 5), keep, fill: attrFloat(node, 'mask_filter_value', -10000) });
  let present = '';
  if (outputOf(node, 1)) {
    const [, n, t, h] = b.shape(k);
    present = b.concat([b.reshape(k, [1, batch, n, t, h]), b.reshape(v, [1, batch, n, t, b.shape(v)[3]])], 0);
  }
  return [out, present];
};

/**
 * MultiHeadAttention: query [B, S, Dq], key/value [B, L, D] (or [B, N, L, H] already split), bias?
 * [Dq + Dk + Dv], key_padding_mask?, attention_bias?, past_key/past_value? [B, N, P, H].
 * Outputs: output [B, S, Dv], present_key/present_value [B, N, P + L, H].
 */
export const multiHeadAttention: Decomposition = (node, b) => {
  refuseUnless(!inputOf(node, 8) && !inputOf(node, 9), 'past_sequence_length or cache_indirection');
  refuseUnless(!outputOf(node, 3), 'the qk output');
  const heads = attrInt(node, 'num_heads', 0);
  const query = inputOf(node, 0);
  const key = inputOf(node, 1);
  const value = inputOf(node, 2);
  refuseUnless(heads > 0 && b.shape(query).length === 3 && key !== '' && value !== '', 'packed q/k/v');
  const [, seq, dq] = b.shape(query);
  const bias = inputOf(node, 3);
  const keyRank = b.shape(key).length;
  refuseUnless(keyRank === 3 || (keyRank === 4 && !bias), 'key of an unsupported layout');
  let q3 = query;
  let k3 = key;
  let v3 = value;
  if (bias) {
    const dk = b.shape(key)[2];
    const dv = b.shape(value)[2];
    q3 = b.add(q3, b.slice(bias, 0, 0, dq));
    k3 = b.add(k3, b.slice(bias, 0, dq, dq + dk));
    v3 = b.add(v3, b.slice(bias, 0, dq + dk, dq + dk + dv));
  }
  const q = splitHeads(b, q3, heads);
  let k = keyRank === 4 ? k3 : splitHeads(b, k3, heads);
  let v = keyRank === 4 ? v3 : splitHeads(b, v3, heads);
  const pastKey = inputOf(node, 6);
  const pastValue = inputOf(node, 7);
  if (pastKey && pastValue && b.shape(pastKey)[2] > 0) {
    k = withPast(b, pastKey, k);
    v = withPast(b, pastValue, v);
  }
  const total = b.shape(k)[2];
  let keep = attrInt(node, 'unidirectional', 0) !== 0 ? causalKeep(b, seq, total) : '';
  if (inputOf(node, 4)) keep = combine(b, keep, maskKeep(b, inputOf(node, 4), b.shape(query)[0], seq, total));
  const out = attend(b, { q, k, v, scale: scaleOf(node, dq / heads), bias: inputOf(node, 5), keep, fill: attrFloat(node, 'mask_filter_value', -10000) });
  return [out, outputOf(node, 1) ? k : '', outputOf(node, 2) ? v : ''];
};

/**
 * GroupQueryAttention: query [B, S, N·H] (or packed q|k|v when key is absent), key/value [B, S, Nkv·H],
 * past_key/past_value [B, Nkv, P, H], seqlens_k [B] (total length − 1 per row), total_sequence_length,
 * cos_cache/sin_cache (do_rotary). Always causal. Outputs: output [B, S, N·H], present_key/value
 * [B, Nkv, P + S, H]. Sliding windows, softcap, smooth softmax and head sinks are not decomposed.
 */
export const groupQueryAttention: Decomposition = (node, b) => {
  refuseUnless(attrInt(node, 'local_window_size', -1) === -1, 'a local attention window');
  refuseUnless(attrFloat(node, 'softcap', 0) === 0 && attrInt(node, 'smooth_softmax', 0) === 0, 'softcap or smooth softmax');
  refuseUnless(!inputOf(node, 11) && !outputOf(node, 3), 'head sinks or the qk output');
  const heads = attrInt(node, 'num_heads', 0);
  const kvHeads = attrInt(node, 'kv_num_heads', 0);
  refuseUnless(heads > 0 && kvHeads > 0 && heads % kvHeads === 0, 'num_heads not a multiple of kv_num_heads');
  const query = inputOf(node, 0);
  const [batch, seq, dIn] = b.shape(query);
  let q3 = query;
  let k3 = inputOf(node, 1);
  let v3 = inputOf(node, 2);
  let h: number;
  if (!k3) {
    h = dIn / (heads + 2 * kvHeads);
    q3 = b.slice(query, 2, 0, heads * h);
    k3 = b.slice(query, 2, heads * h, (heads + kvHeads) * h);
    v3 = b.slice(query, 2, (heads + kvHeads) * h, (heads + 2 * kvHeads) * h);
  } else {
    h = dIn / heads;
  }
  refuseUnless(Number.isInteger(h), 'a hidden size that is not a multiple of the heads');
  const pastKey = inputOf(node, 3);
  const pastValue = inputOf(node, 4);
  const past = pastKey ? b.shape(pastKey)[2] : 0;
  const total = past + seq;
  const presentMeta = outputOf(node, 1) ? b.meta.get(outputOf(node, 1)) : undefined;
  refuseUnless(!presentMeta || presentMeta.shape[2] === total, 'a present cache longer than past + new (shared buffer)');

  if (attrInt(node, 'do_rotary', 0) !== 0) {
    const interleaved = attrInt(node, 'rotary_interleaved', 0) !== 0;
    const positions = inputOf(node, 9) || b.ints(Array.from({ length: seq }, (_, i) => past + i), [1, seq]);
    q3 = rotaryBsd(b, q3, heads, inputOf(node, 7), inputOf(node, 8), positions, interleaved);
    k3 = rotaryBsd(b, k3, kvHeads, inputOf(node, 7), inputOf(node, 8), positions, interleaved);
  }
  const q = splitHeads(b, q3, heads);                                                // [B, N, S, H]
  let k = splitHeads(b, k3, kvHeads);                                                // [B, Nkv, S, H]
  let v = splitHeads(b, v3, kvHeads);
  if (past > 0) {
    k = withPast(b, pastKey, k);
    v = withPast(b, pastValue, v);
  }
  const presentKey = k;
  const presentValue = v;
  const group = heads / kvHeads;
  if (group > 1) {
    // Query head i reads kv head ⌊i / group⌋: [B, Nkv, T, H] → [B, Nkv, group, T, H] → [B, N, T, H].
    const repeat = (x: string): string => b.reshape(b.expand(b.reshape(x, [batch, kvHeads, 1, total, h]), [batch, kvHeads, group, total, h]), [batch, heads, total, h]);
    k = repeat(k);
    v = repeat(v);
  }
  const seqlens = inputOf(node, 5);
  let keep = causalKeep(b, seq, total);
  if (seqlens) keep = combine(b, keep, lengthKeep(b, b.addInt(b.cast(seqlens, DataType.int64), 1), total));
  const out = attend(b, { q, k, v, scale: scaleOf(node, h), bias: inputOf(node, 10), keep, fill: lowestOf(b.dtype(query)) });
  return [out, outputOf(node, 1) ? presentKey : '', outputOf(node, 2) ? presentValue : ''];
};
