// The distill step's schema, description and request: what the CLI, the wizard, the job service and the
// engine read. The schedule fields are the train step's (one fragment), nested under `schedule`.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { distillConfigOf, distillRequestOf, trainStepOf } from '../../../main/engine/distill/step.ts';
import { progressPlan } from '../../../main/jobs/progress-plan.ts';
import { describeStep, DISTILL, parseStepDetails, recipeKind, resumable, TRAIN } from '../../../preload/methods.ts';
import { DistillStep, Recipe, TrainSchedule, TrainStep } from '../../../preload/recipe.ts';
import { STORIES } from '../../helpers/fixtures.ts';

const minimal = { type: 'distill', student: { blocks: [0, 2, 4] }, data: { text: 't.txt' }, schedule: { steps: 4 } };
const issues = (input: unknown): string[] => {
  const r = DistillStep.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

/** The model a previous step would hand over: only named, never read. */
const STEP_INPUT = path.join(os.tmpdir(), 'step-1', 'model.onnx');

describe('the distill step schema', () => {
  it('fills the documented defaults: T = 2, α = 0.5, forward KL, no hidden loss, the teacher\'s logits, the train step\'s schedule', () => {
    const s = DistillStep.parse(minimal);
    expect(s).toEqual({
      type: 'distill', student: { blocks: [0, 2, 4] }, data: { text: 't.txt', batch: 4, length: 128 },
      loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, teacherSignal: { kind: 'logits' },
      schedule: { steps: 4, accumulate: 1, lr: 3e-4, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, evalEvery: 20, seed: 0, checkpointEvery: 25 },
    });
    expect(describeStep(s)).toBe(DISTILL);
    expect(DistillStep.parse({ ...minimal, teacherSignal: { kind: 'topk' } }).teacherSignal).toEqual({ kind: 'topk', k: 32 });
    expect(DistillStep.parse({ ...minimal, lora: { rank: 8 } }).lora).toEqual({ rank: 8, alpha: 16, dropout: 0, roles: ['q', 'k', 'v', 'o'] });
  });

  it('shares the schedule with the train step: the same fields and defaults, the same checks, under `schedule`', () => {
    const train = TrainStep.parse({ type: 'train', text: 't.txt', steps: 4 });
    const schedule = TrainSchedule.parse({ steps: 4 });
    for (const [k, v] of Object.entries(schedule)) expect(train[k as keyof typeof train], k).toEqual(v);
    expect(issues({ ...minimal, schedule: {} })).toEqual(['schedule.steps: give exactly one of steps (optimizer steps) or epochs (passes over the text)']);
    expect(issues({ ...minimal, schedule: { steps: 4, warmup: 5 } })).toEqual(['schedule.warmup: the warmup (5 steps) is longer than the run (4 steps)']);
    expect(issues({ ...minimal, schedule: { steps: 4, lr: 0 } })).toEqual(['schedule.lr: the learning rate must be above 0']);
  });

  it('takes a student of blocks (each once, in order), a model, or the step\'s input; and checks the loss', () => {
    expect(issues({ ...minimal, student: { blocks: [2, 0] } })[0]).toMatch(/^student.*increasing order/);
    expect(issues({ ...minimal, student: { blocks: [] } })).not.toEqual([]);
    expect(issues({ ...minimal, student: { model: 's.onnx' } })).toEqual([]);
    expect(issues({ ...minimal, student: { from: 'input' } })).toEqual([]);
    expect(issues({ ...minimal, student: { blocks: [0], model: 's.onnx' } })).not.toEqual([]);
    expect(issues({ ...minimal, loss: { alpha: 1.5 } })).toEqual(['loss.alpha: alpha is a weight from 0 to 1']);
    expect(issues({ ...minimal, loss: { temperature: 0 } })).toEqual(['loss.temperature: the temperature must be above 0']);
    expect(issues({ ...minimal, extra: 1 })[0]).toMatch(/extra/);
  });

  it('is a resumable transform streaming the train series; a recipe of it is a distill job', () => {
    expect(DISTILL).toMatchObject({ kind: 'transform', resumable: true, series: 'train', needs: { tokenizer: true, gradients: true } });
    expect(DISTILL.series).toBe(TRAIN.series);
    const recipe = Recipe.parse({ model: { path: 'm.onnx' }, steps: [minimal] });
    expect(recipeKind(recipe)).toBe('distill');
    expect(resumable(recipe)).toBe(true);
  });

  it('plans compile, train and write (and the teacher\'s cache before them with top-k), train priced by tokens with the teacher\'s pass', () => {
    const plain = progressPlan(Recipe.parse({ model: { path: 'm.onnx' }, steps: [{ ...minimal, data: { text: 't.txt', batch: 2, length: 32 } }], evaluation: { footprint: false } }), { textBytes: null });
    expect(plain.map((s) => s.phase)).toEqual(['load', 'compile', 'train', 'write']);
    expect(plain[2].cost).toBe(4 * 4 * 2 * 32);
    const cached = progressPlan(Recipe.parse({ model: { path: 'm.onnx' }, steps: [{ ...minimal, teacherSignal: { kind: 'topk', k: 8 } }], evaluation: { footprint: false } }), { textBytes: null });
    expect(cached.map((s) => s.phase)).toEqual(['load', 'teacher', 'compile', 'train', 'write']);
  });

  it('parses the details a distill step reports, and leaves out ones that do not match', () => {
    const frame = { type: 'distill', input: 'm.onnx', output: 'out/model.onnx', outputDir: 'out', outputBytes: 10, modelBytes: 8 };
    const run = {
      steps: 2, tokens: 128, trainableParameters: 10, frozenParameters: 0, firstLoss: 3, finalLoss: 2, tokensPerSecond: 50, seconds: 1, checkpointDir: '/c',
      config: { batch: 2, length: 32, accumulate: 1, lr: 1e-3, warmupSteps: 0, freeze: [] },
      curve: [{ step: 1, totalSteps: 2, loss: 3, lr: 1e-3, gradNorm: 1, tokensPerSecond: 50, etaSeconds: 1, parts: { kl: 1, ce: 2, agree: 0.5 } }],
    };
    const details = {
      ...frame, objective: 'distill', ...run, teacher: { path: 'm.onnx', blocks: 5, parameters: 100 }, student: { blocks: 3, keptBlocks: [0, 2, 4], parameters: 60 },
      loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 }, signal: { kind: 'topk', k: 8, cacheBytes: 1000 }, agreementBefore: 0.3, agreementAfter: 0.6, warnings: [],
    };
    const [d] = parseStepDetails({ steps: [details] });
    expect(d.key).toBe('distill');
    expect(d.key === 'distill' && d.curve[0].parts).toEqual({ kl: 1, ce: 2, agree: 0.5 });
    expect(parseStepDetails({ steps: [{ ...details, objective: 'lm' }] })).toEqual([]);
  });
});

describe('the engine request of a distill step', () => {
  const recipe = Recipe.parse({ model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, steps: [{ type: 'prune', method: 'magnitude' }, { ...minimal, student: { from: 'input' } }] });

  it('the teacher is the recipe\'s model unless named; a student from the input is the model the step receives', async () => {
    const step = recipe.steps[1];
    if (step.type !== 'distill') throw new Error('expected a distill step');
    const config = await distillConfigOf(step, recipe, new AbortController().signal);
    expect(config).toMatchObject({ textPath: expect.stringMatching(/t\.txt$/), tokenizerPath: STORIES.tokenizer, steps: 4, batch: 4, length: 128, freeze: [], keepSparsity: true, warmupSteps: 0 });
    const req = distillRequestOf(step, { modelPath: STEP_INPUT, recipe }, config, { outDir: '/o', checkpointDir: '/c' });
    expect(req).toMatchObject({
      teacherPath: STORIES.model, student: { kind: 'model', path: STEP_INPUT }, loss: { temperature: 2, alpha: 0.5, reverse: false, hidden: 0 },
      signal: { kind: 'logits' }, outDir: '/o', checkpointDir: '/c', deliver: 'partial', resume: false,
    });
    expect(req).not.toHaveProperty('lora');
    const named = DistillStep.parse({ ...minimal, teacher: '/t/teacher.onnx', teacherSignal: { kind: 'topk', k: 4 }, lora: { rank: 2 } });
    const r2 = distillRequestOf(named, { modelPath: STORIES.model, recipe }, config, { outDir: '/o', checkpointDir: '/c' });
    expect(r2).toMatchObject({ teacherPath: '/t/teacher.onnx', student: { kind: 'blocks', blocks: [0, 2, 4] }, signal: { kind: 'topk', k: 4 }, lora: { rank: 2, alpha: 16 } });
    expect(trainStepOf(named)).toMatchObject({ type: 'train', text: 't.txt', steps: 4, keepSparsity: true });
  });

  it('needs the tokenizer', async () => {
    const bare = Recipe.parse({ model: { path: STORIES.model }, steps: [minimal] });
    const step = bare.steps[0];
    if (step.type !== 'distill') throw new Error('expected a distill step');
    await expect(distillConfigOf(step, bare, new AbortController().signal)).rejects.toThrow(/Distillation reads text, which needs the teacher's tokenizer/);
  });
});

describe('LoRA on a distill step', () => {
  it('takes the roles the engine can adapt, and refuses others', () => {
    expect(DistillStep.parse({ ...minimal, lora: { rank: 4, roles: ['qkv', 'up', 'down'] } }).lora?.roles).toEqual(['qkv', 'up', 'down']);
    expect(DistillStep.safeParse({ ...minimal, lora: { rank: 4, roles: ['norm'] } }).success).toBe(false);
    expect(DistillStep.safeParse({ ...minimal, lora: { rank: 0 } }).success).toBe(false);
  });

  it('re-quantization of a quantized student: RTN, or GPTQ with its calibration, passed to the engine', async () => {
    const gptq = DistillStep.parse({ ...minimal, student: { from: 'input' }, lora: { rank: 2 }, requantize: { method: 'gptq', calibration: { text: 'c.txt' } } });
    expect(gptq.requantize).toEqual({ method: 'gptq', calibration: { text: expect.stringMatching(/c\.txt$/), samples: 128, length: 256, seed: 0 } });
    const recipe = Recipe.parse({ model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, steps: [gptq] });
    const config = await distillConfigOf(gptq, recipe, new AbortController().signal);
    expect(distillRequestOf(gptq, { modelPath: STEP_INPUT, recipe }, config, { outDir: '/o', checkpointDir: '/c' }).requantize).toMatchObject({ method: 'gptq', calibration: { samples: 128 } });
    const rtn = DistillStep.parse({ ...minimal, lora: { rank: 2 }, requantize: { method: 'rtn' } });
    expect(distillRequestOf(rtn, { modelPath: STEP_INPUT, recipe }, config, { outDir: '/o', checkpointDir: '/c' }).requantize).toEqual({ method: 'rtn' });
    expect(DistillStep.safeParse({ ...minimal, requantize: { method: 'gptq' } }).success).toBe(false); // GPTQ needs its calibration text
    expect(DistillStep.safeParse({ ...minimal, requantize: { method: 'awq' } }).success).toBe(false);
  });
});
