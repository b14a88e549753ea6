/**
 * The Quantize wizard's form for every method: the step each method builds (checked by the recipe schema
 * main uses), round trips through a stored recipe, calibration validation, the sensitivity recipe, and
 * "keep the top k" — the same patterns as the engine's mixedPrecisionFromSensitivity.
 */
import { describe, expect, it } from 'vitest';
import { recipeKind } from '../../../preload/methods.ts';
import { DEFAULT_FP16_BLOCK_OPS, QuantizeStep, Recipe } from '../../../preload/recipe.ts';
import { mixedPrecisionFromSensitivity } from '../../../main/engine/quantize/mixed-precision.ts';
import {
  applyTopK, buildQuantizeRecipe, buildSensitivityRecipe, calibrationSeconds, defaultQuantizeForm, expectedQuality, firstStepWithIssues, METHODS,
  parseKeepPatterns, planStep, quantizeFieldForIssuePath, quantizeFormFromRecipe, roughDuration, sensitivityIssues, sensitivityOf, sensitivitySeconds,
  settingsLine, shortWeightName, validateQuantizeForm, type MethodId, type QuantizeForm, type SensitivityRow,
} from '../../../renderer/lib/quantize-form.ts';

const filled = (method: MethodId = 'rtn'): QuantizeForm => ({
  ...defaultQuantizeForm('/m/stories260K-kv.onnx'),
  tokenizerPath: '/m/tokenizer.json',
  textPath: '/t/tinystories-eval.txt',
  calibText: '/t/tinystories-calibration.txt',
  method,
});

const rows: SensitivityRow[] = [
  { name: 'model.layers.0.mlp.down_proj.weight_t', kl: 0.0066, bits: 4, params: 11008, weights: ['model.layers.0.mlp.down_proj.weight_t'] },
  { name: 'model.layers.1.self_attn.k_proj.weight_t', kl: 0.0081, bits: 4, params: 2048, weights: ['model.layers.1.self_attn.k_proj.weight_t'] },
  { name: 'model.layers.2.self_attn.q_proj.weight_t', kl: 0.0012, bits: 4, params: 4096, weights: ['model.layers.2.self_attn.q_proj.weight_t'] },
];

describe('every method card builds a step the recipe schema accepts', () => {
  it('lists the six methods, calibration only for GPTQ and INT8 static', () => {
    expect(METHODS.map((m) => m.id)).toEqual(['rtn', 'gptq', 'fp16', 'int8-dynamic', 'int8-static', 'qat']);
    expect(METHODS.filter((m) => m.calibration).map((m) => m.id)).toEqual(['gptq', 'int8-static']);
    for (const m of METHODS) expect(m.tradeoff).not.toMatch(/\n/);
  });

  it('GPTQ: bits, block, act-order, percdamp and the calibration N × L with a seed', () => {
    const form = { ...filled('gptq'), bits: 8 as const, blockSize: 64, actOrder: true, percdamp: '0.05', calibSamples: 16, calibLength: '128', calibSeed: 7 };
    const step = Recipe.parse(buildQuantizeRecipe(form)).steps[0];
    expect(step).toEqual({
      type: 'quantize', method: 'gptq', bits: 8, blockSize: 64, symmetric: false, accuracyLevel: 4, format: 'matmulnbits', keep: [], overrides: [],
      calibration: { text: '/t/tinystories-calibration.txt', samples: 16, length: 128, seed: 7 }, percdamp: 0.05, actOrder: true, columnBlock: 128, sequential: true,
    });
  });

  it('FP16, INT8 dynamic and INT8 static carry their own settings and the keep patterns', () => {
    const fp16 = Recipe.parse(buildQuantizeRecipe({ ...filled('fp16'), keepIoTypes: false, blockOps: ['Softmax'], keepText: 'lm_head' })).steps[0];
    expect(fp16).toEqual({ type: 'quantize', method: 'fp16', keepIoTypes: false, blockOps: ['Softmax'], keep: ['lm_head'] });
    expect(Recipe.parse(buildQuantizeRecipe(filled('fp16'))).steps[0]).toMatchObject({ blockOps: DEFAULT_FP16_BLOCK_OPS, keepIoTypes: true });
    const dyn = Recipe.parse(buildQuantizeRecipe({ ...filled('int8-dynamic'), int8Format: 'dynamic-quantize-matmul', perChannel: false })).steps[0];
    expect(dyn).toEqual({ type: 'quantize', method: 'int8-dynamic', format: 'dynamic-quantize-matmul', perChannel: false, keep: [] });
    const st = Recipe.parse(buildQuantizeRecipe({ ...filled('int8-static'), rangeMethod: 'percentile', percentile: 99.9, activationType: 'int8', excludeText: 'MatMul_1\n\n^x$' })).steps[0];
    expect(st).toMatchObject({
      method: 'int8-static', rangeMethod: 'percentile', percentile: 99.9, activationType: 'int8', perChannel: true, exclude: ['MatMul_1', '^x$'],
      calibration: { text: '/t/tinystories-calibration.txt', samples: 128, length: 256, seed: 0 },
    });
  });

  it('round-trips every method through a stored recipe', () => {
    const forms: QuantizeForm[] = [
      { ...filled('rtn'), calibText: '', overrides: [{ pattern: '^a$', bits: 8 }] },
      { ...filled('gptq'), actOrder: true, percdamp: 0.02, columnBlock: 64, calibSamples: 16, calibLength: 128, calibSeed: 3, overrides: [{ pattern: '^b$', bits: 8 }] },
      { ...filled('fp16'), calibText: '', keepIoTypes: false, blockOps: ['Softmax', 'Pow'], keepText: 'lm_head' },
      { ...filled('int8-dynamic'), calibText: '', int8Format: 'dynamic-quantize-matmul', perChannel: false },
      { ...filled('int8-static'), rangeMethod: 'entropy', activationType: 'int8', excludeText: 'MatMul_3', perChannel: false },
    ];
    for (const form of forms) expect(quantizeFormFromRecipe(Recipe.parse(buildQuantizeRecipe(form))), form.method).toEqual(form);
    // A recipe whose quantize step follows a sensitivity analysis reads back too.
    const both = Recipe.parse({ ...buildQuantizeRecipe(filled('gptq')), steps: [...buildSensitivityRecipe(filled('gptq')).steps!, ...buildQuantizeRecipe(filled('gptq')).steps!] });
    expect(quantizeFormFromRecipe(both)?.method).toBe('gptq');
  });

  it('settings lines and expected quality say what each method does', () => {
    expect(settingsLine({ ...filled('gptq'), actOrder: true, overrides: [{ pattern: '^a$', bits: 8 }] })).toBe('GPTQ 4-bit, block 32, asymmetric, MatMulNBits, accuracy level 4, percdamp 0.01, act-order, 1 at 8-bit');
    expect(settingsLine(filled('fp16'))).toMatch(/^FP16, float32 inputs and outputs kept/);
    expect(settingsLine({ ...filled('int8-static'), rangeMethod: 'percentile' })).toBe('INT8 static (QDQ), Percentile 99.999, uint8 activations, per channel');
    expect(expectedQuality('fp16', 4).label).toBe('nearly lossless');
    expect(expectedQuality('int8-dynamic', 4).label).toBe('small loss');
    expect(expectedQuality('rtn', 4).label).toBe('noticeable on small models');
    expect(expectedQuality('gptq', 4).label).toBe('better than RTN at the same size');
  });
});

describe('calibration in the form', () => {
  it('GPTQ and INT8 static need a calibration text and a tokenizer (Method step); RTN does not', () => {
    const gptq = validateQuantizeForm({ ...filled('gptq'), calibText: '' });
    expect(gptq.calibText).toBe('Choose a UTF-8 text file to calibrate on.');
    expect(firstStepWithIssues(gptq)).toBe(1);
    const noEval = validateQuantizeForm({ ...filled('int8-static'), evaluate: false, tokenizerPath: '' });
    expect(noEval.tokenizerPath).toMatch(/Calibration needs the model's tokenizer/);
    expect(validateQuantizeForm({ ...filled('rtn'), calibText: '' })).toEqual({});
    expect(validateQuantizeForm(filled('gptq'))).toEqual({});
  });

  it('maps calibration and method issues to their fields with friendly words', () => {
    const issues = validateQuantizeForm({ ...filled('gptq'), calibLength: 4, calibSamples: '', percdamp: 2 });
    expect(issues.calibLength).toBe('At least 8.');
    expect(issues.calibSamples).toBe('Enter a number.');
    expect(issues.percdamp).toBe('At most 1.');
    expect(validateQuantizeForm({ ...filled('int8-static'), excludeText: 'MatMul_(' }).excludeText).toContain('"MatMul_("');
    expect(validateQuantizeForm({ ...filled('int8-static'), percentile: 80 }).percentile).toBe('At least 90.');
    expect(quantizeFieldForIssuePath('steps.0.calibration.seed')).toBe('calibSeed');
    expect(quantizeFieldForIssuePath(['steps', 0, 'overrides', 1, 'pattern'])).toBe('overrides');
  });

  it('asks the plan for every method even before a calibration text is chosen, not with a broken pattern', () => {
    const form = { ...filled('int8-static'), calibText: '' };
    for (const m of METHODS) expect(planStep(form, m.id)?.method, m.id).toBe(m.id);
    expect(QuantizeStep.safeParse(planStep(form, 'gptq')).success).toBe(true);
    expect(planStep({ ...form, excludeText: '(' })).toBeNull();
    expect(planStep({ ...form, keepText: '(' }, 'fp16')).toBeNull();
    // The plan for another method's card uses that method's own settings.
    expect(planStep({ ...filled('rtn'), bits: 8 }, 'gptq')).toMatchObject({ method: 'gptq', bits: 8 });
  });

  it('rough time estimates grow with the model and the tokens, and read coarsely', () => {
    expect(calibrationSeconds(7e9, 128 * 256)).toBeGreaterThan(calibrationSeconds(2.6e5, 128 * 256));
    expect(calibrationSeconds(1e9, 2048)).toBeLessThan(calibrationSeconds(1e9, 4096));
    expect(sensitivitySeconds(2.6e5, 35, 8 * 256)).toBeGreaterThan(10);
    expect(roughDuration(2)).toBe('a few seconds');
    expect(roughDuration(42)).toBe('about 40 s');
    expect(roughDuration(600)).toBe('about 10 min');
    expect(roughDuration(9000)).toBe('about 2.5 h');
  });
});

describe('per-layer sensitivity', () => {
  it('builds an analysis-only recipe with the RTN/GPTQ settings, without overrides, and no evaluation', () => {
    const form = { ...filled('gptq'), overrides: [{ pattern: '^a$', bits: 8 as const }], keepText: 'lm_head', calibLength: 128 };
    const recipe = Recipe.parse(buildSensitivityRecipe(form, 4));
    expect(recipeKind(recipe)).toBe('sensitivity');
    expect(recipe.evaluation).toEqual({ footprint: false });
    expect(recipe.tokenizer?.path).toBe('/m/tokenizer.json');
    expect(recipe.steps).toHaveLength(1);
    const step = recipe.steps[0];
    if (step.type !== 'sensitivity') throw new Error('expected a sensitivity step');
    expect(step).toMatchObject({ samples: 4, granularity: 'weight', calibration: { text: '/t/tinystories-calibration.txt', length: 128 } });
    expect(step.quantize).toMatchObject({ method: 'gptq', bits: 4, overrides: [], keep: ['lm_head'] });
    // Other methods measure with RTN settings.
    expect(Recipe.parse(buildSensitivityRecipe(filled('fp16'))).steps[0]).toMatchObject({ quantize: { method: 'rtn' }, samples: 8 });
    expect(recipe.name).toBe('Sensitivity GPTQ 4-bit · stories260K-kv');
  });

  it('says what stops the analysis from starting', () => {
    expect(sensitivityIssues(filled('rtn'), 8)).toEqual([]);
    expect(sensitivityIssues({ ...filled('rtn'), calibText: '', tokenizerPath: '' }, 8)).toEqual([
      "The analysis scores calibration text, which needs the model's tokenizer (Model step).", 'Choose a calibration text file.',
    ]);
    expect(sensitivityIssues(filled('rtn'), 0)).toEqual(['Sequences scored: At least 1.']);
  });

  it('reads the ranking from a finished job, most sensitive first', () => {
    const details = { steps: [{
      type: 'sensitivity', input: '/m/model.onnx', output: '/m/model.onnx', analysis: 'sensitivity', granularity: 'weight', method: 'rtn', metric: 'mean KL',
      quantize: { method: 'rtn', bits: 4, blockSize: 32, symmetric: false }, sensitivity: rows, baseline: { kl: 0.11, params: 17152 }, samples: 8, tokens: 1016,
    }] };
    const s = sensitivityOf(details)!;
    expect(s.rows.map((r) => r.kl)).toEqual([0.0081, 0.0066, 0.0012]);
    expect(s).toMatchObject({ baseline: { kl: 0.11 }, bits: 4, samples: 8, method: 'rtn' });
    expect(sensitivityOf({ steps: [{ type: 'quantize' }] })).toBeNull();
    expect(sensitivityOf({ steps: [{ ...details.steps[0], sensitivity: [{ name: 'w' }] }] })).toBeNull();
    expect(sensitivityOf(null)).toBeNull();
    expect(shortWeightName('model.layers.1.self_attn.k_proj.weight_t')).toBe('layers.1.self_attn.k_proj');
  });

  it('"keep the top k" writes the same exact-name patterns as the engine, as overrides or keep patterns, in one step', () => {
    const form = { ...filled('rtn'), keepText: 'lm_head' };
    const eight = applyTopK(form, rows, 2, '8bit');
    expect({ overrides: eight.overrides }).toEqual(mixedPrecisionFromSensitivity(rows, 2, '8bit'));
    expect(eight.overrides.map((o) => o.pattern)).toEqual(['^model\\.layers\\.1\\.self_attn\\.k_proj\\.weight_t$', '^model\\.layers\\.0\\.mlp\\.down_proj\\.weight_t$']);
    expect(eight.keepText).toBe('lm_head');
    // Again with another k replaces the overrides; "float" moves them to the keep patterns.
    expect(applyTopK(eight, rows, 1, '8bit').overrides).toHaveLength(1);
    const float = applyTopK(eight, rows, 1, 'float');
    const engineKeep = mixedPrecisionFromSensitivity(rows, 1, 'float');
    expect('keep' in engineKeep && parseKeepPatterns(float.keepText)).toEqual(['lm_head', ...('keep' in engineKeep ? engineKeep.keep : [])]);
    expect(float.overrides.map((o) => o.pattern)).toEqual(['^model\\.layers\\.0\\.mlp\\.down_proj\\.weight_t$']);
    // And back to 8-bit takes them out of the keep list again.
    expect(parseKeepPatterns(applyTopK(float, rows, 2, '8bit').keepText)).toEqual(['lm_head']);
    const step = Recipe.parse(buildQuantizeRecipe(eight)).steps[0];
    expect(step).toMatchObject({ overrides: [{ bits: 8 }, { bits: 8 }] });
  });
});
