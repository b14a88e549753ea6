import { describe, expect, it } from 'vitest';
import { QuantizeRtnStep, Recipe } from '../../../preload/recipe.ts';
import {
  buildQuantizeRecipe, defaultQuantizeForm, exactNamePattern, findLmHead, firstStepWithIssues, invalidKeepPatterns, issuesForStep,
  matchingKeepPatterns, METHODS, parseKeepPatterns, planStep, quantizeFieldForIssuePath, quantizeFormFromRecipe, quantizeIssuesFromServer,
  toggleKeepPattern, validateQuantizeForm,
} from '../../../renderer/lib/quantize-form.ts';
import { href, parseHash } from '../../../renderer/lib/route.ts';

const filled = () => ({
  ...defaultQuantizeForm('/m/stories260K-kv.onnx'),
  tokenizerPath: '/m/tokenizer.json',
  textPath: '/t/tinystories-eval.txt',
});

describe('quantize form → recipe', () => {
  it('builds a recipe with one RTN step and the evaluation the schema accepts, with the wizard\u2019s defaults', () => {
    const recipe = Recipe.parse(buildQuantizeRecipe(filled()));
    expect(recipe.model.path).toBe('/m/stories260K-kv.onnx');
    expect(recipe.tokenizer?.path).toBe('/m/tokenizer.json');
    expect(recipe.steps).toEqual([{
      type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 4, format: 'matmulnbits', keep: [], overrides: [],
    }]);
    expect(recipe.evaluation.perplexity).toEqual({ text: '/t/tinystories-eval.txt', protocol: 'documents', window: 256, maxSamples: 400, minTokens: 16 });
    expect(recipe.evaluation.speed).toMatchObject({ promptTokens: 64, decodeTokens: 64 });
    expect(recipe.evaluation.samples?.prompts).toHaveLength(3);
    expect(recipe.evaluation.footprint).toBe(true);
  });

  it('carries every method setting and the keep patterns (one per line, blanks ignored)', () => {
    const form = { ...filled(), bits: 8 as const, blockSize: '128', symmetric: true, accuracyLevel: 0, format: 'qdq' as const, keepText: ' lm_head \n\n^a\\.b$\n' };
    const step = Recipe.parse(buildQuantizeRecipe(form)).steps[0];
    expect(step).toMatchObject({ bits: 8, blockSize: 128, symmetric: true, accuracyLevel: 0, format: 'qdq', keep: ['lm_head', '^a\\.b$'] });
  });

  it('without evaluation asks only for the footprint (and speed when on): no tokenizer or text needed', () => {
    const form = { ...defaultQuantizeForm('/m/a.onnx'), evaluate: false, speed: false };
    const recipe = Recipe.parse(buildQuantizeRecipe(form));
    expect(recipe.evaluation).toEqual({ footprint: true });
    expect(validateQuantizeForm(form)).toEqual({});
  });

  it('round-trips through a stored recipe ("Quantize again", re-attach)', () => {
    const form = { ...filled(), bits: 2 as const, blockSize: 64, symmetric: true, keepText: 'lm_head\n^x$', name: 'try', window: 128, maxSamples: 100, prompts: 'A\nB' };
    const back = quantizeFormFromRecipe(Recipe.parse(buildQuantizeRecipe(form)));
    expect(back).toEqual(form);
    expect(quantizeFormFromRecipe({ model: { path: '/m.onnx' } })).toBeNull();
    expect(quantizeFormFromRecipe({ nonsense: true })).toBeNull();
  });

  it('the plan is asked with the same step the recipe carries, and not while a keep pattern is broken', () => {
    const form = { ...filled(), keepText: 'lm_head' };
    expect(planStep(form)).toEqual(QuantizeRtnStep.parse(buildQuantizeRecipe(form).steps![0]));
    expect(planStep({ ...form, keepText: 'lm_head\n(' })).toBeNull();
    expect(planStep({ ...form, blockSize: 48 })).toBeNull();
  });
});

describe('validation by wizard step', () => {
  it('names the missing files on the Model step', () => {
    const issues = validateQuantizeForm(defaultQuantizeForm(''));
    expect(issues.modelPath).toMatch(/model file/);
    expect(issues.tokenizerPath).toMatch(/tokenizer/);
    expect(issues.textPath).toMatch(/text file/);
    expect(firstStepWithIssues(issues)).toBe(0);
    expect(issuesForStep(issues, 1)).toEqual({});
  });

  it('puts a bad block size on the Method step and a broken keep pattern on the Weights step', () => {
    const bad = validateQuantizeForm({ ...filled(), blockSize: 48 });
    expect(bad.blockSize).toMatch(/power of two/);
    expect(firstStepWithIssues(bad)).toBe(1);
    const regex = validateQuantizeForm({ ...filled(), keepText: 'ok\nq_proj(' });
    expect(regex.keepText).toContain('"q_proj("');
    expect(firstStepWithIssues(regex)).toBe(2);
  });

  it('maps N, L and prompt issues to their fields with friendly words', () => {
    const issues = validateQuantizeForm({ ...filled(), window: '', maxSamples: 0, prompts: Array.from({ length: 17 }, (_, i) => `p${i}`).join('\n') });
    expect(issues.window).toBe('Enter a number.');
    expect(issues.maxSamples).toBe('At least 1.');
    expect(issues.prompts).toBeTruthy();
    expect(firstStepWithIssues(issues)).toBe(0);
  });

  it('maps server issue paths to fields', () => {
    expect(quantizeFieldForIssuePath('steps.0.blockSize')).toBe('blockSize');
    expect(quantizeFieldForIssuePath(['steps', 0, 'keep', 2])).toBe('keepText');
    expect(quantizeFieldForIssuePath('/evaluation/perplexity/window')).toBe('window');
    expect(quantizeFieldForIssuePath('output.dir')).toBe('form');
    expect(quantizeIssuesFromServer([{ path: 'steps.0.bits', message: 'Invalid input' }, { path: 'output', message: 'bad' }]))
      .toEqual({ bits: 'Invalid input', form: 'output: bad' });
  });
});

describe('keep toggles → keep patterns', () => {
  it('a toggle adds the escaped exact-name pattern, which matches that name only', () => {
    const name = 'model.layers.0.self_attn.q_proj.weight_t';
    const pattern = exactNamePattern(name);
    expect(pattern).toBe('^model\\.layers\\.0\\.self_attn\\.q_proj\\.weight_t$');
    expect(new RegExp(pattern).test(name)).toBe(true);
    expect(new RegExp(pattern).test('model.layers.0.self_attn.q_proj.weight_t2')).toBe(false);
    expect(new RegExp(pattern).test('modelXlayers.0.self_attn.q_proj.weight_t')).toBe(false);
    expect(new RegExp(exactNamePattern('a+b(c)[d]{2}?*|$^/\\')).test('a+b(c)[d]{2}?*|$^/\\')).toBe(true);
  });

  it('on adds once, off removes only that pattern, hand-written patterns stay', () => {
    let text = 'lm_head';
    text = toggleKeepPattern(text, 'w.1', true);
    text = toggleKeepPattern(text, 'w.1', true);
    expect(parseKeepPatterns(text)).toEqual(['lm_head', '^w\\.1$']);
    text = toggleKeepPattern(text, 'w.2', true);
    text = toggleKeepPattern(text, 'w.1', false);
    expect(parseKeepPatterns(text)).toEqual(['lm_head', '^w\\.2$']);
    expect(toggleKeepPattern('', 'w.3', false)).toBe('');
  });

  it('reports broken patterns and tells which patterns keep a weight', () => {
    expect(invalidKeepPatterns(['ok', '(', '[a-'])).toEqual([
      expect.objectContaining({ pattern: '(', index: 1 }),
      expect.objectContaining({ pattern: '[a-', index: 2 }),
    ]);
    expect(matchingKeepPatterns(['proj', '^x$', '('], 'q_proj')).toEqual(['proj']);
  });
});

describe('method descriptors and the LM head', () => {
  it('every method card has a one-line trade-off; RTN says what it costs', () => {
    expect(METHODS.map((m) => m.id)).toContain('rtn');
    for (const m of METHODS) expect(m.tradeoff).not.toMatch(/\n/);
    expect(METHODS.find((m) => m.id === 'rtn')!.tradeoff).toBe('Fastest; rounds each weight block to the nearest level. Good at 8-bit, noticeably lossy at 4-bit on small models.');
  });

  it('finds the LM head by name, else as the widest last projection', () => {
    const w = (name: string, shape: number[], op = 'MatMul') => ({ name, shape, op });
    expect(findLmHead([w('a.q', [64, 64]), w('lm_head.weight', [64, 512]), w('b.q', [64, 64])])!.name).toBe('lm_head.weight');
    expect(findLmHead([w('a', [64, 64]), w('b', [64, 172]), w('proj_out', [64, 32000])])!.name).toBe('proj_out');
    expect(findLmHead([w('a', [64, 172]), w('b', [172, 64])])).toBeNull();
    expect(findLmHead([w('emb', [512, 64], 'Gather')])).toBeNull();
  });
});

describe('the wizard route', () => {
  it('round-trips the model path and the job, and follows an experiment alone', () => {
    const path = '/home/me/my models/#1.onnx';
    expect(parseHash(href.quantize(path))).toEqual({ name: 'quantize', path, jobId: null, experimentId: null });
    expect(parseHash(href.quantize(path, { jobId: 'j', experimentId: 3 }))).toEqual({ name: 'quantize', path, jobId: 'j', experimentId: 3 });
    expect(parseHash(href.quantize('', { experimentId: 9 }))).toEqual({ name: 'quantize', path: '', jobId: null, experimentId: 9 });
  });
});

describe('the quantize form no-cache switch', () => {
  it('asks for fresh figures in the recipe and reads back from it', () => {
    const form = { ...defaultQuantizeForm('/m/model.onnx'), tokenizerPath: '/m/tokenizer.json', textPath: '/m/eval.txt', noCache: true };
    const recipe = buildQuantizeRecipe(form);
    expect(recipe.evaluation?.cache).toBe(false);
    expect(Recipe.parse(recipe).evaluation.cache).toBe(false);
    expect(quantizeFormFromRecipe(recipe)?.noCache).toBe(true);
    expect(buildQuantizeRecipe({ ...form, noCache: false }).evaluation?.cache).toBeUndefined();
  });
});
