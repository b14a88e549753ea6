import { describe, expect, it } from 'vitest';
import { PRUNE_METHODS } from '../../../preload/methods.ts';
import { Recipe } from '../../../preload/recipe.ts';
import {
  buildPruneRecipe, defaultPruneForm, firstPruneStepWithIssues, formSparsity, gainNote, needsCalibration, PRUNE_METHOD_CARDS, pruneFieldForIssuePath,
  pruneFormFromRecipe, pruneIssuesFromServer, pruneSettingsLine, validatePruneForm, type PruneForm,
} from '../../../renderer/lib/prune-form.ts';

const ready = (over: Partial<PruneForm> = {}): PruneForm => ({
  ...defaultPruneForm('/m/model.onnx'), tokenizerPath: '/m/tokenizer.json', textPath: '/t/eval.txt', calibText: '/t/calib.txt', ...over,
});

describe('prune form ⇄ recipe', () => {
  it('reads its method cards from the step descriptions, in their order, each with its one-line trade-off', () => {
    expect(PRUNE_METHOD_CARDS.map((c) => c.id)).toEqual(PRUNE_METHODS.map((d) => d.method));
    expect(PRUNE_METHOD_CARDS.map((c) => c.tradeoff)).toEqual(PRUNE_METHODS.map((d) => d.summary));
    expect(PRUNE_METHOD_CARDS.find((c) => c.id === 'wanda')?.calibration).toBe(true);
    expect(PRUNE_METHOD_CARDS.find((c) => c.id === 'magnitude')?.calibration).toBe(false);
  });

  it('magnitude 50 % makes a valid recipe without calibration and without a tokenizer when not evaluating', () => {
    const form = ready({ tokenizerPath: '', evaluate: false, calibText: '' });
    expect(validatePruneForm(form)).toEqual({});
    const recipe = Recipe.parse(buildPruneRecipe(form));
    expect(recipe.steps).toHaveLength(1);
    expect(recipe.steps[0]).toMatchObject({ type: 'prune', method: 'magnitude', sparsity: 0.5, scope: 'layer', allocation: 'uniform' });
    expect(recipe.steps[0]).not.toHaveProperty('calibration');
  });

  const cases: Partial<PruneForm>[] = [
    { method: 'magnitude', sparsity: 0.6, scope: 'global', keepText: 'lm_head\n^model\\.layers\\.0\\.' },
    { method: 'magnitude', sparsity: 0.4, allocation: 'owl', calibSamples: 16, calibLength: 64, calibSeed: 3 },
    { method: 'wanda', pattern: '2:4', sparsity: 0.5, sequential: false },
    { method: 'wanda', sparsity: 0.7, allocation: 'owl' },
    { method: 'sparsegpt', pattern: '4:8', sparsity: 0.5, quantize: true, quantizeBits: 4, quantizeBlockSize: 64 },
    { method: 'sparsegpt', sparsity: 0.5, name: 'half sparse' },
    { method: 'structured', target: 'heads', amount: 'count', count: 2, importance: 'magnitude' },
    { method: 'structured', target: 'neurons', amount: 'ratio', ratio: 0.25, importance: 'activation' },
    { method: 'structured', target: 'layers', amount: 'count', count: 1, importance: 'block-influence', speed: false, evaluate: false },
  ];
  it.each(cases)('round-trips %o through the recipe', (over) => {
    const form = ready(over);
    expect(validatePruneForm(form)).toEqual({});
    const recipe = buildPruneRecipe(form);
    const back = pruneFormFromRecipe(JSON.parse(JSON.stringify(recipe)));
    expect(back).not.toBeNull();
    // The same recipe again: every setting that reaches the recipe survived.
    expect(buildPruneRecipe(back!)).toEqual(recipe);
    expect(back!.method).toBe(form.method);
    expect(pruneSettingsLine(back!)).toBe(pruneSettingsLine(form));
  });

  it('an N:M pattern replaces the sparsity (the pattern fixes it) and forces uniform allocation', () => {
    const recipe = Recipe.parse(buildPruneRecipe(ready({ method: 'wanda', pattern: '2:4', sparsity: 0.3, allocation: 'owl' })));
    expect(recipe.steps[0]).toMatchObject({ pattern: '2:4', allocation: 'uniform' });
    expect(recipe.steps[0]).not.toHaveProperty('sparsity');
    expect(formSparsity({ sparsity: 0.3, pattern: '4:8' })).toBe(0.5);
    expect(formSparsity({ sparsity: '', pattern: '' })).toBeNull();
  });

  it('knows when calibration is needed', () => {
    expect(needsCalibration(ready({ method: 'magnitude' }))).toBe(false);
    expect(needsCalibration(ready({ method: 'magnitude', allocation: 'owl' }))).toBe(true);
    expect(needsCalibration(ready({ method: 'magnitude', allocation: 'owl', pattern: '2:4' }))).toBe(false);
    expect(needsCalibration(ready({ method: 'wanda' }))).toBe(true);
    expect(needsCalibration(ready({ method: 'structured', importance: 'magnitude' }))).toBe(false);
    expect(needsCalibration(ready({ method: 'structured', importance: 'activation' }))).toBe(true);
  });

  it('says before running that unstructured zeros do not shrink or speed up the model, and structured removal does', () => {
    for (const m of ['magnitude', 'wanda', 'sparsegpt'] as const) expect(gainNote(m).text).toMatch(/not smaller.*not faster.*compressed size/s);
    expect(gainNote('structured').text).toMatch(/smaller.*faster/);
  });
});

describe('prune form issues', () => {
  it('puts a sparsity outside (0, 1) on the sparsity field, in the Targets step', () => {
    for (const s of [0, 1, 1.5, -0.1]) {
      const issues = validatePruneForm(ready({ sparsity: s }));
      expect(issues.sparsity, String(s)).toMatch(/Sparsity must be (above 0|below 100)/);
      expect(firstPruneStepWithIssues(issues)).toBe(2);
    }
    expect(validatePruneForm(ready({ sparsity: '' })).sparsity).toBe('Enter a number.');
  });

  it('asks for calibration text, a tokenizer and valid keep patterns where they are needed', () => {
    const issues = validatePruneForm(ready({ method: 'wanda', calibText: '', tokenizerPath: '', evaluate: false, keepText: 'lm_head\n(' }));
    expect(issues.calibText).toBe('Choose a UTF-8 text file to calibrate on.');
    expect(issues.tokenizerPath).toMatch(/Calibration needs the model's tokenizer/);
    expect(issues.keepText).toMatch(/"\(" is not a valid regular expression/);
    expect(firstPruneStepWithIssues(issues)).toBe(0);
    expect(validatePruneForm(ready({ modelPath: '' })).modelPath).toBe('Choose the model file (.onnx).');
  });

  it('rejects structured settings the schema rejects, on their fields', () => {
    expect(validatePruneForm(ready({ method: 'structured', target: 'heads', importance: 'block-influence' })).importance).toMatch(/target layers/);
    expect(validatePruneForm(ready({ method: 'structured', amount: 'ratio', ratio: 1 })).ratio).toMatch(/below 1/);
    expect(validatePruneForm(ready({ method: 'structured', amount: 'count', count: 0 })).count).toBe('At least 1.');
    expect(validatePruneForm(ready({ method: 'magnitude', scope: 'global', pattern: '2:4' })).scope).toMatch(/N:M/);
  });

  it('maps server issue paths to fields', () => {
    expect(pruneFieldForIssuePath('/steps/0/calibration/samples')).toBe('calibSamples');
    expect(pruneFieldForIssuePath(['steps', 0, 'quantize', 'blockSize'])).toBe('quantizeBlockSize');
    expect(pruneFieldForIssuePath('steps.0.keep.1')).toBe('keepText');
    expect(pruneFieldForIssuePath('evaluation.perplexity.text')).toBe('textPath');
    expect(pruneFieldForIssuePath('steps.0.columnBlock')).toBe('form');
    expect(pruneIssuesFromServer([{ path: 'steps.0.columnBlock', message: 'bad' }]).form).toBe('steps.0.columnBlock: bad');
  });
});

describe('prefill from a stored recipe', () => {
  it('is null for a recipe without a prune step or that is not a recipe', () => {
    expect(pruneFormFromRecipe({ version: 1, model: { path: '/m.onnx' }, steps: [{ type: 'quantize', method: 'rtn' }] })).toBeNull();
    expect(pruneFormFromRecipe({ model: 3 })).toBeNull();
  });

  it('fills the schema defaults of a minimal stored step and the evaluation settings', () => {
    const form = pruneFormFromRecipe({
      version: 1, model: { path: '/m.onnx' }, tokenizer: { path: '/tok.json' },
      steps: [{ type: 'prune', method: 'wanda', pattern: '2:4', calibration: { text: '/c.txt' } }],
      evaluation: { perplexity: { text: '/e.txt', maxSamples: 50 } },
    })!;
    expect(form).toMatchObject({
      modelPath: '/m.onnx', tokenizerPath: '/tok.json', method: 'wanda', pattern: '2:4', sparsity: 0.5, sequential: true, allocation: 'uniform',
      calibText: '/c.txt', calibSamples: 128, calibLength: 256, evaluate: true, textPath: '/e.txt', maxSamples: 50, speed: false, prompts: '',
    });
  });
});
