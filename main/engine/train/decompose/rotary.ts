/**
 * Rotary position embedding (com.microsoft RotaryEmbedding), and the rotation GroupQueryAttention applies
 * when do_rotary = 1.
 *
 * For a head vector x [H] at position p, with rd = rotary_embedding_dim (≤ H), half = rd/2,
 * c = cos_cache[p] [half], s = sin_cache[p] [half]:
 *   non-interleaved (halves):  x1 = x[0:half], x2 = x[half:rd]
 *                              y[0:half] = x1·c − x2·s,  y[half:rd] = x2·c + x1·s
 *   interleaved (pairs):       y[2i] = x[2i]·c_i − x[2i+1]·s_i,  y[2i+1] = x[2i+1]·c_i + x[2i]·s_i
 *   y[rd:H] = x[rd:H] (partial rotary)
 * Input layouts: [B, S, N·H] (num_heads given, or H = rd when rotary_embedding_dim is 0) or [B, N, S, H].
 * position_ids: [B, S], or [1] holding an offset (positions offset … offset + S − 1).
 */
import { DataType } from '../../onnx/dtype.ts';
import { attrFloat, attrInt } from '../../onnx/graph.ts';
import type { DecomposeBuilder } from './builder.ts';
import { inputOf, refuseUnless, type Decomposition } from './rule.ts';

/** cos_cache / sin_cache rows for `positions` ([B|1, S] int), as [B|1, S, half]. */
export function gatherCache(b: DecomposeBuilder, cache: string, positions: string): string {
  refuseUnless(b.shape(cache).length === 2, 'a cos/sin cache that is not [max_sequence, rotary_dim / 2]');
  return b.gather(cache, positions);
}

/** Positions [1, S] from an offset tensor of shape [1] (or the [B, S] ids as they are). */
export function positionsOf(b: DecomposeBuilder, positionIds: string, seq: number): string {
  const shape = b.shape(positionIds);
  if (shape.length === 2) return positionIds;
  refuseUnless(shape.length === 1 && shape[0] === 1, 'position_ids that are neither [B, S] nor a [1] offset');
  const offset = b.cast(positionIds, DataType.int64);
  return b.add(b.ints(Array.from({ length: seq }, (_, i) => i), [1, seq]), offset);
}

/**
 * Rotates the first rd features of the last axis of x (rank 4); cos and sin broadcast against
 * x[..., 0:rd/2] (the caller shapes them, e.g. [B, S, 1, half] for [B, S, N, H]).
 */
export function rotate(b: DecomposeBuilder, x: string, cos: string, sin: string, rd: number, interleaved: boolean): string {
  const shape = b.shape(x);
  const h = shape[shape.length - 1];
  const half = rd / 2;
  const rest = rd < h ? [b.slice(x, -1, rd, h)] : [];
  let rotated: string;
  if (!interleaved) {
    const x1 = b.slice(x, -1, 0, half);
    const x2 = b.slice(x, -1, half, rd);
    const y1 = b.sub(b.mul(x1, cos), b.mul(x2, sin));
    const y2 = b.add(b.mul(x2, cos), b.mul(x1, sin));
    rotated = b.concat([y1, y2], -1);
  } else {
    const lead = shape.slice(0, -1);
    const pairs = b.reshape(b.slice(x, -1, 0, rd), [...lead, half, 2]);          // [..., half, 2]
    const even = b.slice(pairs, -1, 0, 1);
    const odd = b.slice(pairs, -1, 1, 2);
    const c = b.reshape(cos, [...b.shape(cos), 1]);
    const s = b.reshape(sin, [...b.shape(sin), 1]);
    const ye = b.sub(b.mul(even, c), b.mul(odd, s));
    const yo = b.add(b.mul(odd, c), b.mul(even, s));
    rotated = b.reshape(b.concat([ye, yo], -1), [...lead, rd]);
  }
  return b.concat([rotated, ...rest], -1);
}

/**
 * Rotary embedding of x in layout [B, S, N·H] with `heads` heads: cos/sin gathered at `positions`
 * ([B|1, S]), returned in the same layout.
 */
export function rotaryBsd(b: DecomposeBuilder, x: string, heads: number, cosCache: string, sinCache: string, positions: string, interleaved: boolean): string {
  const [batch, seq, d] = b.shape(x);
  const half = b.shape(cosCache)[1];
  const h = d / heads;
  refuseUnless(Number.isInteger(h) && 2 * half <= h, 'a rotary dimension larger than the head size');
  const cos = gatherCache(b, cosCache, positions);                                   // [Bc, S, half]
  const sin = gatherCache(b, sinCache, positions);
  const bc = b.shape(cos)[0];
  const x4 = b.reshape(x, [batch, seq, heads, h]);
  const y = rotate(b, x4, b.reshape(cos, [bc, seq, 1, half]), b.reshape(sin, [bc, seq, 1, half]), 2 * half, interleaved);
  return b.reshape(y, [batch, seq, d]);
}

export const rotaryEmbedding: Decomposition = (node, b) => {
  refuseUnless(attrFloat(node, 'scale', 1) === 1, 'a scale other than 1');
  refuseUnless(attrInt(node, 'is_packed_batching', 0) === 0, 'packed batching');
  const x = inputOf(node, 0);
  const shape = b.shape(x);
  const cosCache = inputOf(node, 2);
  const sinCache = inputOf(node, 3);
  const interleaved = attrInt(node, 'interleaved', 0) !== 0;
  const half = b.shape(cosCache)[1];
  const rdAttr = attrInt(node, 'rotary_embedding_dim', 0);
  refuseUnless(rdAttr === 0 || rdAttr === 2 * half, 'rotary_embedding_dim different from the cache width');
  if (shape.length === 3) {
    const [, seq, d] = shape;
    let heads = attrInt(node, 'num_heads', 0);
    if (heads === 0) {
      refuseUnless(rdAttr === 0, 'a partial rotary dimension without num_heads');
      heads = d / (2 * half);
    }
    refuseUnless(Number.isInteger(heads) && heads > 0, 'a hidden size that is not a multiple of the head size');
    return [rotaryBsd(b, x, heads, cosCache, sinCache, positionsOf(b, inputOf(node, 1), seq), interleaved)];
  }
  refuseUnless(shape.length === 4, 'an input that is neither [B, S, D] nor [B, N, S, H]');
  const [, , seq] = shape;
  const positions = positionsOf(b, inputOf(node, 1), seq);
  const cos = gatherCache(b, cosCache, positions);
  const sin = gatherCache(b, sinCache, positions);
  const bc = b.shape(cos)[0];
  return [rotate(b, x, b.reshape(cos, [bc, 1, seq, half]), b.reshape(sin, [bc, 1, seq, half]), 2 * half, interleaved)];
};
