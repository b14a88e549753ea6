// The GGUF type an experiment's result exports to by default, and the comparisons kept in its details.
import { describe, expect, it } from 'vitest';
import type { GgufComparison } from '../../../preload/contract.ts';
import { defaultGgufType, recordedGgufComparisons, withGgufComparison } from '../../../preload/gguf.ts';

const recipe = (steps: unknown[]) => ({ model: { path: '/m/model.onnx' }, steps });
const gptq = { type: 'quantize', method: 'gptq', calibration: { text: '/t.txt' } };

describe('defaultGgufType', () => {
  it('q4_1 for 4-bit block-32 asymmetric MatMulNBits (GPTQ or RTN): the codes map exactly', () => {
    expect(defaultGgufType(recipe([gptq]))).toBe('q4_1');
    expect(defaultGgufType(recipe([{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }]))).toBe('q4_1');
  });
  it('f16 where Q4_1 would not be exact, or nothing was quantized', () => {
    expect(defaultGgufType(recipe([{ ...gptq, symmetric: true }]))).toBe('f16');
    expect(defaultGgufType(recipe([{ ...gptq, blockSize: 64 }]))).toBe('f16');
    expect(defaultGgufType(recipe([{ type: 'quantize', method: 'rtn', bits: 8 }]))).toBe('f16');
    expect(defaultGgufType(recipe([{ type: 'quantize', method: 'rtn', format: 'qdq' }]))).toBe('f16');
    expect(defaultGgufType(recipe([{ type: 'prune', method: 'magnitude', sparsity: 0.5 }]))).toBe('f16');
    expect(defaultGgufType({ not: 'a recipe' })).toBe('f16');
  });
});

describe('withGgufComparison', () => {
  const comparison = (type: GgufComparison['type'], perplexity: number) => ({ type, llamaCpp: { perplexity } }) as unknown as GgufComparison;
  it('keeps the latest of each type beside the other details', () => {
    let details: Record<string, unknown> = { samples: [] };
    details = withGgufComparison(details, comparison('q4_1', 5));
    details = withGgufComparison(details, comparison('f16', 4));
    details = withGgufComparison(details, comparison('q4_1', 6));
    expect(details.samples).toEqual([]);
    const recorded = recordedGgufComparisons(details);
    expect(Object.keys(recorded).sort()).toEqual(['f16', 'q4_1']);
    expect(recorded.q4_1?.llamaCpp.perplexity).toBe(6);
    expect(recordedGgufComparisons({ gguf: [1] })).toEqual({});
  });
});
