// One description per step (preload/methods.ts): the engine, the CLI and the wizard all list exactly these.
import { describe, expect, it } from 'vitest';
import { quantizeCommand } from '../../../main/cli/commands.ts';
import { FLAG_METHODS } from '../../../main/cli/quantize.ts';
import { defaultSteps } from '../../../main/engine/pipeline/registry.ts';
import {
  compresses, describeStep, JOB_KINDS, jobTitle, measuresCompressedSize, parseStepDetails, QUANTIZE_METHOD_IDS, QUANTIZE_METHODS, recipeKind, STEP_DESCRIPTIONS, type StepDescription,
} from '../../../preload/methods.ts';
import { Recipe } from '../../../preload/recipe.ts';
import { METHODS } from '../../../renderer/lib/quantize-form.ts';

describe('step descriptions', () => {
  it('every description has a registered step runner pointing back at it, and every runner is described', () => {
    const registered = Object.entries(defaultSteps) as [string, { description: StepDescription }][];
    expect(registered.map(([key]) => key).sort()).toEqual(STEP_DESCRIPTIONS.map((d) => d.key).sort());
    for (const [key, runner] of registered) expect(runner.description, key).toBe(STEP_DESCRIPTIONS.find((d) => d.key === key));
  });

  it('each description parses its own step with defaults, and its keys are unique', () => {
    expect(new Set(STEP_DESCRIPTIONS.map((d) => d.key)).size).toBe(STEP_DESCRIPTIONS.length);
    for (const d of STEP_DESCRIPTIONS) {
      expect(d.summary, d.key).not.toMatch(/\n/);
      expect(d.options.length, d.key).toBeGreaterThan(0);
      const minimal = { type: d.type, ...(d.method ? { method: d.method } : {}), ...(d.needs.tokenizer && !d.needs.gradients ? { calibration: { text: 'c.txt' } } : {}),
        ...(d.type === 'train' || d.key === 'quantize:qat' ? { text: 't.txt', steps: 4 } : {}),
        ...(d.type === 'distill' ? { student: { blocks: [0, 2] }, data: { text: 't.txt' }, schedule: { steps: 4 } } : {}),
        ...(d.type === 'sensitivity' ? { quantize: { type: 'quantize', method: 'rtn' } } : {}),
        ...(d.key === 'prune:structured' ? { target: 'heads', count: 1 } : {}) };
      const parsed = d.schema.safeParse(minimal);
      expect(parsed.success, `${d.key}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
      expect(describeStep(parsed.data as never)).toBe(d);
    }
  });

  it('the CLI help and the wizard cards list exactly the described quantization methods', () => {
    const methodOption = quantizeCommand.options.find((o) => o.name === 'method')!;
    expect(methodOption.choices).toEqual(QUANTIZE_METHOD_IDS);
    expect(METHODS.map((m) => m.id)).toEqual(QUANTIZE_METHOD_IDS);
    for (const d of QUANTIZE_METHODS) {
      expect(quantizeCommand.notes?.some((n) => n.includes(d.method) && n.includes(d.summary)), d.method).toBe(true);
      expect(METHODS.find((m) => m.id === d.method)!.name).toBe(d.title);
    }
    // Every flag a method's options name is a flag of the command, applying to the methods that name it.
    for (const [flag, methods] of Object.entries(FLAG_METHODS)) {
      expect(quantizeCommand.options.map((o) => o.name), flag).toContain(flag);
      for (const m of methods) expect(QUANTIZE_METHODS.find((d) => d.method === m)!.options.some((o) => o.flag === flag)).toBe(true);
    }
  });

  it('recipes take their kind and whether they compress from the traits', () => {
    const model = { path: 'm.onnx' };
    const sensitivity = { type: 'sensitivity', quantize: { type: 'quantize', method: 'rtn' }, calibration: { text: 'c.txt' } };
    const plain = Recipe.parse({ model });
    const analysis = Recipe.parse({ model, steps: [sensitivity] });
    const both = Recipe.parse({ model, steps: [sensitivity, { type: 'quantize', method: 'fp16' }] });
    expect([plain, analysis, both].map(recipeKind)).toEqual(['evaluate', 'sensitivity', 'quantize']);
    expect([plain, analysis, both].map(compresses)).toEqual([false, false, true]);
    expect(JOB_KINDS).toEqual(['evaluate', 'quantize', 'prune', 'sensitivity', 'train', 'distill']);
    expect(JOB_KINDS.map(jobTitle)).toEqual(['Evaluate', 'Quantize', 'Prune', 'Sensitivity of', 'Train', 'Distill']);
  });

  it('step details are parsed by their schema and tagged; ones that do not match are left out', () => {
    const frame = { type: 'quantize', input: 'a.onnx', output: 'out/model.onnx', outputDir: 'out', outputBytes: 10, modelBytes: 8 };
    const int8 = { ...frame, method: 'int8-dynamic', format: 'matmulinteger', perChannel: true, quantized: 1, quantizedWeights: [{ name: 'w', shape: [2, 2], sqError: Number.NaN }], skipped: [], activationCasts: 0, sqError: 0.5 };
    const broken = { ...frame, method: 'rtn', bits: 'four' };
    const steps = parseStepDetails({ steps: [int8, broken] });
    expect(steps.map((s) => s.key)).toEqual(['quantize:int8-dynamic']);
    expect(steps[0].key === 'quantize:int8-dynamic' && Number.isNaN(steps[0].quantizedWeights[0].sqError)).toBe(true);
    expect(parseStepDetails({ steps: 'none' })).toEqual([]);
  });

  it('the size compressed is measured where a step says its gain shows only there (pruning), not for quantization', () => {
    const quantize = { steps: [{ type: 'quantize', method: 'rtn' }] } as unknown as Recipe;
    const prune = { steps: [{ type: 'prune', method: 'magnitude' }, { type: 'quantize', method: 'rtn' }] } as unknown as Recipe;
    expect(measuresCompressedSize(quantize)).toBe(false);
    expect(measuresCompressedSize(prune)).toBe(true);
    expect(STEP_DESCRIPTIONS.filter((d: StepDescription) => d.measuresCompressedSize).map((d) => d.type)).toEqual(['prune', 'prune', 'prune', 'prune']);
  });
});
