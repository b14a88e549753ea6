// The evaluation engine on real models: the stories260K reference figure, the stream protocol, and every
// decoder layout fixture through perplexity, speed, footprint and generation.
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTextFile } from '../../main/engine/data/text-file.ts';
import { checkTokenizerFitsModel, loadTokenizer, type TextTokenizer } from '../../main/engine/data/tokenizer.ts';
import { openDecoder, type Decoder } from '../../main/engine/evaluate/decoder-session.ts';
import { footprintFromGraph, footprintMetrics } from '../../main/engine/evaluate/footprint.ts';
import { generate } from '../../main/engine/evaluate/generate.ts';
import { evaluatePerplexity, type PerplexitySettings } from '../../main/engine/evaluate/perplexity.ts';
import { measureSpeed, speedMetrics } from '../../main/engine/evaluate/speed.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const tmp = tempDir();
let stories: Decoder;
let tokenizer: TextTokenizer;
let text: string;

beforeAll(async () => {
  stories = await openDecoder(STORIES.model, { threads: 1 }); // vitest runs two files at once on two cores
  tokenizer = await loadTokenizer(STORIES.tokenizer);
  text = await readTextFile(STORIES.text);
});
afterAll(async () => {
  await stories.release();
  tmp.cleanup();
});

describe('stories260K perplexity', () => {
  it('reproduces the reference figure: documents, L = 256, first 400 → 4.2267 over 38,675 tokens', async () => {
    const config: PerplexitySettings = { protocol: 'documents', window: 256, maxSamples: 400, minTokens: 16 };
    const r = await evaluatePerplexity(stories, tokenizer, text, config, quietContext(tmp.dir));
    expect(r.predictedTokens).toBe(38_675);
    expect(r.samples).toBe(400);
    expect(Math.abs(r.perplexity - 4.2267)).toBeLessThan(1e-3);
    expect(r.details).toMatchObject({ protocol: 'documents', window: 256, maxSamples: 400, minTokens: 16, bos: 1 });
    expect(r.sampleNll).toHaveLength(400);
  });

  it('stream protocol on TinyStories: windows of 256, a sane perplexity', async () => {
    const config: PerplexitySettings = { protocol: 'stream', window: 256, maxSamples: 60, minTokens: 16 };
    const r = await evaluatePerplexity(stories, tokenizer, text, config, quietContext(tmp.dir));
    expect(r.samples).toBe(60);
    expect(r.predictedTokens).toBe(60 * 255);
    // Only the first N·L tokens (and a margin) are tokenized, never the whole text.
    expect(r.details.windowsInText).toBeNull();
    expect(r.details.streamTokens).toBeGreaterThanOrEqual(60 * 256);
    expect(r.details.streamTokens).toBeLessThan(2 * 60 * 256);
    expect(r.details.charsTokenized).toBeLessThan((r.details.charsInText as number) / 2);
    // Windows start mid-story without BOS, so a little worse than the documents figure, but the same model.
    expect(r.perplexity).toBeGreaterThan(3.5);
    expect(r.perplexity).toBeLessThan(6);
  });
});

describe('stories260K generation, speed and footprint', () => {
  it('generates greedily through the cache, the same as re-scoring the whole text', async () => {
    const g = await generate(stories, tokenizer, 'Once upon a time', 24);
    expect(g.newTokens.length).toBeGreaterThan(0);
    expect(g.text.startsWith('Once upon a time')).toBe(true);
    expect(g.completion.length).toBeGreaterThan(0);
    // Every generated token is the argmax of a full forward over everything before it.
    const ids = [...tokenizer.encode('Once upon a time'), ...g.newTokens];
    const { logits } = await stories.forward(ids);
    const start = ids.length - g.newTokens.length;
    for (let t = start; t < ids.length; t++) {
      const row = logits.subarray((t - 1) * 512, t * 512);
      expect(row.indexOf(Math.max(...row))).toBe(ids[t]);
    }
  });

  it('stops at EOS', async () => {
    const g = await generate(stories, tokenizer, 'The end.', 400);
    expect(g.stoppedAtEos || g.newTokens.length === 400).toBe(true);
    expect(g.newTokens.includes(2)).toBe(false);
  });

  it('measures prefill and cached decoding', async () => {
    const s = await measureSpeed(stories, { promptTokens: 32, decodeTokens: 16, repeats: 2, threads: 0 }, quietContext(tmp.dir), tokenizer.encode(text.slice(0, 400)));
    expect(s).toMatchObject({ prefillTokens: 32, decodeTokens: 16, decodeMode: 'kv-cache', repeats: 2 });
    expect(s.prefillRunsMs).toHaveLength(2);
    expect(s.prefillMs).toBeGreaterThan(0);
    expect(s.decodeTokensPerS).toBeGreaterThan(0);
    expect(speedMetrics(s).map((m) => m.name)).toEqual(['prefill_ms', 'prefill_ms_min', 'prefill_ms_max', 'prefill_tokens', 'decode_tokens_per_s', 'decode_tokens_per_s_min', 'decode_tokens_per_s_max', 'speed_repeats', 'speed_threads']);
  });

  it('counts bytes, parameters and bits per weight', async () => {
    const f = await footprintFromGraph(STORIES.model);
    expect(f.bytesOnDisk).toBe(statSync(STORIES.model).size);
    // llama2.c stories260K: 260,032 weights (classifier shared) plus the exported rotary tables.
    expect(f.parameters).toBeGreaterThan(260_000);
    expect(f.parameters).toBeLessThan(270_000);
    expect(f.bitsPerWeight).toBe(32);
    expect(footprintMetrics(f).map((m) => [m.name, m.unit])).toEqual([['bytes_on_disk', 'bytes'], ['parameters', ''], ['bits_per_weight', 'bits']]);
  });
});

describe('the ORT GenAI decoder fixtures', () => {
  const short: PerplexitySettings = { protocol: 'documents', window: 48, maxSamples: 6, minTokens: 16 };

  it('tiny GPT-2 (past_i): perplexity, speed and generation run with finite values', async () => {
    // Random weights, vocabulary 1000: the 512-token stories tokenizer fits it and exercises the graph.
    const d = await openDecoder(fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'));
    try {
      checkTokenizerFitsModel(tokenizer, d.vocabSize);
      const r = await evaluatePerplexity(d, tokenizer, text, short, quietContext(tmp.dir));
      expect(Number.isFinite(r.perplexity)).toBe(true);
      // Near-uniform random logits: close to the vocabulary size.
      expect(r.perplexity).toBeGreaterThan(500);
      expect(r.perplexity).toBeLessThan(2000);
      const s = await measureSpeed(d, { promptTokens: 16, decodeTokens: 8, repeats: 1, threads: 0 }, quietContext(tmp.dir));
      expect(s.decodeMode).toBe('kv-cache');
      expect(Number.isFinite(s.decodeTokensPerS) && s.decodeTokensPerS > 0).toBe(true);
      expect((await generate(d, tokenizer, 'Once upon a time', 5)).newTokens.length).toBeGreaterThan(0);
    } finally {
      await d.release();
    }
  });

  it('tiny Llama (fp16, external data): its own tokenizer, perplexity, speed, footprint', async () => {
    const model = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
    const own = await loadTokenizer(fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'tokenizer.json'));
    const d = await openDecoder(model);
    try {
      checkTokenizerFitsModel(own, d.vocabSize);
      expect(own.bosId).toBe(1);
      const r = await evaluatePerplexity(d, own, text, short, quietContext(tmp.dir));
      expect(Number.isFinite(r.perplexity)).toBe(true);
      expect(r.perplexity).toBeGreaterThan(10_000);
      expect(r.perplexity).toBeLessThan(60_000);
      const s = await measureSpeed(d, { promptTokens: 16, decodeTokens: 8, repeats: 1, threads: 0 }, quietContext(tmp.dir));
      expect(Number.isFinite(s.decodeTokensPerS) && s.decodeTokensPerS > 0).toBe(true);
    } finally {
      await d.release();
    }
    const f = await footprintFromGraph(model);
    expect(f.externalDataFiles).toHaveLength(1);
    expect(f.bytesOnDisk).toBe(statSync(model).size + statSync(f.externalDataFiles[0]).size);
    expect(f.bitsPerWeight).toBe(16);
    expect(f.bytesByDtype).toEqual({ float16: f.weightBytes });
  });
});
