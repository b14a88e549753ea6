/**
 * Gather and GatherElements: the gradient scatters g back into zeros of the data's shape, adding where
 * an index repeats (reduction 'add', opset ≥ 16 — a token seen twice gets both gradients).
 *
 * Gather(data, idx; axis = 0), y = data[idx] of shape idx.shape + data.shape[1:]:
 *   ∂data = ScatterND(zeros, idx[..., None], g, reduction = 'add')  (g is already the updates tensor).
 * axis = k > 0: y has shape pre + idx.shape + post; g is transposed to idx.shape + pre + post, scattered
 *   into zeros [N] + pre + post, and transposed back to pre + [N] + post.
 * GatherElements(data, idx; axis): ∂data = ScatterElements(zeros, idx, g, axis, reduction = 'add').
 * Negative indices are wrapped (idx + N) first; int32 indices are cast to int64 for ScatterND.
 */
import { DataType } from '../../../onnx/dtype.ts';
import { attrInt, intAttr, stringAttr } from '../../../onnx/graph.ts';
import { normAxis, type GradBuilder } from '../builder.ts';
import { onlyGrad, type Rule } from './rule.ts';

/** Indices as int64 in [0, n): Where(idx < 0, idx + n, idx). */
function wrapIndices(b: GradBuilder, idx: string, n: number): string {
  const i64 = b.cast(idx, DataType.int64);
  const shape = b.shape(i64);
  const negative = b.op('Less', [i64, b.int(0)], { dtype: DataType.bool, shape });
  return b.op('Where', [negative, b.add(i64, b.int(n)), i64], { dtype: DataType.int64, shape });
}

export const gather: Rule = ({ b }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [data, idx] = node.input;
  const dm = b.meta(data);
  const rank = dm.shape.length;
  const axis = normAxis(attrInt(node, 'axis', 0), rank);
  const n = dm.shape[axis];
  const iShape = b.shape(idx);
  const q = iShape.length;
  const index = b.reshape(wrapIndices(b, idx, n), [...iShape, 1]);
  const add = [stringAttr('reduction', 'add')];
  if (axis === 0) {
    return [b.op('ScatterND', [b.zeros(dm.shape, dm.dtype), index, g], dm, add, 'ScatterND'), null];
  }
  const pre = dm.shape.slice(0, axis);
  const post = dm.shape.slice(axis + 1);
  const gRank = b.shape(g).length;
  const perm = [...Array(q).keys()].map((i) => axis + i);
  for (let i = 0; i < axis; i++) perm.push(i);
  for (let i = axis + q; i < gRank; i++) perm.push(i);
  const updates = b.transpose(g, perm);
  const moved = [n, ...pre, ...post];
  const scattered = b.op('ScatterND', [b.zeros(moved, dm.dtype), index, updates], { dtype: dm.dtype, shape: moved }, add, 'ScatterND');
  const back = [...pre.map((_, i) => i + 1), 0, ...post.map((_, i) => axis + 1 + i)];
  return [b.transpose(scattered, back), null];
};

export const gatherElements: Rule = ({ b }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [data, idx] = node.input;
  const dm = b.meta(data);
  const axis = normAxis(attrInt(node, 'axis', 0), dm.shape.length);
  const index = wrapIndices(b, idx, dm.shape[axis]);
  return [b.op('ScatterElements', [b.zeros(dm.shape, dm.dtype), index, g], dm, [intAttr('axis', axis), stringAttr('reduction', 'add')]), null];
};
