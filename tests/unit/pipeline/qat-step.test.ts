/**
 * KD-QAT as a quantize method: the recipe step's defaults and checks, its description (flags, needs,
 * details schema), the request its runner makes of distillModel (the input model as teacher and
 * student), and the Quantize wizard's form to and from the step.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeStep, METHOD_FLAGS, QAT, QatDetailsSchema, QUANTIZE_METHOD_IDS } from '../../../preload/methods.ts';
import { QuantizeQatStep, Recipe } from '../../../preload/recipe.ts';
import { qatRequestOf, qatTrainStepOf } from '../../../main/engine/quantize/qat-step.ts';
import { buildQuantizeRecipe, defaultQuantizeForm, quantizeFormFromRecipe, validateQuantizeForm } from '../../../renderer/lib/quantize-form.ts';

const minimal = { type: 'quantize', method: 'qat', text: 'train.txt', steps: 8 } as const;
const messages = (input: unknown): string[] => {
  const r = QuantizeQatStep.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

/** The model a previous step would hand over: only named, never read. */
const STEP_INPUT = path.join(os.tmpdir(), 'step-1', 'model.onnx');

describe('the KD-QAT recipe step', () => {
  it('has the method defaults: 4-bit, block 32, asymmetric, no frozen roles, B 8, T 64, lr 2e-4, T 2, α 0.5', () => {
    expect(QuantizeQatStep.parse(minimal)).toMatchObject({
      bits: 4, blockSize: 32, symmetric: false, freezeRoles: [], batch: 8, length: 64, lr: 2e-4, temperature: 2, alpha: 0.5, seed: 0, checkpointEvery: 25,
    });
  });

  it('refuses 2 bits, unknown roles, a missing text and a schedule of both steps and epochs, each on its field', () => {
    expect(messages({ ...minimal, bits: 2 })).toEqual(['bits: KD-QAT exports 4 or 8 bits (MatMulNBits): choose 4 or 8']);
    expect(messages({ ...minimal, freezeRoles: ['o', 'value'] })[0]).toMatch(/^freezeRoles\.1: "value" is not a role Whittle knows/);
    expect(messages({ type: 'quantize', method: 'qat', steps: 8 })[0]).toMatch(/^text: /);
    expect(messages({ ...minimal, epochs: 1 })[0]).toMatch(/^steps: give exactly one of steps/);
    expect(messages({ ...minimal, warmup: 9 })[0]).toMatch(/^warmup: the warmup \(9 steps\) is longer than the run \(8 steps\)/);
    expect(messages({ ...minimal, bits: 8, freezeRoles: ['o', 'v'] })).toEqual([]);
  });

  it('is described once: a quantize method that needs the tokenizer and gradients, streams train points, with its flags', () => {
    expect(QUANTIZE_METHOD_IDS).toContain('qat');
    expect(QAT).toMatchObject({ key: 'quantize:qat', title: 'KD-QAT (quantization-aware training)', needs: { tokenizer: true, gradients: true }, series: 'train', resumable: true });
    for (const flag of ['bits', 'block-size', 'symmetric', 'freeze-roles', 'text', 'steps', 'lr', 'temperature', 'alpha']) {
      expect(QAT.options.some((o) => o.flag === flag), flag).toBe(true);
      expect(METHOD_FLAGS).toContain(flag);
    }
    expect(describeStep(QuantizeQatStep.parse(minimal))).toBe(QAT);
  });

  it('its details schema takes what the runner reports and refuses a report without the grid', () => {
    const details = {
      method: 'qat', outputDir: '/o', outputBytes: 10, modelBytes: 8, steps: 2, tokens: 64, trainableParameters: 5, frozenParameters: 1, firstLoss: 3, finalLoss: 2,
      tokensPerSecond: 100, seconds: 1, checkpointDir: '/c', config: { batch: 2, length: 16, accumulate: 1, lr: 1e-4, warmupSteps: 0, freeze: ['o', 'v'] },
      curve: [{ step: 1, totalSteps: 2, loss: 3, lr: 1e-4, gradNorm: 1, tokensPerSecond: 100, etaSeconds: 1 }],
      bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 0, freezeRoles: ['o', 'v'], quantized: 35, loss: { temperature: 2, alpha: 0.5 }, warnings: [],
    };
    expect(QatDetailsSchema.safeParse(details).success).toBe(true);
    const { bits: _bits, ...withoutBits } = details;
    expect(QatDetailsSchema.safeParse(withoutBits).success).toBe(false);
  });
});

describe('the KD-QAT runner', () => {
  it('asks distillModel for the input model as teacher and student, logits KD, the grid and the frozen roles', () => {
    const step = QuantizeQatStep.parse({ ...minimal, bits: 8, blockSize: 64, symmetric: true, freezeRoles: ['o', 'v'], temperature: 3, alpha: 0.7 });
    const recipe = Recipe.parse({ model: { path: '/m/original.onnx' }, tokenizer: { path: '/m/tokenizer.json' }, steps: [step] });
    const config = { textPath: '/t', tokenizerPath: '/m/tokenizer.json', steps: 8, batch: 8, length: 64, accumulate: 1, lr: 2e-4, warmupSteps: 1, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, freeze: [], keepSparsity: true, evalEvery: 20, seed: 0, checkpointEvery: 25 };
    const req = qatRequestOf(step, { modelPath: STEP_INPUT, recipe }, config, { outDir: '/out', checkpointDir: '/ckpt' });
    expect(req).toMatchObject({
      teacherPath: STEP_INPUT, student: { kind: 'model', path: STEP_INPUT },
      loss: { temperature: 3, alpha: 0.7, reverse: false, hidden: 0 }, signal: { kind: 'logits' },
      qat: { bits: 8, blockSize: 64, symmetric: true, freezeRoles: ['o', 'v'] }, deliver: 'partial', outDir: '/out', checkpointDir: '/ckpt', resume: false,
    });
    expect(qatTrainStepOf(step)).toMatchObject({ type: 'train', objective: 'lm', text: 'train.txt', steps: 8, batch: 8, length: 64, lr: 2e-4, freeze: [] });
  });
});

describe('the Quantize wizard form for KD-QAT', () => {
  it('builds the step from the form (ov-freeze as the o and v roles) and reads it back', () => {
    const form = {
      ...defaultQuantizeForm('/m/model.onnx'), tokenizerPath: '/m/tokenizer.json', evaluate: false,
      method: 'qat' as const, bits: 8 as const, blockSize: 64, qatText: '/t/train.txt', qatSteps: 40, qatLr: '0.0001', qatFreezeOv: true,
    };
    expect(validateQuantizeForm(form)).toEqual({});
    const recipe = Recipe.parse(buildQuantizeRecipe(form));
    expect(recipe.steps[0]).toMatchObject({ type: 'quantize', method: 'qat', bits: 8, blockSize: 64, freezeRoles: ['o', 'v'], text: '/t/train.txt', steps: 40, lr: 1e-4 });
    expect(quantizeFormFromRecipe(recipe)).toMatchObject({ method: 'qat', bits: 8, blockSize: 64, qatText: '/t/train.txt', qatSteps: 40, qatLr: 1e-4, qatFreezeOv: true });
  });

  it('asks for a training text, the tokenizer and 4 or 8 bits', () => {
    const form = { ...defaultQuantizeForm('/m/model.onnx'), evaluate: false, method: 'qat' as const, bits: 2 as const };
    const issues = validateQuantizeForm(form);
    expect(issues.qatText).toMatch(/training|train on/i);
    expect(issues.tokenizerPath).toMatch(/tokenizer/);
    expect(issues.bits).toMatch(/4 or 8 bits/);
  });
});
