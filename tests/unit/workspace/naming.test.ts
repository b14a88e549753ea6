/** Experiment names: method and bits (or sparsity, schedule) and the model, from the parsed recipe. */
import { describe, expect, it } from 'vitest';
import { experimentName, experimentNameOf, modelShortName } from '../../../preload/naming.ts';
import { Recipe, type RecipeInput } from '../../../preload/recipe.ts';

const calibration = { text: '/t/calib.txt' };
const named = (steps: RecipeInput['steps'], model = '/m/stories260K.onnx'): string => experimentName(Recipe.parse({ model: { path: model }, steps }));

describe('experiment names', () => {
  it('say the method, bits and group size of quantization, and the model', () => {
    expect(named([{ type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, calibration }])).toBe('GPTQ 4-bit g32 · stories260K');
    expect(named([{ type: 'quantize', method: 'rtn', bits: 8, blockSize: 128 }])).toBe('RTN 8-bit g128 · stories260K');
    expect(named([{ type: 'quantize', method: 'rtn', overrides: [{ pattern: 'lm_head', bits: 8 }] }])).toBe('RTN 4-bit g32 mixed · stories260K');
    expect(named([{ type: 'quantize', method: 'fp16' }])).toBe('FP16 · stories260K');
    expect(named([{ type: 'quantize', method: 'int8-static', calibration }])).toBe('INT8 static minmax · stories260K');
  });

  it('say the sparsity or pattern of pruning, and chain steps', () => {
    expect(named([{ type: 'prune', method: 'wanda', sparsity: 0.5, calibration }])).toBe('Wanda 50% · stories260K');
    expect(named([{ type: 'prune', method: 'sparsegpt', pattern: '2:4', calibration, quantize: { bits: 4 } }])).toBe('SparseGPT 2:4 + 4-bit · stories260K');
    expect(named([{ type: 'prune', method: 'structured', target: 'heads', ratio: 0.25 }])).toBe('Structured heads 25% · stories260K');
    expect(named([{ type: 'prune', method: 'magnitude', sparsity: 0.3 }, { type: 'quantize', method: 'rtn' }])).toBe('Magnitude 30% → RTN 4-bit g32 · stories260K');
    expect(named([])).toBe('Evaluate · stories260K');
  });

  it('name a generic model file by its folder', () => {
    expect(modelShortName('/models/Qwen2.5-0.5B/onnx/model.onnx')).toBe('onnx');
    expect(modelShortName('/models/Qwen2.5-0.5B/model.onnx')).toBe('Qwen2.5-0.5B');
    expect(modelShortName('C:\\models\\tiny-llama.onnx')).toBe('tiny-llama');
  });

  it('are null for a recipe that does not parse', () => {
    expect(experimentNameOf({ model: { path: '' } })).toBeNull();
  });
});
