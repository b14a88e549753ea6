/**
 * Evaluation numbers do not depend on the batch size, for every kind of graph: stories260K in fp32, an
 * INT8 dynamic quantization of it (DynamicQuantizeLinear: the activation range spans the whole tensor,
 * so it runs one sample per run) and a 4-bit RTN one with MatMulNBits accuracy_level 4 (int8 activations
 * quantized per block of a row by onnxruntime, so it batches like fp32). Perplexity alone and the
 * lockstep comparison (both NLLs, KL, top-1) at batch 1 and 16 agree within 1e-6 relative.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTextFile } from '../../main/engine/data/text-file.ts';
import { loadTokenizer, type TextTokenizer } from '../../main/engine/data/tokenizer.ts';
import { compareOnText } from '../../main/engine/evaluate/agreement.ts';
import { openDecoder, type Decoder } from '../../main/engine/evaluate/decoder-session.ts';
import { evaluatePerplexity, type PerplexitySettings } from '../../main/engine/evaluate/perplexity.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { quantizeInt8Dynamic } from '../../main/engine/quantize/int8-dynamic.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { QuantizeInt8DynamicStep, QuantizeRtnStep } from '../../preload/recipe.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const config: PerplexitySettings = { protocol: 'documents', window: 128, maxSamples: 40, minTokens: 16 };
const tmp = tempDir('whittle-batch-');
let tokenizer: TextTokenizer;
let text: string;
const decoders: Record<'fp32' | 'int8' | 'rtn4', Decoder> = {} as never;

beforeAll(async () => {
  tokenizer = await loadTokenizer(STORIES.tokenizer);
  text = await readTextFile(STORIES.text);
  const ctx = quietContext(tmp.dir);
  const int8 = await quantizeInt8Dynamic(STORIES.model, QuantizeInt8DynamicStep.parse({ type: 'quantize', method: 'int8-dynamic' }), path.join(tmp.dir, 'int8'), ctx);
  const rtn = await quantizeWeightOnly(STORIES.model, QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', bits: 4, accuracyLevel: 4 }), path.join(tmp.dir, 'rtn4'), ctx);
  decoders.fp32 = await openDecoder(STORIES.model, { threads: 1 });
  decoders.int8 = await openDecoder(int8.modelPath, { threads: 1 });
  decoders.rtn4 = await openDecoder(rtn.modelPath, { threads: 1 });
}, 120_000);

afterAll(async () => {
  for (const d of Object.values(decoders)) await d.release();
  tmp.cleanup();
});

const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

describe('batch size', () => {
  it('tells which graphs couple the rows of a run', () => {
    expect(decoders.fp32.rowCoupling.independentRows).toBe(true);
    expect(decoders.rtn4.rowCoupling.independentRows).toBe(true);
    expect(decoders.int8.rowCoupling.independentRows).toBe(false);
    expect(decoders.int8.rowCoupling.ops.DynamicQuantizeLinear).toBeGreaterThan(0);
  });

  for (const name of ['fp32', 'int8', 'rtn4'] as const) {
    it(`${name}: perplexity at batch 1 and 16 has the same total NLL within 1e-6`, async () => {
      const ctx = quietContext(tmp.dir);
      const one = await evaluatePerplexity(decoders[name], tokenizer, text, config, ctx, { batchSize: 1 });
      const sixteen = await evaluatePerplexity(decoders[name], tokenizer, text, config, ctx, { batchSize: 16 });
      console.log(`${name}: perplexity batch 1 ${one.perplexity.toFixed(6)}, batch 16 ${sixteen.perplexity.toFixed(6)} (runs of ${sixteen.details.batchSize})`);
      expect(relative(sixteen.totalNll, one.totalNll)).toBeLessThanOrEqual(1e-6);
      for (let i = 0; i < one.sampleNll.length; i++) expect(relative(sixteen.sampleNll[i], one.sampleNll[i])).toBeLessThanOrEqual(1e-5);
      expect(sixteen.details.batchSize).toBe(name === 'int8' ? 1 : 16);
      expect(String(sixteen.details.batching)).toMatch(name === 'int8' ? /one sample per run.*DynamicQuantizeLinear/ : /up to 16 samples per run/);
    });
  }

  for (const name of ['int8', 'rtn4'] as const) {
    it(`fp32 beside ${name}: NLLs, KL and top-1 at batch 1 and 16 agree within 1e-6, and match the model alone`, async () => {
      const ctx = quietContext(tmp.dir);
      const one = await compareOnText(decoders.fp32, decoders[name], tokenizer, text, config, ctx, { batchSize: 1 });
      const sixteen = await compareOnText(decoders.fp32, decoders[name], tokenizer, text, config, ctx, { batchSize: 16 });
      expect(relative(sixteen.original.totalNll, one.original.totalNll)).toBeLessThanOrEqual(1e-6);
      expect(relative(sixteen.result.totalNll, one.result.totalNll)).toBeLessThanOrEqual(1e-6);
      expect(relative(sixteen.agreement.klMean, one.agreement.klMean)).toBeLessThanOrEqual(1e-6);
      expect(sixteen.agreement.top1).toBe(one.agreement.top1);
      expect(one.agreement.klMean).toBeGreaterThan(0);
      const alone = await evaluatePerplexity(decoders[name], tokenizer, text, config, ctx, { batchSize: 1 });
      expect(one.result.totalNll).toBe(alone.totalNll);
    });
  }
});
