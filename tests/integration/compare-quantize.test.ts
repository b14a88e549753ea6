/**
 * stories260K quantized to int8 and int4 (RTN, block 32) and compared with the fp32 original by the recipe
 * runner: perplexity of both from one lockstep pass (documents, L = 256, first 400), KL(original ‖ result),
 * top-1 agreement, footprint, default sample prompts side by side, and the metrics in whittle.json.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metric } from '../../preload/contract.ts';
import { DEFAULT_SAMPLE_PROMPTS, Recipe } from '../../preload/recipe.ts';
import type { Progress } from '../../main/engine/job-context.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { runRecipe, type RecipeResult } from '../../main/engine/pipeline/runner.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
const runs: Record<number, { result: RecipeResult; phases: Progress[]; out: string }> = {};

const value = (r: RecipeResult, name: string, subject: string): number => {
  const m = r.metrics.find((x: Metric) => x.name === name && x.subject === subject);
  if (!m) throw new Error(`no ${subject} ${name}`);
  return m.value;
};

beforeAll(async () => {
  tmp = tempDir('whittle-compare-');
  for (const bits of [8, 4] as const) {
    const out = path.join(tmp.dir, `int${bits}`);
    const phases: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir), progress: (p: Progress) => { phases.push(p); } };
    const recipe = Recipe.parse({
      model: { path: STORIES.model },
      tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'quantize', method: 'rtn', bits, blockSize: 32 }],
      evaluation: { perplexity: { text: STORIES.text, protocol: 'documents', window: 256, maxSamples: 400 } },
      output: { dir: out },
    });
    runs[bits] = { result: await runRecipe(recipe, ctx), phases, out };
  }
}, 120_000);
afterAll(() => tmp.cleanup());

describe('stories260K: fp32 original beside int8 and int4 results', () => {
  it('int8 stays within 0.5 % of the fp32 perplexity; int4 is reported and worse than int8', () => {
    const fp32 = value(runs[8].result, 'perplexity', 'original');
    const int8 = value(runs[8].result, 'perplexity', 'result');
    const int4 = value(runs[4].result, 'perplexity', 'result');
    console.log(`perplexity fp32 ${fp32}, int8 ${int8} (${((int8 / fp32 - 1) * 100).toFixed(3)} %), int4 ${int4} (${((int4 / fp32 - 1) * 100).toFixed(3)} %)`);
    expect(value(runs[4].result, 'perplexity', 'original')).toBe(fp32); // the same original, the same numbers
    expect(Math.abs(int8 / fp32 - 1)).toBeLessThan(0.005);
    expect(Number.isFinite(int4)).toBe(true);
    expect(int4).toBeGreaterThan(int8);
    expect(value(runs[8].result, 'predicted_tokens', 'result')).toBe(value(runs[8].result, 'predicted_tokens', 'original'));
  });

  it('KL(original ‖ int8) < KL(original ‖ int4); top-1 agreement int8 > int4 > 50 %', () => {
    const kl8 = value(runs[8].result, 'kl_mean', 'result');
    const kl4 = value(runs[4].result, 'kl_mean', 'result');
    const top8 = value(runs[8].result, 'top1_agreement', 'result');
    const top4 = value(runs[4].result, 'top1_agreement', 'result');
    console.log(`KL int8 ${kl8}, int4 ${kl4}; top-1 int8 ${top8} %, int4 ${top4} %`);
    expect(kl8).toBeGreaterThan(0);
    expect(kl8).toBeLessThan(kl4);
    expect(top8).toBeGreaterThan(top4);
    expect(top4).toBeGreaterThan(50);
    expect(top8).toBeLessThanOrEqual(100);
    const units = runs[8].result.metrics.filter((m) => m.name === 'kl_mean' || m.name === 'top1_agreement').map((m) => [m.name, m.unit, m.subject]);
    expect(units).toEqual([['kl_mean', 'nats', 'result'], ['top1_agreement', '%', 'result']]);
  });

  it('details: per-sample KL summary, worst samples, both perplexities, progress per batch', () => {
    const { result, phases } = runs[4];
    const agreement = result.details.agreement as {
      klMean: number; tokens: number; samples: number; klPerSample: number[];
      klPerTokenPerSample: { min: number; median: number; max: number };
      worstSamples: { index: number; klMean: number; preview: string }[];
    };
    expect(agreement.samples).toBe(400);
    expect(agreement.klPerSample).toHaveLength(400);
    expect(agreement.klPerTokenPerSample.min).toBeLessThanOrEqual(agreement.klPerTokenPerSample.median);
    expect(agreement.klPerTokenPerSample.median).toBeLessThanOrEqual(agreement.klPerTokenPerSample.max);
    expect(agreement.worstSamples[0].klMean).toBe(agreement.klPerTokenPerSample.max);
    expect(agreement.worstSamples[0].klMean).toBe(agreement.klPerSample[agreement.worstSamples[0].index]);
    expect(agreement.worstSamples[0].preview.length).toBeGreaterThan(0);
    const evaluation = result.details.evaluation as Record<string, { perplexity: { samples: number; sampleNll: number[] } }>;
    expect(evaluation.original.perplexity.samples).toBe(400);
    expect(evaluation.result.perplexity.sampleNll).toHaveLength(400);

    const compare = phases.filter((p) => p.phase === 'evaluate:compare');
    expect(compare[0]).toMatchObject({ done: 0, total: 400 });
    expect(compare.at(-1)).toMatchObject({ done: 400, total: 400 });
    expect(compare.length).toBeGreaterThan(10); // one per batch
    expect(phases.some((p) => p.phase === 'evaluate:perplexity')).toBe(false);
  });

  it('footprint of both: the results are smaller, int4 the smallest', () => {
    const size = (bits: 8 | 4, subject: string) => value(runs[bits].result, 'bytes_on_disk', subject);
    const bpw = (bits: 8 | 4, subject: string) => value(runs[bits].result, 'bits_per_weight', subject);
    console.log(`bytes fp32 ${size(8, 'original')}, int8 ${size(8, 'result')}, int4 ${size(4, 'result')}; bits/weight ${bpw(8, 'original')}, ${bpw(8, 'result')}, ${bpw(4, 'result')}`);
    expect(size(8, 'result')).toBeLessThan(size(8, 'original'));
    expect(size(4, 'result')).toBeLessThan(size(8, 'result'));
    expect(bpw(4, 'result')).toBeLessThan(bpw(8, 'result'));
  });

  it('greedy generations from the default prompts, original beside result', () => {
    const samples = runs[4].result.details.samples as { prompt: string; original: string; result: string }[];
    expect(samples.map((s) => s.prompt)).toEqual([...DEFAULT_SAMPLE_PROMPTS]);
    for (const s of samples) {
      expect(s.original.length).toBeGreaterThan(0);
      expect(s.result.length).toBeGreaterThan(0);
    }
    expect(runs[4].result.details.samplePrompts).toMatchObject({ source: 'default' });
  });

  it('writes the metrics into the output folder\'s whittle.json and names the result', async () => {
    const { result, out } = runs[8];
    const manifest = await readManifest(out);
    const written = manifest.metrics as Metric[];
    expect(written).toEqual(result.metrics);
    expect(manifest.evaluation).toMatchObject({ original: STORIES.model, agreement: { klMean: value(result, 'kl_mean', 'result') } });
    expect(manifest.step).toMatchObject({ bits: 8 }); // what the step wrote is kept
    expect(result.artefacts.map((a) => [a.kind, a.path])).toEqual([['folder', out], ['model', path.join(out, 'model.onnx')]]);
    expect(result.details.result).toMatchObject({ path: path.join(out, 'model.onnx'), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  });
});
