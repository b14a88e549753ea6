/**
 * Fake quantization: QuantizeLinear → DequantizeLinear, differentiated with the straight-through
 * estimator (TRAINING.md, "QuantizeLinear→DequantizeLinear (fake quant, QAT)").
 *
 *   q = saturate(round(x / s) + zp)      (integer, per tensor, per axis, or blocked along `axis`)
 *   y = (q − zp) · s
 *   ∂x = Where(qmin − ½ ≤ x / s + zp ≤ qmax + ½, ∂y, 0)   (computed as |x − y| ≤ |s|/2)
 *
 * The gradient crosses the integer tensor q in value units: DequantizeLinear hands ∂y to q unchanged and
 * QuantizeLinear masks it to the values that round into the grid (those that saturate get none); a Clip
 * between them (a grid narrower than the integer type: 4-bit values in uint8) masks it to its bounds.
 * The differentiable region lets a gradient through QuantizeLinear's integer output, and through a
 * Clip of it, for that reason (STRAIGHT_THROUGH in index.ts); scales and zero points get no gradient (their inputs are not followed,
 * GRADIENT_INPUTS), so they may be computed from the weights in the graph (min/max per block) without
 * rules for those ops.
 */
import { WhittleError } from '../../../errors.ts';
import { DataType } from '../../../onnx/dtype.ts';
import type { NodeProto } from '../../../onnx/proto-types.ts';
import { normAxis, sizeOf, type GradBuilder } from '../builder.ts';
import { inputAt, onlyGrad, type Rule } from './rule.ts';
import { intAttr } from '../../../onnx/graph.ts';

/** The integer range [qmin, qmax] of a quantized type. */
export function quantRange(dtype: number): [number, number] {
  switch (dtype) {
    case DataType.uint8: return [0, 255];
    case DataType.int8: return [-128, 127];
    case DataType.uint16: return [0, 65535];
    case DataType.int16: return [-32768, 32767];
    case DataType.uint4: return [0, 15];
    case DataType.int4: return [-8, 7];
    default: throw new WhittleError('UNSUPPORTED_MODEL', `Whittle cannot train through QuantizeLinear to data type ${dtype}; it handles (u)int4, (u)int8 and (u)int16.`, { dtype });
  }
}

function attr(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

/**
 * A scale or zero point (float) broadcast against x [..., K (at axis), ...]: a scalar as it is, a 1-D
 * per-axis vector reshaped to [1, …, C, …, 1], a blocked [..., ⌈K/bs⌉, ...] repeated bs times along the
 * axis (Unsqueeze → Expand → Reshape, then sliced to K).
 */
function alongX(b: GradBuilder, p: string, xShape: number[], axis: number, blockSize: number): string {
  const pShape = b.shape(p);
  if (sizeOf(pShape) === 1) return b.reshape(p, []);
  if (blockSize > 0) {
    const kb = pShape[axis];
    const withBlock = [...pShape.slice(0, axis + 1), 1, ...pShape.slice(axis + 1)];
    const repeated = b.expand(b.reshape(p, withBlock), [...pShape.slice(0, axis + 1), blockSize, ...pShape.slice(axis + 1)]);
    const flat = b.reshape(repeated, [...pShape.slice(0, axis), kb * blockSize, ...pShape.slice(axis + 1)]);
    if (kb * blockSize === xShape[axis]) return flat;
    return b.slice(flat, [0], [xShape[axis]], [axis], [1], xShape);
  }
  if (pShape.length === 1) return b.reshape(p, xShape.map((d, i) => (i === axis ? d : 1)));
  throw new WhittleError('UNSUPPORTED_MODEL', `A QuantizeLinear scale of shape [${pShape.join(', ')}] fits neither per-tensor, per-axis nor blocked quantization of [${xShape.join(', ')}].`);
}

/**
 * QuantizeLinear (x, s, zp?): the straight-through gradient, masked to the values that round into the
 * grid. A value rounds into the grid exactly when its rounding error is at most half a step:
 * |x − (q − zp)·s| ≤ |s|/2 (a saturated value is more than half a step from the end of the grid), so the
 * mask is computed from the node's own output, dequantized with the same scale and zero point (no float
 * copy of the integer zero point is needed). The bound carries a relative slack of 2⁻¹⁰ of a step for
 * the float rounding of the difference.
 */
export const quantizeLinear: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  if (!needs(0)) return [null, null, null];
  const [x, s] = node.input;
  const zp = inputAt(node, 2);
  const xMeta = b.meta(x);
  const axis = normAxis(attr(node, 'axis', 1), Math.max(1, xMeta.shape.length));
  const blockSize = attr(node, 'block_size', 0);
  const dtype = xMeta.dtype;
  const layout = node.attribute.filter((a) => a.name === 'axis' || a.name === 'block_size');
  const back = b.op('DequantizeLinear', zp ? [node.output[0], s, zp] : [node.output[0], s], xMeta, layout);
  const error = b.unary('Abs', b.sub(x, back));
  const halfStep = b.mul(b.unary('Abs', alongX(b, s, xMeta.shape, axis, blockSize)), b.scalar(0.5 * (1 + 2 ** -10), dtype));
  const outside = b.op('Greater', [error, halfStep], { dtype: DataType.bool, shape: xMeta.shape });
  return [b.op('Where', [outside, b.scalar(0, dtype), g], b.meta(g)), null, null];
};

/**
 * Clip (x, min?, max?): ∂x = Where(min ≤ x ≤ max, g, 0). On a quantized integer tensor (a grid narrower
 * than its type, e.g. 4-bit values held in uint8) it passes the straight-through gradient of the values
 * inside the narrower grid; the comparison is made in float.
 */
export const clip: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  if (!needs(0)) return [null, null, null];
  const dtype = b.dtype(g);
  const asFloat = (t: string): string => (b.dtype(t) === dtype ? t : b.op('Cast', [t], { dtype, shape: b.shape(t) }, [intAttr('to', dtype)]));
  const x = asFloat(node.input[0]);
  const shape = b.shape(node.input[0]);
  const bool = { dtype: DataType.bool, shape };
  const lo = inputAt(node, 1), hi = inputAt(node, 2);
  const zero = b.scalar(0, dtype);
  let out = g;
  if (lo) out = b.op('Where', [b.op('Less', [x, asFloat(lo)], bool), zero, out], b.meta(g));
  if (hi) out = b.op('Where', [b.op('Greater', [x, asFloat(hi)], bool), zero, out], b.meta(g));
  return [out, null, null];
};

/** DequantizeLinear (q, s, zp?): hands ∂y to q in value units (the other half of the straight-through pair). */
export const dequantizeLinear: Rule = ({ needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  return [needs(0) ? g : null, null, null];
};
