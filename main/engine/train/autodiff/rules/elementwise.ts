/**
 * Broadcasting arithmetic and pointwise math. y = op(a, b) with numpy broadcasting; every input's
 * gradient is computed at y's shape and then summed over the axes that input was broadcast along
 * (`reduceToShape`), so nothing big is ever Expanded.
 */
import { WhittleError } from '../../../errors.ts';
import { DataType } from '../../../onnx/dtype.ts';
import type { GradBuilder } from '../builder.ts';
import { onlyGrad, type Grad, type Rule } from './rule.ts';

const reduce = (b: GradBuilder, g: string, input: string): string => b.reduceToShape(g, b.shape(input));

/** y = a + b: ∂a = g, ∂b = g. */
export const add: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  return [needs(0) ? reduce(b, g, node.input[0]) : null, needs(1) ? reduce(b, g, node.input[1]) : null];
};

/** y = a − b: ∂a = g, ∂b = −g (negated after the reduction, on the smaller tensor). */
export const sub: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  return [needs(0) ? reduce(b, g, node.input[0]) : null, needs(1) ? b.neg(reduce(b, g, node.input[1])) : null];
};

/** y = a · b: ∂a = g·b, ∂b = g·a. */
export const mul: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [x0, x1] = node.input;
  return [needs(0) ? reduce(b, b.mul(g, x1), x0) : null, needs(1) ? reduce(b, b.mul(g, x0), x1) : null];
};

/** y = a / b: ∂a = g/b, ∂b = −g·a/b² = −(g/b)·y. */
export const div: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [x0, x1] = node.input;
  const gOverB = b.div(g, x1);
  return [needs(0) ? reduce(b, gOverB, x0) : null, needs(1) ? b.neg(reduce(b, b.mul(gOverB, node.output[0]), x1)) : null];
};

/** y = Σ xᵢ (variadic, broadcasting): ∂xᵢ = g. */
export const sum: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  return node.input.map((x, i) => (needs(i) ? reduce(b, g, x) : null));
};

/** y = max(xᵢ) / min(xᵢ) (variadic, broadcasting): g flows to every input equal to y (ties share it whole). */
export const maxMin: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const y = node.output[0];
  const zero = b.scalar(0, b.dtype(g));
  return node.input.map((x, i) => {
    if (!needs(i)) return null;
    const hit = b.op('Equal', [x, y], { dtype: DataType.bool, shape: b.shape(y) });
    return reduce(b, b.op('Where', [hit, g, zero], b.meta(g)), x);
  });
};

/** y = Where(c, a, b): ∂a = Where(c, g, 0), ∂b = Where(c, 0, g). */
export const where: Rule = ({ b, needs }, node, gy) => {
  const g = onlyGrad(node, gy);
  const [c, x1, x2] = node.input;
  const zero = b.scalar(0, b.dtype(g));
  const out: Grad[] = [null, null, null];
  if (needs(1)) out[1] = reduce(b, b.op('Where', [c, g, zero], b.meta(g)), x1);
  if (needs(2)) out[2] = reduce(b, b.op('Where', [c, zero, g], b.meta(g)), x2);
  return out;
};

/** y = −x: ∂x = −g. */
export const neg: Rule = ({ b }, node, gy) => [b.neg(onlyGrad(node, gy))];

/** y = eˣ: ∂x = g·y. */
export const exp: Rule = ({ b }, node, gy) => [b.mul(onlyGrad(node, gy), node.output[0])];

/** y = ln x: ∂x = g/x. */
export const log: Rule = ({ b }, node, gy) => [b.div(onlyGrad(node, gy), node.input[0])];

/** y = √x: ∂x = g/(2y) = (g/y)·½. */
export const sqrt: Rule = ({ b }, node, gy) => [b.scale(b.div(onlyGrad(node, gy), node.output[0]), 0.5)];

/** y = 1/x: ∂x = −g·y². */
export const reciprocal: Rule = ({ b }, node, gy) => {
  const y = node.output[0];
  return [b.neg(b.mul(onlyGrad(node, gy), b.mul(y, y)))];
};

/**
 * y = xᵖ with p constant (or at least not trainable): ∂x = g·p·xᵖ⁻¹. A known scalar p gets the short
 * forms p = 1 (g), p = 2 (2·g·x), p = 0.5 (g/(2y)); otherwise Pow(x, p − 1) is computed in the graph.
 */
export const pow: Rule = (ctx, node, gy) => {
  const { b } = ctx;
  if (ctx.needs(1)) {
    throw new WhittleError('UNSUPPORTED_MODEL', `Pow node '${node.name ?? ''}' has a trainable exponent; training supports Pow only with a constant exponent. Freeze the tensors that feed its exponent.`,
      { op: 'Pow', node: node.name });
  }
  const g = onlyGrad(node, gy);
  const [x, p] = node.input;
  const dtype = b.dtype(x);
  const known = b.constantValues(p);
  if (known && known.length === 1) {
    const c = known[0];
    if (c === 1) return [reduce(b, g, x), null];
    if (c === 2) return [reduce(b, b.mul(g, b.scale(x, 2)), x), null];
    if (c === 0.5) return [reduce(b, b.scale(b.div(g, node.output[0]), 0.5), x), null];
    return [reduce(b, b.mul(g, b.scale(b.op('Pow', [x, b.scalar(c - 1, dtype)], b.meta(x)), c)), x), null];
  }
  const pf = b.cast(p, dtype);
  const xpm1 = b.op('Pow', [x, b.sub(pf, b.scalar(1, dtype))], b.meta(x));
  return [reduce(b, b.mul(g, b.mul(xpm1, pf)), x), null];
};

/** y = tanh x: ∂x = g·(1 − y²). */
export const tanh: Rule = ({ b }, node, gy) => {
  const y = node.output[0];
  return [b.mul(onlyGrad(node, gy), b.sub(b.scalar(1, b.dtype(y)), b.mul(y, y)))];
};

/** y = σ(x): ∂x = g·y·(1 − y). */
export const sigmoid: Rule = ({ b }, node, gy) => {
  const y = node.output[0];
  return [b.mul(onlyGrad(node, gy), b.mul(y, b.sub(b.scalar(1, b.dtype(y)), y)))];
};

/** y = max(x, 0): ∂x = Where(x > 0, g, 0). */
export const relu: Rule = ({ b }, node, gy) => {
  const g = onlyGrad(node, gy);
  const x = node.input[0];
  const positive = b.op('Greater', [x, b.scalar(0, b.dtype(x))], { dtype: DataType.bool, shape: b.shape(x) });
  return [b.op('Where', [positive, g, b.scalar(0, b.dtype(g))], b.meta(g))];
};

/** y = erf x: ∂x = g·(2/√π)·e^(−x²). */
export const erf: Rule = ({ b }, node, gy) => {
  const x = node.input[0];
  const e = b.unary('Exp', b.neg(b.mul(x, x)));
  return [b.mul(onlyGrad(node, gy), b.scale(e, 2 / Math.sqrt(Math.PI)))];
};

/** y = Cast(x) between float types: ∂x = Cast(g) back to x's type. */
export const cast: Rule = ({ b }, node, gy) => [b.cast(onlyGrad(node, gy), b.dtype(node.input[0]))];
