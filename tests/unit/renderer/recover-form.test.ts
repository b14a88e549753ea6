// The Recover option of the Prune and Quantize wizards: a distill step after the compression step (the
// compressed model its student, the original its teacher), its issues on the step that holds it, and a
// stored recipe read back with it.
import { describe, expect, it } from 'vitest';
import { recipeKind } from '../../../preload/methods.ts';
import { Recipe } from '../../../preload/recipe.ts';
import { recoverStep } from '../../../preload/recover.ts';
import { buildPruneRecipe, defaultPruneForm, firstPruneStepWithIssues, pruneFormFromRecipe, validatePruneForm, type PruneForm } from '../../../renderer/lib/prune-form.ts';
import { buildQuantizeRecipe, defaultQuantizeForm, quantizeFormFromRecipe, validateQuantizeForm, type QuantizeForm } from '../../../renderer/lib/quantize-form.ts';

const prune = (over: Partial<PruneForm> = {}): PruneForm => ({
  ...defaultPruneForm('/m/model.onnx'), tokenizerPath: '/m/tokenizer.json', textPath: '/t/eval.txt', calibText: '/t/calib.txt', ...over,
});
const quantize = (over: Partial<QuantizeForm> = {}): QuantizeForm => ({
  ...defaultQuantizeForm('/m/model.onnx'), tokenizerPath: '/m/tokenizer.json', textPath: '/t/eval.txt', calibText: '/t/calib.txt', ...over,
});

describe('the Recover option', () => {
  it('is off by default: one compression step', () => {
    expect(Recipe.parse(buildPruneRecipe(prune())).steps).toHaveLength(1);
    expect(Recipe.parse(buildQuantizeRecipe(quantize())).steps).toHaveLength(1);
  });

  it('adds the recovery after the prune step, on the calibration text unless another is given', () => {
    const r = Recipe.parse(buildPruneRecipe(prune({ recover: true, recoverSteps: 30 })));
    expect(r.steps.map((s) => s.type)).toEqual(['prune', 'distill']);
    expect(r.steps[1]).toEqual(Recipe.parse({ model: { path: 'x' }, steps: [recoverStep({ text: '/t/calib.txt', steps: 30 })] }).steps[0]);
    expect(recipeKind(r)).toBe('prune');
    const own = Recipe.parse(buildPruneRecipe(prune({ recover: true, recoverSteps: 30, recoverText: '/t/train.txt' })));
    expect(own.steps[1]).toMatchObject({ type: 'distill', student: { from: 'input' }, data: { text: '/t/train.txt' }, schedule: { steps: 30 } });
  });

  it('adds the recovery after the quantize step, and reads both back from a stored recipe', () => {
    const form = quantize({ method: 'fp16', recover: true, recoverSteps: 12, recoverText: '/t/train.txt' });
    const r = Recipe.parse(buildQuantizeRecipe(form));
    expect(r.steps.map((s) => s.type)).toEqual(['quantize', 'distill']);
    // RTN and GPTQ in the MatMulNBits format recover on their grid; the QDQ format and INT8 add no distill step and ask for none of its fields.
    expect(Recipe.parse(buildQuantizeRecipe(quantize({ method: 'rtn', recover: true, recoverSteps: 12 }))).steps.map((s) => s.type)).toEqual(['quantize', 'distill']);
    // … at the grid recovery's lr, norms and embedding frozen; FP16 keeps the distill defaults.
    expect(Recipe.parse(buildQuantizeRecipe(quantize({ method: 'gptq', recover: true, recoverSteps: 12 }))).steps[1]).toMatchObject({ schedule: { lr: 1e-3 }, freeze: ['norm', 'embedding'] });
    expect(r.steps[1]).toMatchObject({ schedule: { lr: 3e-4 } });
    expect(validateQuantizeForm(quantize({ method: 'gptq', recover: true, recoverSteps: 0 })).recoverSteps).toBeTruthy();
    expect(Recipe.parse(buildQuantizeRecipe(quantize({ method: 'rtn', format: 'qdq', recover: true, recoverSteps: 12 }))).steps.map((s) => s.type)).toEqual(['quantize']);
    expect(Recipe.parse(buildQuantizeRecipe(quantize({ method: 'int8-dynamic', recover: true, recoverSteps: 12 }))).steps.map((s) => s.type)).toEqual(['quantize']);
    expect(validateQuantizeForm(quantize({ method: 'int8-dynamic', recover: true, recoverSteps: 0 })).recoverSteps).toBeUndefined();
    expect(quantizeFormFromRecipe(r)).toMatchObject({ recover: true, recoverSteps: 12, recoverText: '/t/train.txt' });
    expect(pruneFormFromRecipe(Recipe.parse(buildPruneRecipe(prune({ recover: true, recoverSteps: 7 }))))).toMatchObject({ recover: true, recoverSteps: 7, recoverText: '/t/calib.txt' });
    expect(quantizeFormFromRecipe(Recipe.parse(buildQuantizeRecipe(quantize())))).toMatchObject({ recover: false });
  });

  it('refuses a recovery without a text or with 0 steps, on the step that holds it', () => {
    const noText = validatePruneForm(prune({ method: 'magnitude', calibText: '', recover: true }));
    expect(noText.recoverText).toMatch(/text to recover on/);
    expect(firstPruneStepWithIssues(noText)).toBe(2);
    expect(validatePruneForm(prune({ recover: true, recoverSteps: 0 })).recoverSteps).toBeTruthy();
    expect(validateQuantizeForm(quantize({ method: 'fp16', recover: true, recoverSteps: 0 })).recoverSteps).toBeTruthy();
    expect(validateQuantizeForm(quantize({ method: 'fp16', recover: true, tokenizerPath: '', evaluate: false })).tokenizerPath).toMatch(/Recovery reads text/);
    expect(validatePruneForm(prune({ recover: true, recoverSteps: 5 }))).toEqual({});
  });
});
