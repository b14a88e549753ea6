// `--recover-steps N [--recover-text F]` on whittle prune and quantize: a distill step after the compression
// step, whose student is the compressed model and whose teacher is the original (the recipe's model).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../main/cli/args.ts';
import { pruneCommand, quantizeCommand } from '../../../main/cli/commands.ts';
import { pruneRecipe } from '../../../main/cli/prune.ts';
import { quantizeRecipe } from '../../../main/cli/quantize.ts';
import { recoveryJson } from '../../../main/cli/recover.ts';
import { recipeKind } from '../../../preload/methods.ts';
import { Recipe } from '../../../preload/recipe.ts';
import { trainStepOf } from '../../../main/engine/distill/step.ts';
import { GRID_RECOVERY, isRecoverStep, recoverStep, writesGrid } from '../../../preload/recover.ts';
import { STORIES } from '../../helpers/fixtures.ts';

const TRAIN = '/texts/train.txt';

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('recovery after compression', () => {
  it('whittle prune … --recover-steps adds a distill step of the pruned model, the original its teacher', () => {
    const r = Recipe.parse(pruneRecipe(STORIES.model, { method: 'wanda', 'calib-text': STORIES.text, 'recover-steps': 20, 'recover-text': TRAIN, 'eval-text': STORIES.text }));
    expect(r.steps.map((s) => s.type)).toEqual(['prune', 'distill']);
    const d = r.steps[1];
    expect(d.type === 'distill' && d).toMatchObject({ student: { from: 'input' }, data: { text: TRAIN }, schedule: { steps: 20 }, loss: { temperature: 2, alpha: 0.5 } });
    expect(d.type === 'distill' && d.teacher).toBeUndefined();
    expect(r.model.path).toBe(STORIES.model);
    // Still a pruning job for the history and the default name.
    expect(recipeKind(r)).toBe('prune');
    expect(isRecoverStep(d)).toBe(true);
    expect(isRecoverStep(r.steps[0])).toBe(false);
  });

  it('whittle quantize … --recover-steps: FP16 and RTN/GPTQ (MatMulNBits, on their grid) recover on the given text; INT8 and QDQ point elsewhere', () => {
    const r = Recipe.parse(quantizeRecipe(STORIES.model, { method: 'fp16', 'recover-text': STORIES.text, 'recover-steps': 5 }));
    expect(r.steps[1]).toMatchObject({ type: 'distill', student: { from: 'input' }, data: { text: STORIES.text }, schedule: { steps: 5 } });
    expect(Recipe.parse(quantizeRecipe(STORIES.model, { bits: '4' })).steps).toHaveLength(1);
    const gptq = Recipe.parse(quantizeRecipe(STORIES.model, { method: 'gptq', bits: '4', 'calib-text': STORIES.text, 'recover-steps': 5 }));
    expect(gptq.steps.map((s) => s.type)).toEqual(['quantize', 'distill']);
    expect(gptq.steps[1]).toMatchObject({ student: { from: 'input' }, data: { text: STORIES.text }, schedule: { steps: 5 } });
    expect(Recipe.parse(quantizeRecipe(STORIES.model, { method: 'rtn', 'recover-text': TRAIN, 'recover-steps': 5 })).steps[1]).toMatchObject({ type: 'distill', data: { text: TRAIN } });
    expect(usage(() => quantizeRecipe(STORIES.model, { method: 'rtn', format: 'qdq', 'recover-text': TRAIN, 'recover-steps': 5 }))).toMatch(/QDQ format .* is not trained\. Quantize in the MatMulNBits format/);
    expect(usage(() => quantizeRecipe(STORIES.model, { method: 'int8-dynamic', 'recover-text': TRAIN, 'recover-steps': 5 }))).toMatch(/INT8 weights are not trained\. .*KD-QAT \(quantize --method qat\)/);
  });

  it('recovery of RTN/GPTQ MatMulNBits trains at lr 1e-3 with the norms and the embedding frozen; other recoveries keep the distill defaults', () => {
    for (const method of ['gptq', 'rtn']) {
      const r = Recipe.parse(quantizeRecipe(STORIES.model, { method, bits: '4', ...(method === 'gptq' ? { 'calib-text': STORIES.text } : { 'recover-text': STORIES.text }), 'recover-steps': 40 }));
      expect(r.steps[1], method).toMatchObject({ type: 'distill', schedule: { steps: 40, lr: GRID_RECOVERY.lr }, freeze: ['norm', 'embedding'] });
      const d = r.steps[1];
      // The distill step hands the freeze to the training.
      expect(d.type === 'distill' && trainStepOf(d).freeze).toEqual(['norm', 'embedding']);
    }
    const fp16 = Recipe.parse(quantizeRecipe(STORIES.model, { method: 'fp16', 'recover-text': TRAIN, 'recover-steps': 5 })).steps[1];
    const pruned = Recipe.parse(pruneRecipe(STORIES.model, { method: 'wanda', 'calib-text': STORIES.text, 'recover-steps': 5 })).steps[1];
    for (const d of [fp16, pruned]) {
      expect(d).toMatchObject({ type: 'distill', schedule: { lr: 3e-4 } });
      expect(d.type === 'distill' && d.freeze).toBeUndefined();
      expect(d.type === 'distill' && trainStepOf(d).freeze).toEqual([]);
    }
    expect(writesGrid({ type: 'quantize', method: 'gptq', format: 'qdq' })).toBe(false);
    expect(writesGrid({ type: 'prune', method: 'sparsegpt' })).toBe(false);
    // The distill step's freeze takes roles and patterns, as the train step's does.
    const step = (freeze: string[]) => ({ model: { path: 'm.onnx' }, steps: [{ type: 'distill', student: { from: 'input' }, data: { text: TRAIN }, schedule: { steps: 1 }, freeze }] });
    expect(Recipe.safeParse(step(['norm', '*.layers.0.*'])).success).toBe(true);
    const bad = Recipe.safeParse(step(['norms']));
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ['steps', 0, 'freeze', 0] });
    expect(bad.error?.issues[0].message).toMatch(/"norms" is not a role Whittle knows/);
  });

  it('bad input: no text to recover on, --recover-text alone, no tokenizer', () => {
    expect(usage(() => pruneRecipe(STORIES.model, { 'recover-steps': 5 }))).toMatch(/--recover-steps needs a training text: give it with --recover-text FILE/);
    expect(usage(() => pruneRecipe(STORIES.model, { 'recover-text': TRAIN }))).toMatch(/--recover-text only applies with --recover-steps/);
    expect(usage(() => pruneRecipe('/nowhere/model.onnx', { 'recover-steps': 5, 'recover-text': TRAIN }))).toMatch(/needs the model's tokenizer/);
  });

  it('both commands list the flags, and the shared step builder matches what the CLI writes', () => {
    for (const c of [pruneCommand, quantizeCommand]) expect(c.options.map((o) => o.name)).toEqual(expect.arrayContaining(['recover-steps', 'recover-text']));
    expect(recoverStep({ text: TRAIN, steps: 7, batch: 2, length: 32 })).toEqual({ type: 'distill', student: { from: 'input' }, data: { text: TRAIN, batch: 2, length: 32 }, schedule: { steps: 7 } });
  });

  it('--json reports the recovery from the distill step\'s details', () => {
    expect(recoveryJson({ steps: [{ type: 'prune' }] })).toBeNull();
    expect(recoveryJson({ steps: [{ type: 'prune' }, { type: 'distill', steps: 5, firstLoss: 3, finalLoss: 2, agreementAfter: 0.9, warnings: ['w'] }] }))
      .toEqual({ steps: 5, firstLoss: 3, finalLoss: 2, evalLossBefore: null, evalLossAfter: null, agreementBefore: null, agreementAfter: 0.9, warnings: ['w'] });
  });
});

