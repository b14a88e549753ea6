/** A wizard fills the sample's texts for the sample model only; a model of the user's own gets none. */
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../../preload/contract.ts';
import { withoutSampleTexts, withSampleDefaults } from '../../../renderer/lib/sample-defaults.ts';

const sample: Sample = {
  id: 'stories260K', name: 'stories260K', description: '', modelPath: '/app/sample/stories260K-kv.onnx', tokenizerPath: '/app/sample/tokenizer.json',
  textPath: '/app/sample/tinystories-eval.txt', calibrationTextPath: '/app/sample/tinystories-calibration.txt',
};
const empty = { modelPath: '', tokenizerPath: '', textPath: '', calibText: '', name: '' };

describe('sample defaults', () => {
  it('fill the sample model\u2019s texts and tokenizer', () => {
    expect(withSampleDefaults({ ...empty, modelPath: sample.modelPath }, [sample])).toEqual({
      ...empty, modelPath: sample.modelPath, tokenizerPath: sample.tokenizerPath, textPath: sample.textPath, calibText: sample.calibrationTextPath,
    });
  });

  it('leave the texts of a user\u2019s own model empty (the form asks), and of no model yet', () => {
    expect(withSampleDefaults({ ...empty, modelPath: '/home/me/llama.onnx' }, [sample])).toEqual({ ...empty, modelPath: '/home/me/llama.onnx' });
    expect(withSampleDefaults(empty, [sample])).toEqual(empty);
  });

  it('clear the sample\u2019s texts when the model changes from the sample to another, keeping texts the user chose', () => {
    const onSample = withSampleDefaults({ ...empty, modelPath: sample.modelPath }, [sample]);
    const moved = withoutSampleTexts({ ...onSample, modelPath: '/home/me/llama.onnx' }, sample.modelPath, [sample]);
    expect(moved.textPath).toBe('');
    expect(moved.calibText).toBe('');
    const chosen = withoutSampleTexts({ ...onSample, modelPath: '/home/me/llama.onnx', textPath: '/home/me/wiki.txt' }, sample.modelPath, [sample]);
    expect(chosen.textPath).toBe('/home/me/wiki.txt');
  });
});
