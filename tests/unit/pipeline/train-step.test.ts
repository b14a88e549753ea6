// The train step's schema, description and shared helpers: what the CLI, the wizard, the job service and the history read.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { splitDocuments } from '../../../main/engine/data/text-file.ts';
import { trainCommand } from '../../../main/cli/commands.ts';
import { checkpointFolder } from '../../../main/engine/train/checkpoint-home.ts';
import { mergeCurves } from '../../../main/engine/train/curve-record.ts';
import { trainConfigOf } from '../../../main/engine/train/step.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';
import { progressPlan } from '../../../main/jobs/progress-plan.ts';
import { CHECKPOINTS_ARTEFACT, describeStep, parseStepDetails, recipeKind, resumable, TRAIN } from '../../../preload/methods.ts';
import { defaultWarmupSteps, FREEZE_ROLES, Recipe, TrainStep } from '../../../preload/recipe.ts';
import { planResume, withoutResume } from '../../../preload/resume.ts';
import { appendPoint, trainPointOf, trainSeriesPoint, type CurvePoint } from '../../../preload/series.ts';

const point = (step: number, loss = 5 - step / 10): CurvePoint => ({ step, totalSteps: 10, loss, lr: 1e-4 * step, gradNorm: 1, tokensPerSecond: 100, etaSeconds: 10 - step });
const issues = (input: unknown): string[] => {
  const r = TrainStep.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('the train step schema', () => {
  it('fills the documented defaults', () => {
    const s = TrainStep.parse({ type: 'train', text: 't.txt', steps: 4 });
    expect(s).toEqual({
      type: 'train', objective: 'lm', text: 't.txt', steps: 4, batch: 4, length: 128, accumulate: 1, lr: 3e-4, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1,
      freeze: [], keepSparsity: true, evalEvery: 20, seed: 0, checkpointEvery: 25,
    });
    expect(describeStep(s)).toBe(TRAIN);
  });

  it('needs exactly one of steps and epochs, a learning rate above 0 and a warmup within the run', () => {
    expect(issues({ type: 'train', text: 't.txt' })).toEqual(['steps: give exactly one of steps (optimizer steps) or epochs (passes over the text)']);
    expect(issues({ type: 'train', text: 't.txt', steps: 4, epochs: 1 })[0]).toMatch(/exactly one/);
    expect(issues({ type: 'train', text: 't.txt', steps: 4, lr: 0 })).toEqual(['lr: the learning rate must be above 0']);
    expect(issues({ type: 'train', text: 't.txt', steps: 4, lr: -1e-3 })[0]).toMatch(/^lr: /);
    expect(issues({ type: 'train', text: 't.txt', steps: 4, warmup: 5 })).toEqual(['warmup: the warmup (5 steps) is longer than the run (4 steps)']);
    expect(issues({ type: 'train', text: 't.txt', epochs: 0.5 })).toEqual([]);
    expect(issues({ type: 'train', text: 't.txt', steps: 4, extra: 1 })[0]).toMatch(/extra/);
  });

  it('takes freeze roles and patterns, and names an unknown role with the roles it knows', () => {
    expect(issues({ type: 'train', text: 't.txt', steps: 4, freeze: ['o', 'v', 'lm_head', '*.layers.0.*', 'model.norm.weight'] })).toEqual([]);
    const bad = issues({ type: 'train', text: 't.txt', steps: 4, freeze: ['o', 'attn'] });
    expect(bad).toHaveLength(1);
    expect(bad[0]).toContain('freeze.1: "attn" is not a role');
    for (const role of FREEZE_ROLES) expect(bad[0]).toContain(role);
  });

  it('the default warmup is about a tenth of the run, at most 100 steps, with epochs counted as the engine counts them', async () => {
    expect([0, 4, 10, 200, 5000].map(defaultWarmupSteps)).toEqual([0, 0, 1, 20, 100]);
    const signal = new AbortController().signal;
    const recipe = { tokenizer: { path: STORIES.tokenizer } };
    const bySteps = await trainConfigOf(TrainStep.parse({ type: 'train', text: STORIES.text, steps: 200 }), recipe, signal);
    expect(bySteps.warmupSteps).toBe(20);
    expect(bySteps).toMatchObject({ steps: 200, tokenizerPath: STORIES.tokenizer, batch: 4, length: 128, freeze: [], keepSparsity: true });
    expect(bySteps).not.toHaveProperty('epochs');
    // A short text: one pass is a few hundred steps, two passes twice as many (both under the cap of 100).
    const scratch = tempDir('whittle-train-config-');
    try {
      const text = path.join(scratch.dir, 'short.txt');
      writeFileSync(text, splitDocuments(readFileSync(STORIES.text, 'utf8')).slice(0, 60).join('\n\n'));
      const one = await trainConfigOf(TrainStep.parse({ type: 'train', text, epochs: 1, batch: 2, length: 32 }), recipe, signal);
      const two = await trainConfigOf(TrainStep.parse({ type: 'train', text, epochs: 2, batch: 2, length: 32 }), recipe, signal);
      expect(one.warmupSteps).toBeGreaterThan(2);
      expect(two.warmupSteps).toBeLessThan(100);
      expect(Math.abs(two.warmupSteps - 2 * one.warmupSteps)).toBeLessThanOrEqual(1);
    } finally {
      scratch.cleanup();
    }
    expect(await trainConfigOf(TrainStep.parse({ type: 'train', text: STORIES.text, epochs: 1, warmup: 3 }), recipe, signal)).toMatchObject({ warmupSteps: 3, epochs: 1 });
    await expect(trainConfigOf(TrainStep.parse({ type: 'train', text: STORIES.text, steps: 2 }), {}, signal)).rejects.toThrow(/needs the model's tokenizer/);
  });
});

describe('the train description', () => {
  it('is a resumable transform that needs a tokenizer and gradients and streams the train series', () => {
    expect(TRAIN).toMatchObject({ kind: 'transform', resumable: true, series: 'train', needs: { tokenizer: true, gradients: true }, jobTitle: 'Train' });
    const recipe = Recipe.parse({ model: { path: 'm.onnx' }, steps: [{ type: 'train', text: 't.txt', steps: 2 }] });
    expect(recipeKind(recipe)).toBe('train');
    expect(resumable(recipe)).toBe(true);
    expect(resumable(Recipe.parse({ model: { path: 'm.onnx' }, steps: [{ type: 'quantize', method: 'rtn' }] }))).toBe(false);
  });

  it('every option flag is a flag of `whittle train`, with the description\'s help', () => {
    const names = trainCommand.options.map((o) => o.name);
    for (const o of TRAIN.options) {
      if (o.flag === null) continue;
      expect(names, o.flag).toContain(o.flag);
      expect(trainCommand.options.find((c) => c.name === o.flag)!.description).toContain(o.help);
    }
    expect(trainCommand.notes).toContain(TRAIN.summary);
  });

  it('the details parse with the curve, and details without it are left out', () => {
    const frame = { type: 'train', input: 'a.onnx', output: 'out/model.onnx', outputDir: 'out', outputBytes: 10, modelBytes: 8 };
    const train = {
      ...frame, objective: 'lm', steps: 2, tokens: 256, trainableParameters: 10, frozenParameters: 2, firstLoss: 5, finalLoss: Number.NaN,
      tokensPerSecond: 100, seconds: 3, checkpointDir: '/c', config: { batch: 2, length: 32, accumulate: 1, lr: 1e-3, warmupSteps: 0, freeze: [] },
      curve: [point(1), point(2)],
    };
    const { curve: _curve, ...broken } = train;
    const parsed = parseStepDetails({ steps: [train, broken] });
    expect(parsed.map((s) => s.key)).toEqual(['train']);
    expect(parsed[0].key === 'train' && parsed[0].curve.map((p) => p.step)).toEqual([1, 2]);
  });

  it('plans compile, train and write, the train phase priced by its tokens', () => {
    const recipe = Recipe.parse({ model: { path: 'm.onnx' }, steps: [{ type: 'train', text: 't.txt', steps: 10, batch: 2, length: 32 }], evaluation: { footprint: false } });
    const plan = progressPlan(recipe, { textBytes: null });
    expect(plan.map((s) => s.phase)).toEqual(['load', 'compile', 'train', 'write']);
    expect(plan[2].cost).toBe(3 * 10 * 2 * 32);
  });
});

describe('series points', () => {
  it('a training point survives the trip through a series point, held-out loss included', () => {
    const p = { ...point(3), evalLoss: 4.2 };
    const s = trainSeriesPoint(p);
    expect(s).toMatchObject({ series: 'train', step: 3 });
    expect(trainPointOf(s)).toEqual(p);
    expect(trainPointOf(trainSeriesPoint(point(4)))).not.toHaveProperty('evalLoss');
  });

  it('a point at a step the curve has replaces that step and the ones after (a resume from an earlier checkpoint)', () => {
    let curve: CurvePoint[] = [];
    for (const s of [1, 2, 3, 4]) curve = appendPoint(curve, point(s));
    curve = appendPoint(curve, point(3, 9));
    expect(curve.map((p) => [p.step, p.loss])).toEqual([[1, 4.9], [2, 4.8], [3, 9]]);
  });

  it('a resumed run\'s curve is the earlier points before the engine\'s first step, then the engine\'s', () => {
    const earlier = [1, 2, 3, 4].map((s) => point(s));
    expect(mergeCurves(earlier, [point(3, 7), point(4, 6)]).map((p) => p.loss)).toEqual([4.9, 4.8, 7, 6]);
    expect(mergeCurves(earlier, [point(1, 1), point(2, 2)]).map((p) => p.loss)).toEqual([1, 2]);
    expect(mergeCurves([], [point(1)])).toHaveLength(1);
  });
});

describe('resume', () => {
  const recipe = { model: { path: '/m.onnx' }, tokenizer: { path: '/t.json' }, steps: [{ type: 'train', text: '/t.txt', steps: 8 }] };
  const artefacts = [{ kind: CHECKPOINTS_ARTEFACT, path: '/home/experiments/7-train/checkpoints/step-1', bytes: null }];

  it('continues an interrupted or cancelled run from the folder it recorded, the recipe otherwise as it was', () => {
    for (const status of ['interrupted', 'cancelled'] as const) {
      const plan = planResume({ id: 7, status, recipe, artefacts });
      expect(plan.ok).toBe(true);
      if (!plan.ok) continue;
      expect(plan.recipe).toEqual({ ...recipe, steps: [{ ...recipe.steps[0], resume: { checkpoints: artefacts[0].path, experiment: 7 } }] });
      expect(Recipe.safeParse(plan.recipe).success).toBe(true);
      // The resumed job records (and keeps writing) the same folder.
      const step = Recipe.parse(plan.recipe).steps[0] as TrainStep;
      expect(checkpointFolder(step, 0, '/home/experiments/9-train')).toBe(artefacts[0].path);
    }
    expect(checkpointFolder(TrainStep.parse(recipe.steps[0]), 0, '/home/experiments/9-train')).toBe('/home/experiments/9-train/checkpoints/step-1');
  });

  it('says why a run cannot be continued', () => {
    const reason = (e: Parameters<typeof planResume>[0]): string => { const p = planResume(e); return p.ok ? '' : p.reason; };
    expect(reason({ id: 3, status: 'cancelled', recipe: { model: { path: '/m.onnx' } }, artefacts: [] })).toMatch(/not a training run/);
    expect(reason({ id: 7, status: 'done', recipe, artefacts })).toMatch(/it finished/);
    expect(reason({ id: 7, status: 'running', recipe, artefacts })).toMatch(/still running/);
    expect(reason({ id: 7, status: 'interrupted', recipe, artefacts: [] })).toMatch(/no checkpoint folder/);
  });

  it('a re-run starts over: resume removed, everything else kept', () => {
    const resumed = { ...recipe, steps: [{ ...recipe.steps[0], resume: { checkpoints: '/c', experiment: 7 } }] };
    expect(withoutResume(resumed)).toEqual(recipe);
    expect(withoutResume(recipe)).toBe(recipe);
  });
});
