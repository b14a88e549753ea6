/**
 * Small ONNX models built in memory and written with Whittle's own writer, for the quantization tests
 * and benchmark: MatMul/Gemm graphs with given weights.
 */
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { intAttr, floatAttr, makeNode } from '../../../main/engine/onnx/graph.ts';
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../../main/engine/onnx/proto-types.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';

export { DataType, intAttr, floatAttr, makeNode, makeTensor };

export function valueInfo(name: string, elemType: number, shape: (number | string)[]): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    metadataProps: [],
  };
}

export interface GraphSpec {
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  opset?: number;
  irVersion?: number;
  extraOpsets?: { domain: string; version: number }[];
}

export function buildModel(spec: GraphSpec): ModelProto {
  return {
    irVersion: spec.irVersion ?? 10,
    opsetImport: [{ domain: '', version: spec.opset ?? 21 }, ...(spec.extraOpsets ?? [])],
    producerName: 'whittle-tests',
    graph: {
      node: spec.nodes, name: 'g', initializer: spec.initializers, sparseInitializer: [], input: spec.inputs,
      output: spec.outputs, valueInfo: [], quantizationAnnotation: [], metadataProps: [],
    },
    metadataProps: [], trainingInfo: [], functions: [], configuration: [],
  };
}

export async function saveModel(model: ModelProto, file: string, external = true): Promise<void> {
  await writeModel(model, file, { externalData: external ? 'auto' : 'none' });
}

/** Deterministic uniform(−1, 1) float32s (xorshift). */
export function randomFloats(n: number, seed = 1, scale = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** One MatMul: X [batch, K] · W [K, N] → Y [batch, N]. */
export function singleMatMul(W: Float32Array, K: number, N: number, opts: { weightName?: string; dtype?: number; weightBytes?: Uint8Array } = {}): ModelProto {
  const dtype = opts.dtype ?? DataType.float32;
  const name = opts.weightName ?? 'W';
  return buildModel({
    nodes: [makeNode({ opType: 'MatMul', inputs: ['X', name], outputs: ['Y'], name: 'mm' })],
    initializers: [makeTensor(name, dtype, [K, N], opts.weightBytes ?? W)],
    inputs: [valueInfo('X', dtype, ['batch', K])],
    outputs: [valueInfo('Y', dtype, ['batch', N])],
  });
}
