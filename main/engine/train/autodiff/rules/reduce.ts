/**
 * ReduceSum / ReduceMean over `axes` (an attribute in older opsets, an input in newer ones; empty =
 * every axis unless noop_with_empty_axes): ∂x = g reshaped to the kept-dims shape and expanded back to
 * x's shape, divided by the number of elements averaged for the mean (on the small tensor, before the
 * Expand).
 */
import { attrInt, attrInts } from '../../../onnx/graph.ts';
import { normAxis } from '../builder.ts';
import { constantInput, inputAt, onlyGrad, type Rule } from './rule.ts';

function reduction(mean: boolean): Rule {
  return (ctx, node, gy) => {
    const { b } = ctx;
    const g = onlyGrad(node, gy);
    const x = node.input[0];
    const xShape = b.shape(x);
    const rank = xShape.length;
    const axesGiven = inputAt(node, 1) !== undefined ? constantInput(ctx, node, 1, 'axes') : attrInts(node, 'axes') ?? [];
    if (axesGiven.length === 0 && attrInt(node, 'noop_with_empty_axes', 0) !== 0) return [b.reshape(g, xShape), null];
    const axes = new Set(axesGiven.length === 0 ? [...Array(rank).keys()] : axesGiven.map((a) => normAxis(a, rank)));
    const kept = xShape.map((d, i) => (axes.has(i) ? 1 : d));
    let count = 1;
    for (const a of axes) count *= xShape[a];
    const small = b.reshape(mean ? b.scale(g, 1 / count) : g, kept);
    return [b.expand(small, xShape), null];
  };
}

export const reduceSum = reduction(false);
export const reduceMean = reduction(true);
