import { describe, expect, it } from 'vitest';
import { applyNoCache, recipeFromFlags } from '../../../main/cli/experiment.ts';
import { quantizeRecipe } from '../../../main/cli/quantize.ts';
import { STORIES } from '../../helpers/fixtures.ts';

describe('speed and cache flags', () => {
  it('quantize: --repeats sets the speed repeats, --no-cache asks for fresh figures', () => {
    const r = quantizeRecipe(STORIES.model, { speed: true, repeats: 7, 'no-cache': true });
    expect(r.evaluation).toMatchObject({ speed: { repeats: 7 }, cache: false });
    const plain = quantizeRecipe(STORIES.model, { speed: true });
    expect(plain.evaluation?.cache).toBeUndefined();
    expect(() => quantizeRecipe(STORIES.model, { repeats: 3 })).toThrow(/--repeats only applies with --speed/);
    expect(() => quantizeRecipe(STORIES.model, { speed: true, repeats: 0 })).toThrow(/--repeats/);
  });

  it('eval: --repeats implies speed; --no-cache is kept in the recipe', () => {
    const r = recipeFromFlags(STORIES.model, { tokenizer: STORIES.tokenizer, text: STORIES.text, repeats: 4, 'no-cache': true });
    expect(r.evaluation).toMatchObject({ speed: { repeats: 4 }, cache: false });
  });

  it('a recipe file run with --no-cache', () => {
    const submit = { model: { path: 'm.onnx' }, evaluation: { footprint: true } };
    expect(applyNoCache(submit, { 'no-cache': true })).toEqual({ model: { path: 'm.onnx' }, evaluation: { footprint: true, cache: false } });
    expect(applyNoCache(submit, {})).toBe(submit);
  });
});
