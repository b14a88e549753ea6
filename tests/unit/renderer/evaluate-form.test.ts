import { describe, expect, it } from 'vitest';
import { Recipe } from '../../../preload/recipe.ts';
import {
  buildRecipe, defaultEvaluateForm, fieldForIssuePath, formFromRecipe, issuesFromServer, PROMPT_HELP, validateEvaluateForm, withProtocol,
} from '../../../renderer/lib/evaluate-form.ts';

const filled = () => ({
  ...defaultEvaluateForm('/m/stories260K-kv.onnx'),
  tokenizerPath: '/m/tokenizer.json',
  textPath: '/t/tinystories_val_head.txt',
});

describe('evaluation form → recipe', () => {
  it('builds a recipe the shared schema accepts, with the documented defaults', () => {
    const recipe = buildRecipe(filled());
    const parsed = Recipe.parse(recipe);
    expect(parsed.model.path).toBe('/m/stories260K-kv.onnx');
    expect(parsed.tokenizer?.path).toBe('/m/tokenizer.json');
    expect(parsed.evaluation.perplexity).toEqual({ text: '/t/tinystories_val_head.txt', protocol: 'documents', window: 256, maxSamples: 400, minTokens: 16 });
    expect(parsed.evaluation.speed).toBeUndefined();
    expect(parsed.steps).toEqual([]);
    expect('name' in recipe).toBe(false);
  });

  it('adds accuracy on labelled data with a decoder\'s prompt settings, and reads them back', () => {
    expect(Recipe.parse(buildRecipe(filled())).evaluation.accuracy).toBeUndefined();
    const plain = Recipe.parse(buildRecipe({ ...filled(), accuracy: true, labelsPath: ' /d/sst2.tsv ' }));
    expect(plain.evaluation.accuracy).toEqual({ file: '/d/sst2.tsv', heldOut: 0.2, seed: 0, maxLength: 128 });
    const form = { ...filled(), accuracy: true, labelsPath: '/d/sst2.tsv', heldOut: 100, template: 'Review: {text}\nSentiment:', verbalizers: '0=negative, 1=positive', lengthNormalize: true };
    const a = Recipe.parse(buildRecipe(form)).evaluation.accuracy;
    expect(a).toMatchObject({ file: '/d/sst2.tsv', heldOut: 100, template: 'Review: {text}\nSentiment:', verbalizers: { 0: 'negative', 1: 'positive' }, lengthNormalize: true });
    expect(formFromRecipe(buildRecipe(form))).toEqual(form);
    const list = Recipe.parse(buildRecipe({ ...form, verbalizers: 'bad, good' })).evaluation.accuracy;
    expect(list?.verbalizers).toEqual(['bad', 'good']);
    for (const line of Object.values(PROMPT_HELP)) expect(line).not.toMatch(/\n/);
  });

  it('refuses accuracy settings that cannot run, on their fields', () => {
    const issues = validateEvaluateForm({ ...filled(), tokenizerPath: '', accuracy: true, heldOut: 1.5, template: 'Answer:', verbalizers: '0=bad, good' });
    expect(Object.keys(issues).sort()).toEqual(['heldOut', 'labelsPath', 'template', 'tokenizerPath', 'verbalizers']);
    expect(issues.template).toMatch(/\{text\}/);
    expect(issues.verbalizers).toMatch(/mixes label=words pairs and plain words/);
    expect(fieldForIssuePath('evaluation.accuracy.verbalizers')).toBe('verbalizers');
  });

  it('adds the speed test and the name only when asked', () => {
    const recipe = Recipe.parse(buildRecipe({ ...filled(), speed: true, promptTokens: '32', decodeTokens: 16, name: '  baseline  ' }));
    expect(recipe.evaluation.speed).toMatchObject({ promptTokens: 32, decodeTokens: 16 });
    expect(recipe.name).toBe('baseline');
  });

  it('reports missing paths and out-of-range numbers on their fields', () => {
    const issues = validateEvaluateForm({ ...defaultEvaluateForm(''), window: 4, maxSamples: '' });
    expect(Object.keys(issues).sort()).toEqual(['maxSamples', 'modelPath', 'textPath', 'tokenizerPath', 'window']);
    expect(issues.window).toBe('At least 8.');
    expect(issues.maxSamples).toBe('Enter a number.');
    expect(validateEvaluateForm(filled())).toEqual({});
    expect(validateEvaluateForm({ ...filled(), window: 256.5 }).window).toBeTruthy();
  });

  it('needs no text or tokenizer when perplexity is off', () => {
    expect(validateEvaluateForm({ ...defaultEvaluateForm('/m.onnx'), perplexity: false, speed: true })).toEqual({});
  });

  it('maps server issue paths to fields', () => {
    expect(fieldForIssuePath('evaluation.perplexity.window')).toBe('window');
    expect(fieldForIssuePath('/tokenizer/path')).toBe('tokenizerPath');
    expect(fieldForIssuePath(['evaluation', 'speed', 'decodeTokens'])).toBe('decodeTokens');
    expect(issuesFromServer([{ path: 'model.path', message: 'No such file' }, { path: 'steps.0', message: 'bad step' }]))
      .toEqual({ modelPath: 'No such file', form: 'steps.0: bad step' });
  });

  it('swaps N to the new protocol default only if untouched', () => {
    expect(withProtocol(filled(), 'stream').maxSamples).toBe(128);
    expect(withProtocol({ ...filled(), maxSamples: 50 }, 'stream').maxSamples).toBe(50);
  });

  it('reads a stored recipe back into the form', () => {
    const form = { ...filled(), protocol: 'stream' as const, window: 512, maxSamples: 64, speed: true, promptTokens: 8, decodeTokens: 4, name: 'x' };
    expect(formFromRecipe(buildRecipe(form))).toEqual(form);
    expect(formFromRecipe({ model: {} })).toBeNull();
  });
});

describe('the no-cache switch', () => {
  it('asks for fresh figures in the recipe and reads back from it', () => {
    const form = { ...filled(), noCache: true };
    const recipe = buildRecipe(form);
    expect(recipe.evaluation?.cache).toBe(false);
    expect(Recipe.parse(recipe).evaluation.cache).toBe(false);
    expect(formFromRecipe(recipe)?.noCache).toBe(true);
    expect(buildRecipe(filled()).evaluation?.cache).toBeUndefined();
  });
});
