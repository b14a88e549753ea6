// `whittle train` flags → the recipe's train step; flags that do not fit are usage errors naming them.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError, type OptionValues } from '../../../main/cli/args.ts';
import { trainRecipe } from '../../../main/cli/train.ts';
import { STORIES } from '../../helpers/fixtures.ts';

const base = { text: STORIES.text, tokenizer: STORIES.tokenizer };

function usage(o: OptionValues): string {
  try {
    trainRecipe(STORIES.model, o);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

/** An output folder the recipe only names (nothing is written there). */
const OUT = path.join(os.tmpdir(), 'out-train');

describe('whittle train', () => {
  it('builds the train step and, with --eval-text, the held-out loss and the comparison on that text', () => {
    const r = trainRecipe(STORIES.model, {
      ...base, steps: 40, batch: 2, len: 32, lr: '1e-3', warmup: 4, 'weight-decay': '0', 'clip-norm': '0.5', freeze: ['embedding', '*.layers.0.*'],
      'no-keep-sparsity': true, 'eval-text': STORIES.text, 'eval-every': 10, seed: 3, 'checkpoint-every': 5, window: 64, samples: 20, out: OUT,
    });
    expect(r.tokenizer).toEqual({ path: STORIES.tokenizer });
    expect(r.steps?.[0]).toEqual({
      type: 'train', objective: 'lm', text: STORIES.text, steps: 40, batch: 2, length: 32, lr: 1e-3, warmup: 4, weightDecay: 0, clipNorm: 0.5,
      freeze: ['embedding', '*.layers.0.*'], keepSparsity: false, evalText: STORIES.text, evalEvery: 10, seed: 3, checkpointEvery: 5,
    });
    expect(r.evaluation).toMatchObject({ perplexity: { text: STORIES.text, window: 64, maxSamples: 20 } });
    expect(r.output).toEqual({ dir: OUT });
    expect(trainRecipe(STORIES.model, { ...base, epochs: '0.5' }).steps?.[0]).toMatchObject({ epochs: 0.5 });
  });

  it('finds tokenizer.json beside the model', () => {
    expect(trainRecipe(STORIES.model, { text: STORIES.text, steps: 2 }).tokenizer).toEqual({ path: STORIES.tokenizer });
  });

  it('bad input is a usage error that names the flag', () => {
    expect(usage({ ...base, steps: 2, lr: '0' })).toMatch(/--lr must be above 0/);
    expect(usage({ ...base, steps: 2, lr: '-1e-4' })).toMatch(/--lr must be above 0/);
    expect(usage({ ...base, steps: 2, lr: 'fast' })).toMatch(/--lr needs a number/);
    expect(usage({ ...base })).toMatch(/--steps N .* or --epochs E/);
    expect(usage({ ...base, steps: 2, epochs: '1' })).toMatch(/--steps and --epochs both/);
    expect(usage({ ...base, steps: 2, freeze: ['attention'] })).toMatch(/^--freeze: "attention" is not a role .*q, k, v, o/);
    expect(usage({ tokenizer: STORIES.tokenizer, steps: 2 })).toMatch(/--text FILE/);
    expect(usage({ ...base, steps: 2, 'eval-every': 5 })).toMatch(/--eval-every only applies with --eval-text/);
    expect(usage({ ...base, steps: 2, window: 64 })).toMatch(/--window only applies with --eval-text/);
    expect(usage({ ...base, steps: 2, batch: 0 })).toMatch(/^--batch: /);
    expect(usage({ ...base, steps: 2, warmup: 3 })).toBe('--warmup: the warmup (3 steps) is longer than the run (2 steps)');
  });
});
