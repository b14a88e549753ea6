/**
 * The evaluation cache's settings hash with an accuracy section: the labelled file's content and every
 * accuracy setting (a decoder's template, verbalizers, length normalisation) are part of the key, so an
 * evaluation with accuracy is never answered by one without it, nor by one that prompted differently;
 * the keys of evaluations without an accuracy section do not change.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Recipe, type RecipeInput } from '../../../preload/recipe.ts';
import { EvaluationCache } from '../../../main/jobs/evaluation-cache.ts';
import { ModelFileFactsCache } from '../../../main/jobs/model-file.ts';
import { openHistory } from '../../../main/history/index.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const scratch = tempDir('whittle-cache-key-');
const history = openHistory({ home: scratch.dir });
afterAll(() => { history.close(); scratch.cleanup(); });

const labels = path.join(scratch.dir, 'labels.jsonl');
writeFileSync(labels, '{"text": "a happy day", "label": "happy"}\n{"text": "a sad day", "label": "sad"}\n');
const other = path.join(scratch.dir, 'other.jsonl');
writeFileSync(other, '{"text": "a glad day", "label": "happy"}\n{"text": "a sad day", "label": "sad"}\n');

const recipe = (accuracy?: Record<string, unknown>): Recipe => Recipe.parse({
  model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
  evaluation: { perplexity: { text: STORIES.text, maxSamples: 10 }, ...(accuracy ? { accuracy } : {}) },
} as RecipeInput);

describe('the evaluation cache key', () => {
  it('covers the accuracy section: its file content and its prompt settings', async () => {
    const cache = new EvaluationCache(history, new ModelFileFactsCache());
    const key = (r: Recipe): Promise<string | null> => cache.settingsHash(r);
    const plain = await key(recipe());
    const withAccuracy = await key(recipe({ file: labels, heldOut: 1 }));
    expect(plain).not.toBeNull();
    expect(withAccuracy).not.toBe(plain);
    expect(await key(recipe({ file: labels, heldOut: 1 }))).toBe(withAccuracy);
    const variants = await Promise.all([
      key(recipe({ file: other, heldOut: 1 })),
      key(recipe({ file: labels, heldOut: 1, template: 'Q: {text}\nA:' })),
      key(recipe({ file: labels, heldOut: 1, verbalizers: ['glad', 'sad'] })),
      key(recipe({ file: labels, heldOut: 1, lengthNormalize: true })),
    ]);
    expect(new Set([withAccuracy, ...variants]).size).toBe(5);
  });
});
