/**
 * What a model costs on disk: bytes (the .onnx file plus its external data files), parameters, and bits
 * per weight = 8 · weight bytes / parameters.
 *
 * Weights are the floating-point and low-bit integer initializers (int32/int64 ones are shapes and indices).
 * Parameters count logical weights, so a quantized model keeps its original count: a MatMulNBits weight
 * B [N, blocks, blob] counts N·K, and quantization metadata (scales, zero points) adds bytes but no
 * parameters. That is what makes bits per weight comparable between an original and its compressed copy.
 *
 * `measureFootprint` reads the graph itself (tensor payloads are never loaded), or takes the numbers from a
 * model inspection when the caller has one (`inspect` option).
 */
import { stat } from 'node:fs/promises';
import type { Metric, ModelInspection } from '../../../preload/contract.ts';
import { byteSize, dtypeBits, dtypeName, isFloatDtype } from '../onnx/dtype.ts';
import { allGraphs, attrInt, toNumber } from '../onnx/graph.ts';
import type { GraphProto, TensorProto } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';

export interface Footprint {
  bytesOnDisk: number;
  parameters: number;
  /** Bytes of the weight initializers, quantization metadata (scales, zero points) included. */
  weightBytes: number;
  bitsPerWeight: number;
  bytesByDtype: Record<string, number>;
  externalDataFiles: string[];
  /** 'graph' when read here, 'inspection' when taken from a ModelInspection. */
  source: 'graph' | 'inspection';
}

export type InspectModel = (modelPath: string) => Promise<Pick<ModelInspection, 'bytesOnDisk' | 'parameters' | 'bytesByDtype' | 'externalDataFiles'>>;

const elements = (t: TensorProto): number => t.dims.reduce<number>((n, d) => n * toNumber(d), 1);

/** Weights are floating point or low-bit integers; int32/int64 initializers are shapes and indices. */
function isWeightDtype(dataType: number | undefined): boolean {
  const bits = dtypeBits(dataType);
  return isFloatDtype(dataType) || (bits > 0 && bits <= 8);
}

/**
 * Initializer name → logical parameter count when it differs from its element count
 * (0 for quantization metadata; N·K for a MatMulNBits packed weight).
 */
function logicalCounts(g: GraphProto): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of g.node) {
    if (node.opType === 'MatMulNBits') {
      const n = attrInt(node, 'N', 0);
      const k = attrInt(node, 'K', 0);
      if (n > 0 && k > 0 && node.input[1]) counts.set(node.input[1], n * k);
      for (const i of [2, 3]) if (node.input[i]) counts.set(node.input[i], 0);             // scales, zero_points
    } else if (node.opType === 'DequantizeLinear' || node.opType === 'QuantizeLinear') {
      for (const i of [1, 2]) if (node.input[i]) counts.set(node.input[i], 0);             // scale, zero_point
    }
  }
  return counts;
}

export async function footprintFromGraph(modelPath: string): Promise<Footprint> {
  const model = await readModel(modelPath);
  let parameters = 0;
  let weightBytes = 0;
  const bytesByDtype: Record<string, number> = {};
  for (const { graph } of allGraphs(model.proto)) {
    const logical = logicalCounts(graph);
    for (const t of graph.initializer) {
      if (!isWeightDtype(t.dataType)) continue;
      const count = elements(t);
      const bytes = byteSize(t.dataType, count);
      parameters += logical.get(t.name ?? '') ?? count;
      weightBytes += bytes;
      const dtype = dtypeName(t.dataType);
      bytesByDtype[dtype] = (bytesByDtype[dtype] ?? 0) + bytes;
    }
  }
  let bytesOnDisk = model.fileBytes;
  for (const f of model.externalDataFiles) bytesOnDisk += (await stat(f)).size;
  return {
    bytesOnDisk,
    parameters,
    weightBytes,
    bitsPerWeight: parameters > 0 ? (8 * weightBytes) / parameters : 0,
    bytesByDtype,
    externalDataFiles: model.externalDataFiles,
    source: 'graph',
  };
}

export async function measureFootprint(modelPath: string, options: { inspect?: InspectModel } = {}): Promise<Footprint> {
  if (!options.inspect) return footprintFromGraph(modelPath);
  const inspection = await options.inspect(modelPath);
  const weightBytes = Object.values(inspection.bytesByDtype).reduce((a, b) => a + b, 0);
  return {
    bytesOnDisk: inspection.bytesOnDisk,
    parameters: inspection.parameters,
    weightBytes,
    bitsPerWeight: inspection.parameters > 0 ? (8 * weightBytes) / inspection.parameters : 0,
    bytesByDtype: inspection.bytesByDtype,
    externalDataFiles: inspection.externalDataFiles,
    source: 'inspection',
  };
}

export function footprintMetrics(f: Footprint, subject = 'model'): Metric[] {
  return [
    { name: 'bytes_on_disk', value: f.bytesOnDisk, unit: 'bytes', subject },
    { name: 'parameters', value: f.parameters, unit: '', subject },
    { name: 'bits_per_weight', value: f.bitsPerWeight, unit: 'bits', subject },
  ];
}
