/**
 * Normalizations from onnxruntime's contrib set, over the last axis of x [..., D]:
 *   SimplifiedLayerNormalization (RMSNorm)  y = x / √(mean(x²) + ε) · γ           (statistics in float32)
 *   SkipSimplifiedLayerNormalization         s = input + skip (+ bias); y = RMSNorm(s)
 *   SkipLayerNormalization                   s = input + skip (+ bias); y = LayerNorm(s, γ, β)
 *   LayerNormalization (com.microsoft)       the standard LayerNormalization-17
 *   EmbedLayerNormalization                  s = W[ids] + P[pos] (+ S[segment]); y = LayerNorm(s, γ, β)
 * Outputs as the contrib ops define them: output, mean, inv_std_var (float32, [..., 1]), the sum s.
 * The mean of the simplified forms is "not used" by onnxruntime; it is never produced here.
 */
import { DataType } from '../../onnx/dtype.ts';
import { attrFloat, attrInt, getAttribute } from '../../onnx/graph.ts';
import type { NodeProto } from '../../onnx/proto-types.ts';
import { normAxis, type DecomposeBuilder } from './builder.ts';
import { inputOf, outputOf, refuseUnless, type Decomposition } from './rule.ts';

const DEFAULT_EPSILON = 1e-5;

/** `t` reshaped / cast to the meta the probe recorded for the node's output `name` (when it differs). */
export function fitTo(b: DecomposeBuilder, t: string, name: string): string {
  const want = b.meta.get(name);
  if (!want) return t;
  return b.reshape(b.cast(t, want.dtype), want.shape);
}

/**
 * RMSNorm of x over axes [axis, rank): x̂ = x · rstd with rstd = 1/√(mean(x²) + ε), in float32;
 * y = cast(x̂) · γ. Returns y and √(mean(x²) + ε) ([..., 1], float32).
 */
export function rmsNorm(b: DecomposeBuilder, x: string, gamma: string, epsilon: number, axis = -1): { y: string; std: string } {
  const dtype = b.dtype(x);
  const rank = b.shape(x).length;
  const axes: number[] = [];
  for (let a = normAxis(axis, rank); a < rank; a++) axes.push(a);
  const x32 = b.cast(x, DataType.float32);
  const meanSquare = b.reduceMean(b.mul(x32, x32), axes);              // [..., 1]
  const std = b.unary('Sqrt', b.addScalar(meanSquare, epsilon));        // [..., 1]
  const normalized = b.cast(b.div(x32, std), dtype);                    // [..., D]
  const y = b.mul(normalized, gamma);
  return { y, std };
}

function invStdOf(b: DecomposeBuilder, std: string): string {
  return b.div(b.floats([1], DataType.float32), std);
}

function skipSum(b: DecomposeBuilder, input: string, skip: string, bias: string): string {
  const s = b.add(input, skip);
  return bias ? b.add(s, bias) : s;
}

export const simplifiedLayerNorm: Decomposition = (node, b) => {
  refuseUnless(attrInt(node, 'stash_type', 1) === 1, 'stash_type other than float32');
  const { y, std } = rmsNorm(b, inputOf(node, 0), inputOf(node, 1), attrFloat(node, 'epsilon', DEFAULT_EPSILON), attrInt(node, 'axis', -1));
  return [y, outputOf(node, 1) ? fitTo(b, invStdOf(b, std), outputOf(node, 1)) : ''];
};

export const skipSimplifiedLayerNorm: Decomposition = (node, b) => {
  refuseUnless(!outputOf(node, 1), 'the mean output of SkipSimplifiedLayerNormalization is not defined');
  const sum = skipSum(b, inputOf(node, 0), inputOf(node, 1), inputOf(node, 3));
  const { y, std } = rmsNorm(b, sum, inputOf(node, 2), attrFloat(node, 'epsilon', DEFAULT_EPSILON));
  return [y, '', outputOf(node, 2) ? fitTo(b, invStdOf(b, std), outputOf(node, 2)) : '', sum];
};

export const skipLayerNorm: Decomposition = (node, b) => {
  const sum = skipSum(b, inputOf(node, 0), inputOf(node, 1), inputOf(node, 4));
  const wantMean = outputOf(node, 1) !== '';
  const wantInvStd = outputOf(node, 2) !== '';
  const ln = b.layerNorm(sum, inputOf(node, 2), inputOf(node, 3), attrFloat(node, 'epsilon', DEFAULT_EPSILON), { mean: wantMean, invStd: wantInvStd });
  return [ln.y, wantMean ? fitTo(b, ln.mean, outputOf(node, 1)) : '', wantInvStd ? fitTo(b, ln.invStd, outputOf(node, 2)) : '', sum];
};

export const contribLayerNorm: Decomposition = (node, b) => {
  refuseUnless(attrInt(node, 'axis', -1) === -1 || normAxis(attrInt(node, 'axis', -1), b.shape(inputOf(node, 0)).length) === b.shape(inputOf(node, 0)).length - 1, 'LayerNormalization over several axes');
  refuseUnless(getAttribute(node, 'stash_type') === undefined || attrInt(node, 'stash_type', 1) === 1, 'stash_type other than float32');
  const wantMean = outputOf(node, 1) !== '';
  const wantInvStd = outputOf(node, 2) !== '';
  const ln = b.layerNorm(inputOf(node, 0), inputOf(node, 1), inputOf(node, 2), attrFloat(node, 'epsilon', DEFAULT_EPSILON), { mean: wantMean, invStd: wantInvStd });
  return [ln.y, wantMean ? fitTo(b, ln.mean, outputOf(node, 1)) : '', wantInvStd ? fitTo(b, ln.invStd, outputOf(node, 2)) : ''];
};

/**
 * EmbedLayerNormalization. Inputs: input_ids [B, S], segment_ids?, word_embedding [V, D],
 * position_embedding [P, D], segment_embedding?, gamma, beta, mask? [B, S], position_ids? ([B, S] or [1, S];
 * absent: 0 … S−1). Outputs: output [B, S, D], mask_index [B] int32 (the count of mask ones; zeros without a
 * mask), embedding_sum [B, S, D].
 */
export const embedLayerNorm: Decomposition = (node: NodeProto, b) => {
  refuseUnless(attrInt(node, 'mask_index_type', 1) === 1 || !outputOf(node, 1), 'mask_index_type other than 1');
  const ids = inputOf(node, 0);
  const [batch, seq] = b.shape(ids);
  const word = b.gather(inputOf(node, 2), ids);                                         // [B, S, D]
  let positions = inputOf(node, 8);
  if (!positions) positions = b.ints(Array.from({ length: seq }, (_, i) => i), [1, seq]);
  let sum = b.add(word, b.gather(inputOf(node, 3), positions));                         // [B, S, D]
  if (inputOf(node, 1) && inputOf(node, 4)) sum = b.add(sum, b.gather(inputOf(node, 4), inputOf(node, 1)));
  const ln = b.layerNorm(sum, inputOf(node, 5), inputOf(node, 6), attrFloat(node, 'epsilon', 1e-12), { mean: false, invStd: false });
  let maskIndex = '';
  if (outputOf(node, 1)) {
    const mask = inputOf(node, 7);
    maskIndex = mask
      ? b.reduceSum(b.cast(mask, DataType.int32), [1], false)                           // [B] valid tokens per row
      : b.int32s(new Array<number>(batch).fill(0), [batch]);
  }
  return [ln.y, maskIndex, sum];
};
