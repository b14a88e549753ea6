/**
 * Calibration on an ORT GenAI graph (MultiHeadAttention, SkipSimplifiedLayerNormalization, fp16 weights in
 * external data; random weights, so only graph handling is checked): float16 activations are captured,
 * converted and accumulated, and the external data is hard-linked rather than copied.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { activationInputsFor, collectCalibrationStats } from '../../main/engine/calibrate/index.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { planTargets } from '../../main/engine/quantize/targets.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-calibrate-fp16-');
afterAll(() => scratch.cleanup());
const dir = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16');

describe('calibration of an fp16 ORT GenAI decoder', () => {
  it('captures float16 activations of every distinct MatMul input', async () => {
    const modelPath = path.join(dir, 'model.onnx');
    const model = await readModel(modelPath);
    const inputs = activationInputsFor(model, planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets);
    expect(inputs.length).toBeGreaterThan(0);
    expect(inputs.every((i) => i.dtype === 'float16')).toBe(true);
    expect(inputs.some((i) => i.weights.length === 3)).toBe(true); // q, k, v on one norm output

    const work = path.join(scratch.dir, 'work');
    mkdirSync(work);
    const logs: string[] = [];
    const ctx = { ...quietContext(work), log: (_: string, text: string) => { logs.push(text); } };
    const stats = await collectCalibrationStats({
      modelPath, tokenizerPath: path.join(dir, 'tokenizer.json'), tensors: inputs.map((i) => i.tensor),
      accumulators: ['hessian', 'minmax', 'l2'], calibration: { text: STORIES.text, samples: 3, length: 32, seed: 2 },
    }, ctx);
    expect(logs.filter((l) => /full copy/.test(l))).toEqual([]);
    expect(readdirSync(work)).toEqual([]);
    for (const input of inputs) {
      const s = stats.get(input.tensor)!;
      expect(s.d).toBe(input.d);
      expect(s.rows).toBe(3 * 32);
      expect(Number.isFinite(s.min) && Number.isFinite(s.max) && s.max! > s.min!).toBe(true);
      // diag(XᵀX) = Σ x_j² = l2, computed two ways.
      for (let j = 0; j < s.d; j++) expect(Math.abs(s.hessian![j * s.d + j] - s.l2![j])).toBeLessThanOrEqual(1e-5 * s.l2![j] + 1e-9);
    }
  });
});
