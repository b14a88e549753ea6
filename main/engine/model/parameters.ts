/**
 * The one definition of a model's parameter count, used by inspection (model/inspect.ts), the footprint
 * of every evaluation (evaluate/footprint.ts) and so by quantize's before/after summary and the
 * quantize plan.
 *
 * Parameters are the logical weights of the graph, whatever their storage, so a compressed copy keeps
 * its original's count and bits per weight stay comparable:
 *   - an initializer of a floating-point or ≤ 8-bit integer type counts its elements (int32/int64
 *     initializers are shapes, axes and indices, not weights);
 *   - a packed com.microsoft.MatMulNBits weight B [N, blocks, blob] counts N·K (its attributes), not
 *     its bytes; a GatherBlockQuantized table packed two 4-bit values per uint8 counts both;
 *   - quantization metadata — scales and zero points of MatMulNBits, (De)QuantizeLinear, MatMulInteger,
 *     DynamicQuantizeMatMul, MatMulIntegerToFloat, QLinearMatMul/Conv, ConvInteger, GatherBlockQuantized,
 *     and the per-channel weight scales an INT8 dynamic rewrite multiplies onto DynamicQuantizeLinear's
 *     activation scale — are not parameters: their bytes are `overheadBytes`;
 *   - every initializer counts once, however many nodes read it (a table shared by the embedding and
 *     the LM head is one table).
 */
import { byteSize, dtypeBits, dtypeName, isFloatDtype } from '../onnx/dtype.ts';
import { allGraphs, attrInt } from '../onnx/graph.ts';
import type { GraphProto, ModelProto } from '../onnx/proto-types.ts';
import { elementCount } from '../onnx/tensor-data.ts';

export interface ParameterCount {
  parameters: number;
  /** Bytes of the initializers that hold parameters. */
  parameterBytes: number;
  /** Bytes of quantization metadata (scales, zero points): on disk, but not parameters. */
  overheadBytes: number;
  /** parameterBytes + overheadBytes by dtype name. */
  bytesByDtype: Record<string, number>;
}

/** Input positions holding quantization metadata (scales, zero points), by operator. */
const METADATA_INPUTS: Record<string, readonly number[]> = {
  MatMulNBits: [2, 3],
  DequantizeLinear: [1, 2],
  QuantizeLinear: [1, 2],
  MatMulInteger: [2, 3],
  ConvInteger: [2, 3],
  DynamicQuantizeMatMul: [2, 3],
  MatMulIntegerToFloat: [2, 3, 4, 5],
  QLinearMatMul: [1, 2, 4, 5, 6, 7],
  QLinearConv: [1, 2, 4, 5, 6, 7],
  GatherBlockQuantized: [2, 3],
};

/** Weights are floating point or low-bit integers; int32/int64 initializers are shapes and indices. */
export function isWeightDtype(dataType: number | undefined): boolean {
  const bits = dtypeBits(dataType);
  return isFloatDtype(dataType) || (bits > 0 && bits <= 8);
}

/**
 * Initializer name → logical parameter count where it differs from the element count: 0 for
 * quantization metadata, N·K for a packed MatMulNBits weight, 8/bits per byte for a packed table.
 */
function logicalCounts(g: GraphProto): Map<string, number> {
  const counts = new Map<string, number>();
  const initializers = new Map(g.initializer.map((t) => [t.name ?? '', t]));
  const dynamicScales = new Set(g.node.filter((n) => n.opType === 'DynamicQuantizeLinear' && n.output[1]).map((n) => n.output[1]));
  for (const node of g.node) {
    const op = node.opType ?? '';
    for (const i of METADATA_INPUTS[op] ?? []) if (node.input[i]) counts.set(node.input[i], 0);
    if (op === 'MatMulNBits') {
      const n = attrInt(node, 'N', 0);
      const k = attrInt(node, 'K', 0);
      if (n > 0 && k > 0 && node.input[1]) counts.set(node.input[1], n * k);
    } else if (op === 'GatherBlockQuantized') {
      const data = initializers.get(node.input[0] ?? '');
      const bits = attrInt(node, 'bits', 4);
      if (data && dtypeBits(data.dataType) === 8 && bits < 8) counts.set(node.input[0], (elementCount(data.dims) * 8) / bits);
    } else if (op === 'Mul' && node.input.some((x) => dynamicScales.has(x))) {
      // activation scale × per-channel weight scale: the weight's dequantization factor
      for (const x of node.input) if (!dynamicScales.has(x) && initializers.has(x)) counts.set(x, 0);
    }
  }
  return counts;
}

export function countParameters(proto: ModelProto): ParameterCount {
  let parameters = 0;
  let parameterBytes = 0;
  let overheadBytes = 0;
  const bytesByDtype: Record<string, number> = {};
  for (const { graph } of allGraphs(proto)) {
    const logical = logicalCounts(graph);
    for (const t of graph.initializer) {
      if (!isWeightDtype(t.dataType)) continue;
      const count = elementCount(t.dims);
      const bytes = byteSize(t.dataType, count);
      const params = logical.get(t.name ?? '') ?? count;
      parameters += params;
      if (params > 0) parameterBytes += bytes;
      else overheadBytes += bytes;
      const dtype = dtypeName(t.dataType);
      bytesByDtype[dtype] = (bytesByDtype[dtype] ?? 0) + bytes;
    }
  }
  return { parameters, parameterBytes, overheadBytes, bytesByDtype };
}
