/**
 * What a model costs on disk: bytes (the .onnx file plus its external data files), parameters, and bits
 * per weight = 8 · weight bytes / parameters.
 *
 * Parameters and weight bytes come from model/parameters.ts, the one definition inspection uses too:
 * logical weights (a MatMulNBits weight B [N, blocks, blob] counts N·K), with quantization metadata
 * (scales, zero points) adding bytes (`overheadBytes`) but no parameters. That is what makes bits per
 * weight comparable between an original and its compressed copy.
 *
 * `measureFootprint` reads the graph itself (tensor payloads are never loaded), or takes the numbers from a
 * model inspection when the caller has one (`inspect` option).
 */
import { stat } from 'node:fs/promises';
import type { Metric, ModelInspection } from '../../../preload/contract.ts';
import { countParameters } from '../model/parameters.ts';
import { readModel } from '../onnx/reader.ts';

export interface Footprint {
  bytesOnDisk: number;
  parameters: number;
  /** Bytes of the weight initializers, quantization metadata (scales, zero points) included. */
  weightBytes: number;
  /** The part of weightBytes that is quantization metadata (not parameters); null from an inspection. */
  overheadBytes: number | null;
  bitsPerWeight: number;
  bytesByDtype: Record<string, number>;
  externalDataFiles: string[];
  /** 'graph' when read here, 'inspection' when taken from a ModelInspection. */
  source: 'graph' | 'inspection';
}

export type InspectModel = (modelPath: string) => Promise<Pick<ModelInspection, 'bytesOnDisk' | 'parameters' | 'bytesByDtype' | 'externalDataFiles'>>;

export async function footprintFromGraph(modelPath: string): Promise<Footprint> {
  const model = await readModel(modelPath);
  const { parameters, parameterBytes, overheadBytes, bytesByDtype } = countParameters(model.proto);
  const weightBytes = parameterBytes + overheadBytes;
  let bytesOnDisk = model.fileBytes;
  for (const f of model.externalDataFiles) bytesOnDisk += (await stat(f)).size;
  return {
    bytesOnDisk,
    parameters,
    weightBytes,
    overheadBytes,
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
    overheadBytes: null,
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
