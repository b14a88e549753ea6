/**
 * LayerNormalization (opset 17) over the axes [axis, rank) of X, with n elements per normalized group:
 *   μ = mean(x), rstd = 1/√(var(x) + ε), x̂ = (x − μ)·rstd, y = x̂·γ + β
 * backward, with gγ = g·γ and means over the normalized axes:
 *   ∂x = rstd·(gγ − mean(gγ) − x̂·mean(gγ·x̂)),  ∂γ = Σ g·x̂,  ∂β = Σ g  (sums over the broadcast axes)
 *
 * μ and rstd: for float32 graphs the forward node is given its optional Mean and InvStdDev outputs (the
 * kernel computes them anyway; the request's graph gets a copy of the node that names them), so the
 * backward reads them instead of recomputing; other dtypes recompute them from x.
 */
import { WhittleError } from '../../../errors.ts';
import type { NodeProto } from '../../../onnx/proto-types.ts';
import { DataType } from '../../../onnx/dtype.ts';
import { attrFloat, attrInt } from '../../../onnx/graph.ts';
import { normAxis, type GradBuilder } from '../builder.ts';
import { inputAt, onlyGrad, type Grad, type Rule } from './rule.ts';

function meanOver(b: GradBuilder, x: string, axes: number[], n: number): string {
  return b.scale(b.reduceSum(x, axes, true), 1 / n);
}

export const layerNormalization: Rule = ({ b, needs }, node, gy) => {
  if ((gy[1] ?? null) !== null || (gy[2] ?? null) !== null) {
    throw new WhittleError('UNSUPPORTED_MODEL', `The Mean or InvStdDev output of LayerNormalization node '${node.name ?? ''}' is used by the loss; training supports only its main output on the gradient path.`,
      { op: 'LayerNormalization', node: node.name });
  }
  const g = onlyGrad(node, gy);
  const x = node.input[0];
  const gamma = node.input[1];
  const beta = inputAt(node, 2);
  const xm = b.meta(x);
  const rank = xm.shape.length;
  const axis = normAxis(attrInt(node, 'axis', -1), rank);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const axes = [...Array(rank - axis).keys()].map((i) => axis + i);
  let n = 1;
  for (const a of axes) n *= xm.shape[a];
  const statShape = xm.shape.map((d, i) => (i < axis ? d : 1));

  let mean: string;
  let rstd: string;
  if (xm.dtype === DataType.float32 && attrInt(node, 'stash_type', 1) === 1) {
    [mean, rstd] = forwardStats(b, node, statShape);
  } else {
    mean = meanOver(b, x, axes, n);
    const xc = b.sub(x, mean);
    const variance = meanOver(b, b.mul(xc, xc), axes, n);
    rstd = b.unary('Reciprocal', b.unary('Sqrt', b.add(variance, b.scalar(eps, xm.dtype))));
  }
  const xhat = b.mul(b.sub(x, mean), rstd);
  const out: Grad[] = [null, null, null];
  if (needs(0)) {
    const gg = b.mul(g, gamma);
    const m1 = meanOver(b, gg, axes, n);
    const m2 = meanOver(b, b.mul(gg, xhat), axes, n);
    out[0] = b.mul(rstd, b.sub(b.sub(gg, m1), b.mul(xhat, m2)));
  }
  if (needs(1)) out[1] = b.reduceToShape(b.mul(g, xhat), b.shape(gamma));
  if (beta !== undefined && needs(2)) out[2] = b.reduceToShape(g, b.shape(beta));
  return out;
};

/**
 * The forward node's Mean and InvStdDev outputs. When it does not name them, the node is replaced in the
 * request's graph (`graph.node`) by a copy that does; the original node object is left as it was, so
 * other graphs sharing it (an evaluation graph) are unchanged.
 */
function forwardStats(b: GradBuilder, node: NodeProto, statShape: number[]): [string, string] {
  const outputs = [...node.output];
  while (outputs.length < 3) outputs.push('');
  let changed = false;
  for (const i of [1, 2]) {
    if (outputs[i] !== '') continue;
    outputs[i] = b.fresh(i === 1 ? 'ln_mean' : 'ln_inv_std');
    b.created.set(outputs[i], { dtype: DataType.float32, shape: statShape });
    changed = true;
  }
  if (changed) b.replaceForwardNode(node, { ...node, output: outputs });
  return [outputs[1], outputs[2]];
}
