/**
 * The GELU family (com.microsoft Gelu, BiasGelu, FastGelu), elementwise on x [..., D]:
 *   Gelu(x)     = x · ½(1 + erf(x / √2))
 *   BiasGelu    = Gelu(a + bias)                          bias [D]
 *   FastGelu(x) = x · ½(1 + tanh(√(2/π) · (x + 0.044715 x³)))   with optional bias [D] added first
 * Half-precision inputs are computed in float32 and cast back, as onnxruntime's kernels do.
 */
import { DataType } from '../../onnx/dtype.ts';
import type { NodeProto } from '../../onnx/proto-types.ts';
import type { DecomposeBuilder } from './builder.ts';
import { inputOf, type Decomposition } from './rule.ts';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** f applied to x in float32 (Cast in and out for other float dtypes). */
function inFloat32(b: DecomposeBuilder, x: string, f: (x32: string) => string): string {
  const dtype = b.dtype(x);
  return b.cast(f(b.cast(x, DataType.float32)), dtype);
}

function biased(node: NodeProto, b: DecomposeBuilder): string {
  const x = inputOf(node, 0);
  const bias = inputOf(node, 1);
  return bias ? b.add(x, bias) : x;
}

/** x · (½ + ½ erf(x/√2)) */
export function erfGelu(b: DecomposeBuilder, x: string): string {
  return inFloat32(b, x, (v) => b.mul(v, b.addScalar(b.scale(b.unary('Erf', b.scale(v, Math.SQRT1_2)), 0.5), 0.5)));
}

/** x · (½ + ½ tanh(√(2/π)(x + 0.044715 x³))) */
export function tanhGelu(b: DecomposeBuilder, x: string): string {
  return inFloat32(b, x, (v) => {
    const cube = b.mul(b.mul(v, v), v);
    const inner = b.scale(b.add(v, b.scale(cube, 0.044715)), SQRT_2_OVER_PI);
    return b.mul(v, b.addScalar(b.scale(b.unary('Tanh', inner), 0.5), 0.5));
  });
}

export const gelu: Decomposition = (node, b) => [erfGelu(b, inputOf(node, 0))];
export const biasGelu: Decomposition = (node, b) => [erfGelu(b, biased(node, b))];
export const fastGelu: Decomposition = (node, b) => [tanhGelu(b, biased(node, b))];
