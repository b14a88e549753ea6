// The structured pruning step through runRecipe: the pruned sample is evaluated beside the original
// (perplexity, speed, parameters) and generates text greedily.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Recipe } from '../../preload/recipe.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { appRoot } from '../../main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';

const SAMPLE = path.join(appRoot(), 'main', 'resources', 'sample');
const tmp = tempDir('whittle-prune-structured-recipe-');
afterAll(() => tmp.cleanup());

describe('prune:structured through runRecipe', () => {
  it('removes a block; the result is smaller, evaluated beside the original, and generates', async () => {
    const recipe = Recipe.parse({
      model: { path: path.join(SAMPLE, 'stories260K-kv.onnx') },
      tokenizer: { path: path.join(SAMPLE, 'tokenizer.json') },
      steps: [{ type: 'prune', method: 'structured', target: 'layers', count: 1, importance: 'block-influence', calibration: { text: path.join(SAMPLE, 'tinystories-calibration.txt'), samples: 4, length: 32 } }],
      evaluation: {
        perplexity: { text: path.join(SAMPLE, 'tinystories-eval.txt'), maxSamples: 10 },
        speed: { promptTokens: 16, decodeTokens: 8, repeats: 1, threads: 1 },
        samples: { prompts: ['Once upon a time'], maxNewTokens: 12 },
      },
      output: { dir: path.join(tmp.dir, 'out') },
    });
    const result = await runRecipe(recipe, quietContext(tmp.dir));
    const metric = (name: string, subject: string): number => result.metrics.find((m) => m.name === name && m.subject === subject)!.value as number;
    expect(metric('parameters', 'result')).toBeLessThan(metric('parameters', 'original'));
    expect(metric('perplexity', 'result')).toBeGreaterThan(1);
    expect(Number.isFinite(metric('perplexity', 'result'))).toBe(true);
    const step = (result.details.steps as Record<string, unknown>[])[0];
    expect(step).toMatchObject({ method: 'structured', target: 'layers', importance: 'block-influence' });
    expect((step.paramsBefore as number) - (step.paramsAfter as number)).toBe(metric('parameters', 'original') - metric('parameters', 'result'));
    const samples = (result.details.samples as { prompt: string; result: string; original: string }[]);
    expect(samples[0].prompt).toBe('Once upon a time');
    expect(samples[0].result.trim().length).toBeGreaterThan(0);
  });
});
