/**
 * `whittle eval`'s flags → recipe: the tokenizer is found beside the model as quantize finds it, and is
 * only demanded when perplexity reads it (speed-only and footprint-only runs need none).
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { recipeFromFlags } from '../../../main/cli/experiment.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-eval-flags-');
afterAll(() => tmp.cleanup());

function modelIn(folder: string, withTokenizer: boolean): string {
  const dir = path.join(tmp.dir, folder);
  mkdirSync(dir, { recursive: true });
  const model = path.join(dir, 'model.onnx');
  copyFileSync(STORIES.model, model);
  if (withTokenizer) copyFileSync(STORIES.tokenizer, path.join(dir, 'tokenizer.json'));
  return model;
}

describe('whittle eval flags', () => {
  it('finds tokenizer.json beside the model for perplexity', () => {
    const model = modelIn('beside', true);
    const r = recipeFromFlags(model, { text: STORIES.text, window: 64 });
    expect(r.tokenizer).toEqual({ path: path.join(path.dirname(model), 'tokenizer.json') });
    expect(r.evaluation).toMatchObject({ perplexity: { text: STORIES.text, window: 64 }, footprint: true });
  });

  it('prefers --tokenizer over the one beside the model', () => {
    const model = modelIn('both', true);
    expect(recipeFromFlags(model, { text: STORIES.text, tokenizer: STORIES.tokenizer }).tokenizer).toEqual({ path: STORIES.tokenizer });
  });

  it('speed-only and footprint-only runs need no tokenizer and no text', () => {
    const model = modelIn('bare', false);
    const speed = recipeFromFlags(model, { speed: true, threads: 1 });
    expect(speed.tokenizer).toBeUndefined();
    expect(speed.evaluation).toEqual({ footprint: true, speed: { threads: 1 } });
    const footprint = recipeFromFlags(model, {});
    expect(footprint.evaluation).toEqual({ footprint: true });
    // A tokenizer beside the model is not pulled into a run that does not read it.
    expect(recipeFromFlags(modelIn('unused', true), { speed: true }).tokenizer).toBeUndefined();
  });

  it('says what is missing when --text has no tokenizer, and when perplexity flags have no text', () => {
    const model = modelIn('none', false);
    expect(() => recipeFromFlags(model, { text: STORIES.text })).toThrow(/--text needs the model's tokenizer: there is no tokenizer.json beside model.onnx/);
    expect(() => recipeFromFlags(model, { window: 64, speed: true })).toThrow(/--window sets up perplexity, which needs the text: give it with --text FILE/);
  });
});
