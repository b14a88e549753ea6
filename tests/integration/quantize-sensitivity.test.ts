/**
 * Per-layer sensitivity on stories260K: one entry per quantizable weight (or block), sorted by KL against
 * the original, the model left unchanged; the ranking's top weight at 8 bits lowers the all-weights KL of
 * uniform 4-bit.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleCalibration } from '../../main/engine/calibrate/index.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { quietContext, type Progress } from '../../main/engine/job-context.ts';
import { mixedPrecisionFromSensitivity } from '../../main/engine/quantize/mixed-precision.ts';
import { analyzeSensitivity, measureKl, sensitivityStep } from '../../main/engine/quantize/sensitivity.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { QuantizeRtnStep, Recipe, SensitivityStep } from '../../preload/recipe.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

let tmp: ReturnType<typeof tempDir>;
let calibText: string;
beforeAll(() => {
  tmp = tempDir('whittle-sens-');
  calibText = calibrationTextFromEnd(tmp.dir);
});
afterAll(() => tmp.cleanup());

const SAMPLES = 8;
const LENGTH = 128;
const step = (quantize: Record<string, unknown>, s: Record<string, unknown> = {}): SensitivityStep => SensitivityStep.parse({
  type: 'sensitivity', quantize: { type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, ...quantize }, samples: SAMPLES,
  calibration: { text: calibText, samples: 16, length: LENGTH, seed: 3 }, ...s,
});
const options = { tokenizerPath: STORIES.tokenizer, threads: 1 }; // one onnxruntime thread: a 260K model gains nothing from more

describe('stories260K', () => {
  it('RTN 4-bit per weight: one entry per quantizable weight, sorted, KL > 0; the top weight at 8 bits lowers the all-weights KL', async () => {
    const progress: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir), progress: (p: Progress) => { progress.push(p); } };
    const r = await analyzeSensitivity(STORIES.model, step({}), ctx, options);
    expect(r.sensitivity.length).toBe(35);
    expect(new Set(r.sensitivity.map((e) => e.name)).size).toBe(35);
    for (let i = 1; i < r.sensitivity.length; i++) expect(r.sensitivity[i - 1].kl).toBeGreaterThanOrEqual(r.sensitivity[i].kl);
    for (const e of r.sensitivity) {
      expect(e.kl).toBeGreaterThan(0);
      expect(e.bits).toBe(4);
      expect(e.weights).toEqual([e.name]);
      expect(e.params).toBeGreaterThan(0);
    }
    expect(r.baseline.kl).toBeGreaterThan(r.sensitivity[0].kl);
    expect(r.samples).toBe(SAMPLES);
    expect(r.tokens).toBe(SAMPLES * (LENGTH - 1));
    expect(progress.filter((p) => p.phase === 'sensitivity' && p.done > 0).length).toBe(36);
    console.log(`sensitivity (RTN 4-bit, ${SAMPLES} × ${LENGTH}): top ${r.sensitivity.slice(0, 3).map((e) => `${e.name} ${e.kl.toExponential(3)}`).join(', ')}; least ${r.sensitivity.at(-1)!.name} ${r.sensitivity.at(-1)!.kl.toExponential(3)}; all weights ${r.baseline.kl.toExponential(3)}`);
    // nothing left behind in the work folder
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('sensitivity-') || f.startsWith('.calibration-'))).toEqual([]);

    // One click: the most sensitive weight at 8 bits, the rest at 4 → lower KL than uniform 4-bit.
    const mixed = mixedPrecisionFromSensitivity(r.sensitivity, 1, '8bit');
    expect('overrides' in mixed).toBe(true);
    const rtn = (s: Partial<QuantizeRtnStep>): QuantizeRtnStep => QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32, ...s });
    const uniform = await quantizeWeightOnly(STORIES.model, rtn({}), path.join(tmp.dir, 'uniform'), quietContext(tmp.dir));
    const topAt8 = await quantizeWeightOnly(STORIES.model, rtn({ overrides: 'overrides' in mixed ? mixed.overrides : [] }), path.join(tmp.dir, 'mixed'), quietContext(tmp.dir));
    expect(topAt8.quantized.filter((w) => w.bits === 8).map((w) => w.name)).toEqual([r.sensitivity[0].name]);
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    const samples = sampleCalibration(readFileSync(calibText, 'utf8'), tokenizer, { samples: SAMPLES, length: LENGTH, seed: 3 });
    const klUniform = await measureKl(STORIES.model, uniform.modelPath, samples, 1);
    const klMixed = await measureKl(STORIES.model, topAt8.modelPath, samples, 1);
    console.log(`all-weights KL: uniform 4-bit ${klUniform.kl.toExponential(4)}, ${r.sensitivity[0].name} at 8 bits ${klMixed.kl.toExponential(4)}`);
    expect(klMixed.kl).toBeLessThan(klUniform.kl);
  });

  it('per block, GPTQ: five blocks of seven weights, through the recipe step (the model passes through unchanged)', async () => {
    const s = step({ method: 'gptq', calibration: { text: calibText, samples: 16, length: LENGTH } }, { granularity: 'block' });
    const out = await sensitivityStep.run({ modelPath: STORIES.model, recipe: Recipe.parse({ model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, steps: [s] }), step: s, index: 0 }, quietContext(tmp.dir));
    expect(out.modelPath).toBe(STORIES.model);
    expect(out.artefacts).toEqual([]);
    const list = out.details.sensitivity as { name: string; kl: number; weights: string[]; params: number }[];
    expect(list.map((e) => e.name).sort()).toEqual(['block 0', 'block 1', 'block 2', 'block 3', 'block 4']);
    for (const e of list) {
      expect(e.weights.length).toBe(7);
      expect(e.weights.every((w) => w.startsWith(`model.layers.${e.name.slice(6)}.`))).toBe(true);
      expect(e.kl).toBeGreaterThan(0);
    }
    expect(out.details).toMatchObject({ analysis: 'sensitivity', granularity: 'block', method: 'gptq', samples: SAMPLES });
    expect((out.details.baseline as { kl: number }).kl).toBeGreaterThan(list[0].kl);
    console.log(`block sensitivity (GPTQ 4-bit): ${list.map((e) => `${e.name} ${e.kl.toExponential(3)}`).join(', ')}`);
  });

  it('runs from a recipe (sensitivity in the default registry)', async () => {
    const recipe = Recipe.parse({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [step({ bits: 8 }, { samples: 2, granularity: 'block' })], evaluation: { footprint: false, samples: { prompts: ['Once'], maxNewTokens: 2 } },
    });
    const r = await runRecipe(recipe, quietContext(tmp.dir));
    const details = (r.details.steps as Record<string, unknown>[])[0];
    expect(details.output).toBe(details.input);
    expect((details.sensitivity as unknown[]).length).toBe(5);
  });

  it('too-short calibration text: the analysis fails before any work', async () => {
    const short = path.join(tmp.dir, 'short.txt');
    writeFileSync(short, 'Tom had a red ball.\n');
    const phases: string[] = [];
    const ctx = { ...quietContext(tmp.dir), progress: (p: Progress) => { phases.push(p.phase); } };
    const e = await analyzeSensitivity(STORIES.model, step({}, { calibration: { text: short, length: LENGTH } }), ctx, options).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/calibration text short\.txt yields about 0 sequences of 128 tokens; 8 were requested/);
    expect(phases).toEqual([]);
  });
});
