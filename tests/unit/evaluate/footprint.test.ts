import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { footprintFromGraph, footprintMetrics, measureFootprint } from '../../../main/engine/evaluate/footprint.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { writeBigramDecoder, writeMatMulNBitsModel } from './bigram-decoder.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('footprint', () => {
  it('counts a float model: every float is a parameter, 32 bits each', async () => {
    const file = path.join(tmp.dir, 'bigram.onnx');
    writeBigramDecoder(file, new Float32Array(16 * 16), 16);
    const f = await footprintFromGraph(file);
    expect(f).toMatchObject({ bytesOnDisk: statSync(file).size, parameters: 256, weightBytes: 1024, bitsPerWeight: 32, externalDataFiles: [] });
  });

  it('counts a 4-bit MatMulNBits weight as N·K parameters; scales add bytes, shape constants nothing', async () => {
    const file = path.join(tmp.dir, 'q4.onnx');
    writeMatMulNBitsModel(file, 64, 128);
    const f = await footprintFromGraph(file);
    // B: 64 · 4 blocks · 16 bytes = 4096; scales: 256 · 4 = 1024 → 8 · 5120 / 8192 = 5 bits per weight.
    expect(f.parameters).toBe(64 * 128);
    expect(f.weightBytes).toBe(4096 + 1024);
    expect(f.bitsPerWeight).toBe(5);
    expect(f.bytesByDtype).toEqual({ uint8: 4096, float32: 1024 });
    expect(footprintMetrics(f, 'result').map((m) => [m.name, m.value, m.subject])).toEqual([
      ['bytes_on_disk', statSync(file).size, 'result'], ['parameters', 8192, 'result'], ['bits_per_weight', 5, 'result'],
    ]);
  });

  it('takes the numbers from a model inspection when given one', async () => {
    const f = await measureFootprint('any.onnx', {
      inspect: async () => ({ bytesOnDisk: 1000, parameters: 100, bytesByDtype: { float16: 200 }, externalDataFiles: [] }),
    });
    expect(f).toMatchObject({ bytesOnDisk: 1000, parameters: 100, weightBytes: 200, bitsPerWeight: 16, source: 'inspection' });
  });

  it('reports a missing model', async () => {
    let error: unknown;
    try { await footprintFromGraph(path.join(tmp.dir, 'missing.onnx')); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(WhittleError);
    expect((error as WhittleError).code).toBe('NOT_FOUND');
  });
});
