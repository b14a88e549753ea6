/**
 * Node in → nodes out for weight-only quantization. Each function takes one MatMul/Gemm target and its
 * quantized weight and returns the nodes that replace it plus the new initializers (as byte arrays; the
 * caller decides where their bytes live).
 *
 *   MatMul(A, W)                 → com.microsoft.MatMulNBits(A, W_Q{b}, W_scales[, W_zp])
 *   Gemm(A, W, C; α, β, transB)  → MatMulNBits(A, …, scales·α) → Add(·, β·C)
 *   QDQ format:                  → DequantizeLinear(W_Q{b}, W_scales[, W_zp]; axis 0, block_size) → MatMul
 *
 * MatMulNBits: https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md#com.microsoft.MatMulNBits
 */
import { DataType } from '../onnx/dtype.ts';
import { attrFloat, intAttr, makeNode as makeNodeSpec } from '../onnx/graph.ts';
import type { AttributeProto, NodeProto } from '../onnx/proto-types.ts';
import { toDequantizeLinearLayout, type BlockwiseQuantized } from './layout.ts';
import type { QuantTarget } from './targets.ts';

export interface NewTensor {
  name: string;
  dataType: number;
  dims: number[];
  bytes: Uint8Array;
}

export interface Replacement {
  nodes: NodeProto[];
  tensors: NewTensor[];
}

export interface RewriteOptions {
  bits: number;
  blockSize: number;
  accuracyLevel: number;
  /** Returns `base` or, if taken, `base_1`, `base_2`, … and reserves it. */
  uniqueName: (base: string) => string;
  /** float32 → float16 bits, for fp16 models' scales. */
  f32ToF16: (x: Float32Array) => Uint16Array;
}

function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attributes: AttributeProto[] = [], domain?: string): NodeProto {
  return makeNodeSpec({ opType, inputs, outputs, name, attributes, domain });
}

const asBytes = (a: Float32Array | Uint16Array | Uint8Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Scales in the activation type: float32 as is, float16 converted. */
function scaleTensor(name: string, dims: number[], scales: Float32Array, target: QuantTarget, opts: RewriteOptions): NewTensor {
  return target.dtype === 'float16'
    ? { name, dataType: DataType.float16, dims, bytes: asBytes(opts.f32ToF16(scales)) }
    : { name, dataType: DataType.float32, dims, bytes: asBytes(scales) };
}

/**
 * The tail shared by both formats: for Gemm with a bias C, `Y = mm + β·C` (β ≠ 1 adds a Mul by a scalar).
 * Returns the name the matmul must write and the extra nodes/tensors.
 */
function gemmTail(target: QuantTarget, opts: RewriteOptions): { mmOutput: string; nodes: NodeProto[]; tensors: NewTensor[] } {
  const node = target.node;
  const y = node.output[0];
  const c = target.op === 'Gemm' ? node.input[2] : undefined;
  const beta = target.op === 'Gemm' ? attrFloat(node, 'beta', 1) : 1;
  if (!c || beta === 0) return { mmOutput: y, nodes: [], tensors: [] };
  const base = node.name || target.weight;
  const mmOutput = opts.uniqueName(`${base}_matmul`);
  const nodes: NodeProto[] = [];
  const tensors: NewTensor[] = [];
  let bias = c;
  if (beta !== 1) {
    const betaName = opts.uniqueName(`${base}_beta`);
    tensors.push(target.dtype === 'float16'
      ? { name: betaName, dataType: DataType.float16, dims: [], bytes: asBytes(opts.f32ToF16(Float32Array.of(beta))) }
      : { name: betaName, dataType: DataType.float32, dims: [], bytes: asBytes(Float32Array.of(beta)) });
    bias = opts.uniqueName(`${base}_scaled_bias`);
    nodes.push(makeNode('Mul', [c, betaName], [bias], opts.uniqueName(`${base}_beta_mul`)));
  }
  nodes.push(makeNode('Add', [mmOutput, bias], [y], opts.uniqueName(`${base}_bias_add`)));
  return { mmOutput, nodes, tensors };
}

/** MatMul/Gemm → com.microsoft.MatMulNBits (+ Add for a Gemm bias). */
export function toMatMulNBits(target: QuantTarget, q: BlockwiseQuantized, opts: RewriteOptions): Replacement {
  const { bits, blockSize, kBlocks, k: K, n: N } = q;
  const w = target.weight;
  const qName = opts.uniqueName(`${w}_Q${bits}`);
  const sName = opts.uniqueName(`${w}_scales`);
  const tensors: NewTensor[] = [
    // B: uint8 [N, kBlocks, blockSize·bits/8]
    { name: qName, dataType: DataType.uint8, dims: [N, kBlocks, (blockSize * bits) / 8], bytes: q.packed },
    // scales: [N, kBlocks] in A's type
    scaleTensor(sName, [N, kBlocks], q.scales, target, opts),
  ];
  const inputs = [target.node.input[0], qName, sName];
  if (q.zeroPoints) {
    const zName = opts.uniqueName(`${w}_zp`);
    // zero_points: uint8 [N, ceil(kBlocks·bits/8)], packed like B
    tensors.push({ name: zName, dataType: DataType.uint8, dims: [N, Math.ceil((kBlocks * bits) / 8)], bytes: q.zeroPoints });
    inputs.push(zName);
  }
  const tail = gemmTail(target, opts);
  const base = target.node.name || w;
  const mm = makeNode('MatMulNBits', inputs, [tail.mmOutput], opts.uniqueName(`${base}_Q${bits}`), [
    intAttr('K', K), intAttr('N', N), intAttr('bits', bits), intAttr('block_size', blockSize),
    intAttr('accuracy_level', opts.accuracyLevel),
  ], 'com.microsoft');
  return { nodes: [mm, ...tail.nodes], tensors: [...tensors, ...tail.tensors] };
}

/** MatMul/Gemm → DequantizeLinear (opset 21, blocked along K) → MatMul (+ Add for a Gemm bias). */
export function toDequantizeMatMul(target: QuantTarget, q: BlockwiseQuantized, opts: RewriteOptions): Replacement {
  const { k: K, n: N, bits, blockSize, kBlocks } = q;
  const w = target.weight;
  const dq = toDequantizeLinearLayout(q);
  const typeId = DataType[dq.dtype];
  const qName = opts.uniqueName(`${w}_Q${bits}`);
  const sName = opts.uniqueName(`${w}_scales`);
  const tensors: NewTensor[] = [
    { name: qName, dataType: typeId, dims: [K, N], bytes: dq.x },
    scaleTensor(sName, [kBlocks, N], dq.scale, target, opts),
  ];
  const dqInputs = [qName, sName];
  if (dq.zeroPoint) {
    const zName = opts.uniqueName(`${w}_zp`);
    tensors.push({ name: zName, dataType: typeId, dims: [kBlocks, N], bytes: dq.zeroPoint });
    dqInputs.push(zName);
  }
  const base = target.node.name || w;
  const deq = opts.uniqueName(`${w}_dequantized`);
  const tail = gemmTail(target, opts);
  const nodes = [
    makeNode('DequantizeLinear', dqInputs, [deq], opts.uniqueName(`${base}_DequantizeLinear`), [intAttr('axis', 0), intAttr('block_size', blockSize)]),
    makeNode('MatMul', [target.node.input[0], deq], [tail.mmOutput], opts.uniqueName(`${base}_MatMul`)),
    ...tail.nodes,
  ];
  return { nodes, tensors: [...tensors, ...tail.tensors] };
}
