/**
 * "Node in → nodes out" for INT8 dynamic quantization of one MatMul/Gemm with a constant weight.
 *
 * Weight W [K, N] is stored as int8 W_q [K, N] with scales s_w ([N] per output channel, or one), zero point 0
 * (symmetric). The activation A [..., K] is quantized at run time to uint8 (DynamicQuantizeLinear:
 * s_a = (max(0, max A) − min(0, min A)) / 255, z_a = round(−min / s_a)), so
 *   Y = A · W ≈ s_a · s_w ⊙ ((A_q − z_a) · W_q)
 *
 * 'matmulinteger' (standard ONNX, opset ≥ 11; onnxruntime fuses it into MatMulIntegerToFloat):
 *   A_q, s_a, z_a = DynamicQuantizeLinear(A)            one per activation, shared by q/k/v projections
 *   Y_i32 = MatMulInteger(A_q uint8, W_q int8, z_a)     W's zero point omitted (0)
 *   Y = Mul(Cast(Y_i32, FLOAT), Mul(s_a, s_w))
 * 'dynamic-quantize-matmul' (com.microsoft, one fused node):
 *   Y = DynamicQuantizeMatMul(A, W_q, s_w, '', bias)
 * Gemm: alpha is folded into s_w (by the caller), transB weights are stored transposed to [K, N], and
 * beta·C is added after (DynamicQuantizeMatMul's bias input when C is a 1-D float32 initializer).
 * float16 activations: the quantizer takes float32 only, so A is cast to float32 (once per activation)
 * and Y back to float16; a bias is then added in float16.
 */
import { DataType } from '../onnx/dtype.ts';
import { attrFloat, intAttr, makeNode } from '../onnx/graph.ts';
import type { NodeProto, TensorProto } from '../onnx/proto-types.ts';
import { floatToHalf, makeTensor } from '../onnx/tensor-data.ts';
import type { QuantTarget } from './targets.ts';

export type Int8DynamicFormat = 'matmulinteger' | 'dynamic-quantize-matmul';

export interface Int8DynamicContext {
  format: Int8DynamicFormat;
  uniqueName: (base: string) => string;
  /** Initializers of the graph by name (to tell a constant bias). */
  initializer: (name: string) => TensorProto | undefined;
  /** Per activation: its float32 version and its DynamicQuantizeLinear outputs, made once. */
  shared: Map<string, { a32?: string; q?: { q: string; scale: string; zeroPoint: string } }>;
}

export interface Int8DynamicRewrite {
  nodes: NodeProto[];
  /** New small initializers (scales, beta). The int8 weight is added by the caller. */
  tensors: TensorProto[];
}

const cast = (input: string, output: string, to: number, name: string): NodeProto =>
  makeNode({ opType: 'Cast', inputs: [input], outputs: [output], name, attributes: [intAttr('to', to)] });

/**
 * The nodes replacing `target.node`, reading the int8 weight `weightQ` ([K, N]) and scales `scales`
 * (float32 [N] or scalar). `fp16`: the node's activations are float16.
 */
export function toDynamicInt8(target: QuantTarget, weightQ: string, scales: string, fp16: boolean, ctx: Int8DynamicContext): Int8DynamicRewrite {
  const node = target.node;
  const base = node.name || target.weight;
  const fresh = (suffix: string): string => ctx.uniqueName(`${base}_${suffix}`);
  const a = node.input[0];
  const y = node.output[0];
  const nodes: NodeProto[] = [];
  const tensors: TensorProto[] = [];
  const shared = ctx.shared.get(a) ?? {};
  ctx.shared.set(a, shared);

  let a32 = a;
  if (fp16) {
    if (!shared.a32) {
      shared.a32 = ctx.uniqueName(`${a}_fp32`);
      nodes.push(cast(a, shared.a32, DataType.float32, ctx.uniqueName(`${a}_cast_fp32`)));
    }
    a32 = shared.a32;
  }

  // Gemm's beta·C, added after the product.
  const c = target.op === 'Gemm' && node.input[2] ? node.input[2] : '';
  const beta = target.op === 'Gemm' ? attrFloat(node, 'beta', 1) : 1;
  const constBias = c && beta === 1 && !fp16 ? ctx.initializer(c) : undefined;
  const fusedBias = ctx.format === 'dynamic-quantize-matmul' && constBias?.dataType === DataType.float32 && constBias.dims.length === 1;

  // The product in float32.
  const needsAfter = fp16 || (c !== '' && !fusedBias);
  const y32 = needsAfter ? fresh('y_fp32') : y;
  if (ctx.format === 'dynamic-quantize-matmul') {
    const inputs = [a32, weightQ, scales];
    if (fusedBias) inputs.push('', c);
    nodes.push(makeNode({ opType: 'DynamicQuantizeMatMul', domain: 'com.microsoft', inputs, outputs: [y32], name: fresh('DynamicQuantizeMatMul') }));
  } else {
    if (!shared.q) {
      shared.q = { q: ctx.uniqueName(`${a}_quantized`), scale: ctx.uniqueName(`${a}_scale`), zeroPoint: ctx.uniqueName(`${a}_zero_point`) };
      nodes.push(makeNode({ opType: 'DynamicQuantizeLinear', inputs: [a32], outputs: [shared.q.q, shared.q.scale, shared.q.zeroPoint], name: ctx.uniqueName(`${a}_DynamicQuantizeLinear`) }));
    }
    const yInt = fresh('y_int32');
    const yFloat = fresh('y_int32_float');
    const scale = fresh('scale');
    nodes.push(
      makeNode({ opType: 'MatMulInteger', inputs: [shared.q.q, weightQ, shared.q.zeroPoint], outputs: [yInt], name: fresh('MatMulInteger') }),
      cast(yInt, yFloat, DataType.float32, fresh('Cast')),
      makeNode({ opType: 'Mul', inputs: [shared.q.scale, scales], outputs: [scale], name: fresh('scale_Mul') }),
      makeNode({ opType: 'Mul', inputs: [yFloat, scale], outputs: [y32], name: fresh('Mul') }),
    );
  }

  let current = y32;
  if (fp16) {
    const y16 = c ? fresh('y_fp16') : y;
    nodes.push(cast(current, y16, DataType.float16, fresh('cast_fp16')));
    current = y16;
  }
  if (c && !fusedBias) {
    let bias = c;
    if (beta !== 1) {
      const betaName = ctx.uniqueName(`${base}_beta`);
      tensors.push(fp16 ? makeTensor(betaName, DataType.float16, [], Uint16Array.of(floatToHalf(beta))) : makeTensor(betaName, DataType.float32, [], Float32Array.of(beta)));
      bias = fresh('bias');
      nodes.push(makeNode({ opType: 'Mul', inputs: [c, betaName], outputs: [bias], name: fresh('beta_Mul') }));
    }
    nodes.push(makeNode({ opType: 'Add', inputs: [current, bias], outputs: [y], name: fresh('bias_Add') }));
  }
  return { nodes, tensors };
}
