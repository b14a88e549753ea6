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
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Metric, ModelInspection } from '../../../preload/contract.ts';
import { WhittleError } from '../errors.ts';
import { decodeModel } from '../onnx/decode.ts';
import { byteSize, dtypeBits, dtypeName, isFloatDtype } from '../onnx/dtype.ts';
import type { GraphProto, Int64, NodeProto, TensorProto } from '../onnx/proto-types.ts';
import { FileSource, ProtoCursor } from '../onnx/wire.ts';

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

const toNumber = (v: Int64 | undefined): number => (v === undefined ? 0 : Number(v));
const elements = (t: TensorProto): number => t.dims.reduce<number>((n, d) => n * toNumber(d), 1);

function intAttribute(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i === undefined ? undefined : Number(a.i);
}

/** Weights are floating point or low-bit integers; int32/int64 initializers are shapes and indices. */
function isWeightDtype(dataType: number | undefined): boolean {
  const bits = dtypeBits(dataType);
  return isFloatDtype(dataType) || (bits > 0 && bits <= 8);
}

/** Every graph of a model: the main one and those nested in node attributes (If, Loop, Scan). */
function* graphs(g: GraphProto): Generator<GraphProto> {
  yield g;
  for (const node of g.node) for (const a of node.attribute) {
    if (a.g) yield* graphs(a.g);
    for (const sub of a.graphs) yield* graphs(sub);
  }
}

/**
 * Initializer name → logical parameter count when it differs from its element count
 * (0 for quantization metadata; N·K for a MatMulNBits packed weight).
 */
function logicalCounts(g: GraphProto): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of g.node) {
    if (node.opType === 'MatMulNBits') {
      const n = intAttribute(node, 'N');
      const k = intAttribute(node, 'K');
      if (n !== undefined && k !== undefined && node.input[1]) counts.set(node.input[1], n * k);
      for (const i of [2, 3]) if (node.input[i]) counts.set(node.input[i], 0);             // scales, zero_points
    } else if (node.opType === 'DequantizeLinear' || node.opType === 'QuantizeLinear') {
      for (const i of [1, 2]) if (node.input[i]) counts.set(node.input[i], 0);             // scale, zero_point
    }
  }
  return counts;
}

export function footprintFromGraph(modelPath: string): Footprint {
  const file = path.resolve(modelPath);
  const dir = path.dirname(file);
  const external = new Set<string>();
  let source: FileSource;
  try {
    source = new FileSource(file);
  } catch (e) {
    throw new WhittleError('NOT_FOUND', `The model file ${file} does not exist.`, { path: file }, { cause: e });
  }
  let graph: GraphProto | undefined;
  try {
    graph = decodeModel(new ProtoCursor(source), {
      inlineBelow: 1 << 10,
      resolveExternal: (t) => {
        const entry = (key: string) => t.externalData.find((e) => e.key === key)?.value;
        const location = path.resolve(dir, entry('location') ?? '');
        external.add(location);
        return { kind: 'file', path: location, offset: Number(entry('offset') ?? 0), length: Number(entry('length') ?? 0) };
      },
    }).graph;
  } catch (e) {
    throw new WhittleError('MODEL_PARSE', `${path.basename(file)} could not be read as an ONNX model: ${(e as Error).message}`, { path: file }, { cause: e });
  } finally {
    source.close();
  }
  if (!graph) throw new WhittleError('MODEL_PARSE', `${path.basename(file)} has no graph.`, { path: file });

  let parameters = 0;
  let weightBytes = 0;
  const bytesByDtype: Record<string, number> = {};
  for (const g of graphs(graph)) {
    const logical = logicalCounts(g);
    for (const t of g.initializer) {
      if (!isWeightDtype(t.dataType)) continue;
      const count = elements(t);
      const bytes = byteSize(t.dataType, count);
      parameters += logical.get(t.name ?? '') ?? count;
      weightBytes += bytes;
      const dtype = dtypeName(t.dataType);
      bytesByDtype[dtype] = (bytesByDtype[dtype] ?? 0) + bytes;
    }
  }

  let bytesOnDisk = statSync(file).size;
  for (const f of external) {
    try {
      bytesOnDisk += statSync(f).size;
    } catch {
      throw new WhittleError('NOT_FOUND', `The external data file ${path.basename(f)} that ${path.basename(file)} needs is missing from ${dir}.`, { path: f });
    }
  }
  return {
    bytesOnDisk,
    parameters,
    weightBytes,
    bitsPerWeight: parameters > 0 ? (8 * weightBytes) / parameters : 0,
    bytesByDtype,
    externalDataFiles: [...external],
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
