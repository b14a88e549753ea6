// The Train wizard's classification form: labelled data instead of text, the accuracy section on the same held-out share, its checks and its round trip.
import { describe, expect, it } from 'vitest';
import { Recipe } from '../../../preload/recipe.ts';
import { buildTrainRecipe, defaultTrainForm, firstTrainStepWithIssues, trainFormFromRecipe, trainSettingsLine, validateTrainForm, type TrainForm } from '../../../renderer/lib/train-form.ts';
import { formatMetric, sortMetrics } from '../../../renderer/lib/metrics.ts';

const classify = (patch: Partial<TrainForm> = {}): TrainForm => ({
  ...defaultTrainForm('/m/bert.onnx'),
  tokenizerPath: '/m/tokenizer.json',
  objective: 'classify',
  labelsPath: '/d/sst2.tsv',
  ...patch,
});

describe('the Train form for an encoder classifier', () => {
  it('builds a classify step and an accuracy section on the same held-out share, without text or perplexity', () => {
    const form = classify({ labelColumn: 'y', heldOutShare: 0.25, seed: 7, length: 64, steps: 30 });
    expect(validateTrainForm(form)).toEqual({});
    const r = Recipe.parse(buildTrainRecipe(form));
    expect(r.steps[0]).toMatchObject({ type: 'train', objective: 'classify', labels: { file: '/d/sst2.tsv', labelColumn: 'y', heldOut: 0.25, seed: 7 }, steps: 30, length: 64 });
    expect(r.steps[0]).not.toHaveProperty('text');
    expect(r.evaluation.accuracy).toEqual({ file: '/d/sst2.tsv', labelColumn: 'y', heldOut: 0.25, seed: 7, maxLength: 64 });
    expect(r.evaluation.perplexity).toBeUndefined();
    expect(trainSettingsLine(form)).toMatch(/^classification, 0.25 held out · 30 steps/);
  });

  it('asks for the labelled data on the data step, and reads a stored recipe back', () => {
    const issues = validateTrainForm(classify({ labelsPath: '' }));
    expect(issues.labelsPath).toMatch(/Choose labelled data/);
    expect(firstTrainStepWithIssues(issues)).toBe(1);
    expect(validateTrainForm(classify({ heldOutShare: 0 })).heldOutShare).toBeTruthy();
    const back = trainFormFromRecipe(buildTrainRecipe(classify({ textColumn: 'sentence', heldOutShare: 100 })));
    expect(back).toMatchObject({ objective: 'classify', labelsPath: '/d/sst2.tsv', textColumn: 'sentence', labelColumn: '', heldOutShare: 100 });
  });

  it('shows accuracy as a percentage, first among the metrics', () => {
    expect(formatMetric({ name: 'accuracy', value: 0.8125, unit: '' })).toBe('81.25 %');
    const sorted = sortMetrics([{ name: 'bytes_on_disk', subject: 'result' }, { name: 'macro_f1', subject: 'result' }, { name: 'accuracy', subject: 'original' }]);
    expect(sorted.map((m) => m.name)).toEqual(['accuracy', 'macro_f1', 'bytes_on_disk']);
  });
});
