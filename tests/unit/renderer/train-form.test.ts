// The Train wizard's form: the recipe it builds (checked by the schema main uses), its round trip through a stored recipe, and its checks.
import { describe, expect, it } from 'vitest';
import { Recipe } from '../../../preload/recipe.ts';
import {
  buildTrainRecipe, defaultTrainForm, firstTrainStepWithIssues, trainFormFromRecipe, trainIssuesFromServer, trainSettingsLine, validateTrainForm, warmupText,
  type TrainForm,
} from '../../../renderer/lib/train-form.ts';

const filled = (patch: Partial<TrainForm> = {}): TrainForm => ({
  ...defaultTrainForm('/m/stories260K-kv.onnx'),
  tokenizerPath: '/m/tokenizer.json',
  textPath: '/t/eval.txt',
  calibText: '/t/train.txt',
  ...patch,
});

describe('the Train form', () => {
  it('builds a recipe the schema accepts: the step, the held-out text, the comparison on the evaluation text', () => {
    const form = filled({ steps: 40, batch: 2, length: 32, lr: '1e-3', freezeRoles: ['o', 'v'], freezePatterns: '*.layers.0.*\n', evalEvery: 10 });
    expect(validateTrainForm(form)).toEqual({});
    const r = Recipe.parse(buildTrainRecipe(form));
    expect(r.steps[0]).toMatchObject({
      type: 'train', text: '/t/train.txt', steps: 40, batch: 2, length: 32, lr: 1e-3, freeze: ['o', 'v', '*.layers.0.*'], evalText: '/t/eval.txt', evalEvery: 10,
    });
    expect(r.steps[0]).not.toHaveProperty('warmup');
    expect(r.evaluation.perplexity?.text).toBe('/t/eval.txt');
    expect(Recipe.parse(buildTrainRecipe(filled({ heldOut: false }))).steps[0]).not.toHaveProperty('evalText');
  });

  it('reads a stored recipe back into the same form', () => {
    const form = filled({ duration: 'epochs', epochs: 2, warmup: 5, freezeRoles: ['embedding'], freezePatterns: '*.norm*', keepSparsity: false, name: 'run' });
    const back = trainFormFromRecipe(Recipe.parse(buildTrainRecipe(form)));
    expect(back).not.toBeNull();
    expect(buildTrainRecipe(back!)).toEqual(buildTrainRecipe(form));
    expect(trainFormFromRecipe({ model: { path: '/m.onnx' }, steps: [{ type: 'quantize', method: 'rtn' }] })).toBeNull();
  });

  it('puts each problem on its field and step: lr, steps, an unknown role, the training text', () => {
    const issues = validateTrainForm(filled({ lr: '0', steps: '', calibText: '' }));
    expect(issues.lr).toMatch(/above 0/i);
    expect(issues.steps).toBe('Enter a number.');
    expect(issues.calibText).toBe('Choose a UTF-8 text file to train on.');
    expect(firstTrainStepWithIssues(issues)).toBe(1);
    expect(validateTrainForm(filled({ freezePatterns: 'attention' })).freezePatterns).toMatch(/"attention" is not a role/);
    expect(validateTrainForm(filled({ calibText: '/t/eval.txt' })).calibText).toMatch(/is the evaluation text/);
    expect(trainIssuesFromServer([{ path: 'steps.0.lr', message: 'the learning rate must be above 0' }])).toEqual({ lr: 'The learning rate must be above 0' });
  });

  it('says the settings in one line, the default warmup included', () => {
    expect(warmupText(filled({ steps: 200 }))).toBe('20 steps (default)');
    expect(warmupText(filled({ warmup: 7 }))).toBe('7 steps');
    expect(trainSettingsLine(filled({ steps: 200, freezeRoles: ['o'] }))).toContain('200 steps · B 4 × T 128 · lr 0.0003, warmup 20 steps (default)');
  });
});
