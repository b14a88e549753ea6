/**
 * The recipe schema of encoders: the train step's objective 'classify' (labels instead of text, an
 * optional teacher) beside the unchanged 'lm' default, and the evaluation's accuracy section.
 */
import { describe, expect, it } from 'vitest';
import { describeStep, TRAIN } from '../../../preload/methods.ts';
import { Recipe, TrainStep } from '../../../preload/recipe.ts';

const issues = (v: unknown): string[] => {
  const r = TrainStep.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('train step objectives', () => {
  it("keeps 'lm' the default and its wire format", () => {
    const step = TrainStep.parse({ type: 'train', text: '/t.txt', steps: 3 });
    expect(step.objective).toBe('lm');
    expect(step.text).toBe('/t.txt');
    expect('labels' in step).toBe(false);
    expect(describeStep(step)).toBe(TRAIN);
  });

  it("'classify' reads labelled data with a held-out share and seed, and may name a teacher", () => {
    const step = TrainStep.parse({ type: 'train', objective: 'classify', labels: { file: '/d.tsv' }, epochs: 1, teacher: { model: '/t.onnx' } });
    expect(step.labels).toEqual({ file: '/d.tsv', heldOut: 0.2, seed: 0 });
    expect(step.teacher).toEqual({ model: '/t.onnx', temperature: 2, alpha: 0.5 });
  });

  it('refuses a mix of the two and bad shares', () => {
    expect(issues({ type: 'train', objective: 'classify', steps: 1 })).toEqual(['labels: classification fine-tuning needs labelled data (a file with a text and a label column)']);
    expect(issues({ type: 'train', objective: 'classify', labels: { file: '/d.tsv' }, text: '/t.txt', steps: 1 })[0]).toMatch(/^text: .*not a plain text/);
    expect(issues({ type: 'train', objective: 'classify', labels: { file: '/d.tsv' }, evalText: '/t.txt', steps: 1 })[0]).toMatch(/^evalText: .*labels\.heldOut/);
    expect(issues({ type: 'train', steps: 1 })).toEqual(['text: next-token fine-tuning needs the training text']);
    expect(issues({ type: 'train', text: '/t.txt', labels: { file: '/d.tsv' }, steps: 1 })[0]).toMatch(/^labels: .*objective 'classify'/);
    expect(issues({ type: 'train', text: '/t.txt', teacher: { model: '/m.onnx' }, steps: 1 })[0]).toMatch(/^teacher: /);
    expect(issues({ type: 'train', objective: 'classify', labels: { file: '/d.tsv', heldOut: 0 }, steps: 1 })[0]).toMatch(/^labels\.heldOut: /);
    expect(issues({ type: 'train', objective: 'classify', labels: { file: '/d.tsv', heldOut: 2.5 }, steps: 1 })[0]).toMatch(/fraction below 1 or a whole count/);
    expect(issues({ type: 'train', objective: 'classify', labels: { file: '/d.tsv' }, teacher: { model: '/m.onnx', alpha: 2 }, steps: 1 })[0]).toMatch(/^teacher\.alpha: /);
  });
});

describe('the accuracy section', () => {
  it('has a held-out share of the file or a separate test file, not both', () => {
    const r = Recipe.parse({ model: { path: '/m.onnx' }, evaluation: { accuracy: { file: '/d.tsv' } } });
    expect(r.evaluation.accuracy).toEqual({ file: '/d.tsv', seed: 0, maxLength: 128 });
    const t = Recipe.parse({ model: { path: '/m.onnx' }, evaluation: { accuracy: { file: '/d.tsv', testFile: '/test.tsv', labelColumn: 'y' } } });
    expect(t.evaluation.accuracy?.testFile).toBe('/test.tsv');
    const both = Recipe.safeParse({ model: { path: '/m.onnx' }, evaluation: { accuracy: { file: '/d.tsv', testFile: '/t.tsv', heldOut: 0.3 } } });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0].path).toEqual(['evaluation', 'accuracy', 'heldOut']);
    expect(Recipe.safeParse({ model: { path: '/m.onnx' }, evaluation: { accuracy: { file: '/d.tsv', other: 1 } } }).success).toBe(false);
  });
});
