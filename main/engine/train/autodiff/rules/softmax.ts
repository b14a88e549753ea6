/**
 * Softmax and LogSoftmax along `axis` (opset ≥ 13 semantics: one axis, default −1). Both reuse the
 * forward output y instead of recomputing it:
 *   y = softmax(x):    ∂x = y ⊙ (g − Σ_axis(g ⊙ y))
 *   y = logsoftmax(x): ∂x = g − e^y ⊙ Σ_axis(g)
 */
import { attrInt } from '../../../onnx/graph.ts';
import { onlyGrad, type Rule } from './rule.ts';

export const softmax: Rule = ({ b }, node, gy) => {
  const g = onlyGrad(node, gy);
  const y = node.output[0];
  const axis = attrInt(node, 'axis', -1);
  const gy1 = b.mul(g, y);
  return [b.mul(y, b.sub(g, b.reduceSum(gy1, [axis], true)))];
};

export const logSoftmax: Rule = ({ b }, node, gy) => {
  const g = onlyGrad(node, gy);
  const y = node.output[0];
  const axis = attrInt(node, 'axis', -1);
  const p = b.unary('Exp', y);
  return [b.sub(g, b.mul(p, b.reduceSum(g, [axis], true)))];
};
