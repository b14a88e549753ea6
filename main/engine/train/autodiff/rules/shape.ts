/**
 * Ops that move elements without arithmetic. Shapes are static, so every backward is a reshape, a
 * permutation, a split/concat or a zero-padding of g back to the input's shape.
 */
import { WhittleError } from '../../../errors.ts';
import { attrInt, attrInts, attrString, intAttr } from '../../../onnx/graph.ts';
import { normAxis, sizeOf, type GradBuilder } from '../builder.ts';
import { constantInput, inputAt, onlyGrad, type Grad, type Rule } from './rule.ts';

/** Reshape / Squeeze / Unsqueeze / Flatten / Identity: ∂x = g reshaped to x's shape. */
export const reshapeBack: Rule = ({ b }, node, gy) => [b.reshape(onlyGrad(node, gy), b.shape(node.input[0]))];

/** y = Transpose(x, perm): ∂x = Transpose(g, perm⁻¹). The default perm reverses the axes. */
export const transpose: Rule = ({ b }, node, gy) => {
  const rank = b.shape(node.input[0]).length;
  const perm = attrInts(node, 'perm') ?? [...Array(rank).keys()].reverse();
  const inverse: number[] = new Array<number>(rank);
  perm.forEach((p, i) => { inverse[p] = i; });
  return [b.transpose(onlyGrad(node, gy), inverse)];
};

/** y = Expand(x, shape): ∂x = g summed over the expanded axes. */
export const expand: Rule = ({ b }, node, gy) => [b.reduceToShape(onlyGrad(node, gy), b.shape(node.input[0])), null];

/** y = Concat(x₀, x₁, …; axis): ∂xᵢ = the i-th piece of Split(g, sizes). */
export const concat: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const shape = b.shape(g);
  const axis = normAxis(attrInt(node, 'axis', 0), shape.length);
  const sizes = node.input.map((x) => b.shape(x)[axis]);
  if (node.input.length === 1) return [g];
  const metas = sizes.map((s) => ({ dtype: b.dtype(g), shape: shape.map((d, i) => (i === axis ? s : d)) }));
  const pieces = b.opMulti('Split', [g, b.ints(sizes)], metas, [intAttr('axis', axis)]);
  return node.input.map((_, i) => (needs(i) ? pieces[i] : null));
};

/** y₀, y₁, … = Split(x; axis): ∂x = Concat(g₀, g₁, …) with zeros for outputs no gradient reached. */
export const split: Rule = ({ b }, node, gy) => {
  const x = node.input[0];
  const axis = normAxis(attrInt(node, 'axis', 0), b.shape(x).length);
  const parts = node.output.map((o, i) => gy[i] ?? b.zeros(b.shape(o), b.dtype(x)));
  if (parts.length === 1) return [parts[0], null];
  return [b.op('Concat', parts, b.meta(x), [intAttr('axis', axis)]), null];
};

/**
 * y = Slice(x, starts, ends, axes, steps), each axis taking n elements from `first` with stride `step`.
 * ∂x puts g back in place with zeros elsewhere, axis by axis:
 *   step < 0: reverse g along the axis, so it runs forwards from the last element taken;
 *   |step| > 1: interleave zeros, [..., n, ...] → [..., n, |step|, ...] (Pad) → [..., n·|step|, ...]
 *     and drop the |step|−1 trailing zeros after the last element;
 *   then one Pad for the offsets before and after, over every axis at once.
 */
export const slice: Rule = (ctx, node, gy) => {
  const { b } = ctx;
  let g = onlyGrad(node, gy);
  const inShape = b.shape(node.input[0]);
  const rank = inShape.length;
  const starts = constantInput(ctx, node, 1, 'starts');
  const ends = constantInput(ctx, node, 2, 'ends');
  const axes = inputAt(node, 3) !== undefined ? constantInput(ctx, node, 3, 'axes') : starts.map((_, i) => i);
  const steps = inputAt(node, 4) !== undefined ? constantInput(ctx, node, 4, 'steps') : starts.map(() => 1);
  const before = new Array<number>(rank).fill(0);
  const after = new Array<number>(rank).fill(0);
  axes.forEach((rawAxis, j) => {
    const axis = normAxis(rawAxis, rank);
    const dim = inShape[axis];
    const { first, count, step } = sliceRange(starts[j], ends[j], steps[j], dim);
    if (count === 0) {
      throw new WhittleError('UNSUPPORTED_MODEL', `Slice node '${node.name ?? ''}' takes no elements along axis ${axis}; remove the empty slice before training.`);
    }
    let lowest = first;
    if (step < 0) {
      g = reverseAxis(b, g, axis);
      lowest = first + (count - 1) * step;
    }
    const stride = Math.abs(step);
    if (stride > 1) g = interleaveZeros(b, g, axis, stride);
    before[axis] = lowest;
    after[axis] = dim - lowest - ((count - 1) * stride + 1);
  });
  return [b.pad(g, [...before, ...after]), null, null, null, null];
};

/** The elements a Slice takes along one axis of size `dim` (ONNX clamping rules). */
export function sliceRange(start: number, end: number, step: number, dim: number): { first: number; count: number; step: number } {
  if (step === 0) throw new WhittleError('UNSUPPORTED_MODEL', 'A Slice step of 0 is invalid.');
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    return { first: s, count: Math.max(0, Math.ceil((e - s) / step)), step };
  }
  s = Math.min(Math.max(s, -1), dim - 1);
  e = Math.min(Math.max(e, -1), dim - 1);
  return { first: s, count: Math.max(0, Math.ceil((e - s) / step)), step };
}

function reverseAxis(b: GradBuilder, g: string, axis: number): string {
  const shape = b.shape(g);
  return b.slice(g, [-1], [-(2 ** 53)], [axis], [-1], shape);
}

/** [..., n, ...] → [..., (n−1)·s + 1, ...] with s−1 zeros between consecutive elements. */
function interleaveZeros(b: GradBuilder, g: string, axis: number, s: number): string {
  const shape = b.shape(g);
  const n = shape[axis];
  const withSlot = [...shape.slice(0, axis + 1), 1, ...shape.slice(axis + 1)];
  const r = withSlot.length;
  const pads = new Array<number>(2 * r).fill(0);
  pads[r + axis + 1] = s - 1;
  const padded = b.pad(b.reshape(g, withSlot), pads);
  const merged = b.reshape(padded, shape.map((d, i) => (i === axis ? n * s : d)));
  const keep = (n - 1) * s + 1;
  return b.slice(merged, [0], [keep], [axis], [1], shape.map((d, i) => (i === axis ? keep : d)));
}

/** y = Tile(x, repeats): view g as [r₀, d₀, r₁, d₁, …] and sum the r axes. */
export const tile: Rule = ({ b }, node, gy) => {
  const g = onlyGrad(node, gy);
  const inShape = b.shape(node.input[0]);
  const outShape = b.shape(g);
  const split: number[] = [];
  inShape.forEach((d, i) => split.push(outShape[i] / d, d));
  const axes = inShape.map((_, i) => 2 * i).filter((i) => split[i] !== 1);
  return [b.reshape(b.reduceSum(b.reshape(g, split), axes, false), inShape), null];
};

/**
 * y = Pad(x, pads, value; mode 'constant'): ∂x is g without the padding. Positive pads are sliced
 * off; negative pads (elements cut from x) are padded back with zeros.
 */
export const pad: Rule = (ctx, node, gy) => {
  const { b } = ctx;
  if (attrString(node, 'mode', 'constant') !== 'constant') {
    throw new WhittleError('UNSUPPORTED_MODEL', `Pad node '${node.name ?? ''}' uses mode '${attrString(node, 'mode', 'constant')}'; training supports constant padding only.`, { op: 'Pad', node: node.name });
  }
  const g = onlyGrad(node, gy);
  const inShape = b.shape(node.input[0]);
  const rank = inShape.length;
  const raw = constantInput(ctx, node, 1, 'pads');
  const axes = inputAt(node, 3) !== undefined ? constantInput(ctx, node, 3, 'axes').map((a) => normAxis(a, rank)) : [...Array(rank).keys()];
  const pads = new Array<number>(2 * rank).fill(0);
  axes.forEach((a, j) => { pads[a] = raw[j]; pads[a + rank] = raw[j + axes.length]; });
  const outShape = b.shape(g);
  const cutAxes: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < rank; i++) {
    const s = Math.max(pads[i], 0);
    const e = outShape[i] - Math.max(pads[i + rank], 0);
    if (s !== 0 || e !== outShape[i]) { cutAxes.push(i); starts.push(s); ends.push(e); }
  }
  const cutShape = outShape.map((d, i) => d - Math.max(pads[i], 0) - Math.max(pads[i + rank], 0));
  const cut = cutAxes.length ? b.slice(g, starts, ends, cutAxes, cutAxes.map(() => 1), cutShape) : g;
  const back = pads.map((p) => Math.max(-p, 0));
  const out: Grad[] = [b.pad(cut, back), null, null, null];
  if (sizeOf(b.shape(out[0] as string)) !== sizeOf(inShape)) throw new WhittleError('INTERNAL', `Autodiff: Pad backward of '${node.name ?? ''}' has the wrong size.`);
  return out;
};
