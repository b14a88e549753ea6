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
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createDeflate } from 'node:zlib';
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
  /**
   * The model's files (.onnx and external data) deflated at level 1, when asked: what pruned zeros are
   * worth on disk (an ONNX file stores a zero in as many bytes as any weight; a compressor does not).
   */
  bytesCompressed?: number;
}

/** Bytes of `files` deflated (zlib level 1), streamed: never a whole file in memory. */
export async function compressedBytes(files: readonly string[]): Promise<number> {
  let total = 0;
  for (const file of files) {
    let bytes = 0;
    const count = new Writable({ write(chunk: Buffer, _enc, done) { bytes += chunk.length; done(); } });
    await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), createDeflate({ level: 1, strategy: constants.Z_DEFAULT_STRATEGY }), count);
    total += bytes;
  }
  return total;
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

/** `compressed`: also measure bytesCompressed (reads every byte of the model once). */
export async function measureFootprint(modelPath: string, options: { inspect?: InspectModel; compressed?: boolean } = {}): Promise<Footprint> {
  const f = await footprintOf(modelPath, options);
  if (options.compressed) f.bytesCompressed = await compressedBytes([modelPath, ...f.externalDataFiles]);
  return f;
}

async function footprintOf(modelPath: string, options: { inspect?: InspectModel }): Promise<Footprint> {
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
    ...(f.bytesCompressed !== undefined ? [{ name: 'bytes_compressed', value: f.bytesCompressed, unit: 'bytes', subject }] : []),
  ];
}
