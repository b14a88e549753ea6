import { describe, expect, it } from 'vitest';
import type { ModelInspection } from '../../../preload/contract.ts';
import { estimateQuantizedSize, quantizedWeightBytes } from '../../../main/engine/quantize/estimate.ts';
import { QuantizeRtnStep } from '../../../preload/recipe.ts';

const step = (s: object) => QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', ...s });

describe('quantizedWeightBytes', () => {
  it('MatMulNBits: padded codes + scales (+ zero points)', () => {
    // K = 172 → 6 blocks of 32; N = 64; fp32 scales
    expect(quantizedWeightBytes(172, 64, 'float32', step({ bits: 4, symmetric: true }))).toBe(64 * 6 * 16 + 64 * 6 * 4);
    expect(quantizedWeightBytes(172, 64, 'float32', step({ bits: 4 }))).toBe(64 * 6 * 16 + 64 * 6 * 4 + 64 * 3);
    expect(quantizedWeightBytes(172, 64, 'float16', step({ bits: 2, blockSize: 64 }))).toBe(64 * 3 * 16 + 64 * 3 * 2 + 64 * 1);
  });
  it('QDQ: unpadded codes', () => {
    expect(quantizedWeightBytes(172, 64, 'float32', step({ bits: 4, format: 'qdq' }))).toBe(172 * 32 + 6 * 64 * 4 + 6 * 32);
  });
});

describe('estimateQuantizedSize', () => {
  const inspection = {
    bytesOnDisk: 1_000_000,
    quantizable: [
      { name: 'w', node: 'mm', op: 'MatMul', shape: [256, 512], dtype: 'float32' },
      { name: 'lm_head', node: 'mm2', op: 'MatMul', shape: [256, 100], dtype: 'float32' },
      { name: 'emb', node: 'g', op: 'Gather', shape: [100, 256], dtype: 'float32' },
      { name: 'tied', node: 'mm3', op: 'MatMul', shape: [256, 100], dtype: 'float32', skipReason: 'weight behind a Transpose (tied embeddings)' },
    ],
  } as unknown as ModelInspection;

  it('subtracts float bytes and adds quantized bytes for the weights that will be quantized', () => {
    const e = estimateQuantizedSize(inspection, step({ bits: 4, keep: ['lm_head'] }));
    // codes 64 KiB, scales 16 KiB, zero points 2 KiB → one aligned 4 KiB page
    const after = 65536 + 16384 + 4096;
    expect(e.bytesBefore).toBe(1_000_000);
    expect(e.bytesAfter).toBe(1_000_000 - 256 * 512 * 4 + after);
    expect(e.perWeight.map((w) => [w.name, w.status])).toEqual([['w', 'quantized'], ['lm_head', 'skipped'], ['emb', 'skipped'], ['tied', 'skipped']]);
    expect(e.perWeight[1].reason).toMatch(/keep pattern/);
    expect(e.perWeight[2].reason).toMatch(/embeddings stay in float/);
    expect(e.perWeight[3].reason).toMatch(/Transpose/);
  });
});
