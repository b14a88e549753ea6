import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { loadTokenizer, type TextTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { openDecoder, type Decoder } from '../../../main/engine/evaluate/decoder-session.ts';
import { encodePrefix, evaluatePerplexity, perplexityMetrics, perplexitySamples, type PerplexitySettings } from '../../../main/engine/evaluate/perplexity.ts';
import { quietContext, type Progress } from '../../../main/engine/job-context.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';
import { writeBigramDecoder } from './bigram-decoder.ts';

// A bigram model over the stories vocabulary, written as a real ONNX file: its perplexity has a closed form.
const V = 512;
const table = new Float32Array(V * V);
for (let i = 0; i < table.length; i++) table[i] = Math.sin(i * 0.37) * 4 + Math.cos(i * 0.011) * 2;

/** Σ −log softmax(table[prev])[next] over each sample, straight from the definition. */
function referenceNll(samples: number[][]): { nll: number; tokens: number } {
  let nll = 0;
  let tokens = 0;
  for (const ids of samples) for (let t = 0; t + 1 < ids.length; t++) {
    const row = Array.from(table.subarray(ids[t] * V, (ids[t] + 1) * V));
    const z = row.reduce((s, x) => s + Math.exp(x), 0);
    nll -= Math.log(Math.exp(row[ids[t + 1]]) / z);
    tokens++;
  }
  return { nll, tokens };
}

const tmp = tempDir();
let decoder: Decoder;
let tokenizer: TextTokenizer;
let text: string;

beforeAll(async () => {
  const file = path.join(tmp.dir, 'bigram512.onnx');
  writeBigramDecoder(file, table, V);
  decoder = await openDecoder(file);
  tokenizer = await loadTokenizer(STORIES.tokenizer);
  text = await readTextFile(STORIES.text);
});
afterAll(async () => {
  await decoder.release();
  tmp.cleanup();
});

const documents = (over: Partial<PerplexitySettings> = {}): PerplexitySettings => ({ protocol: 'documents', window: 64, maxSamples: 40, minTokens: 16, ...over });

describe('perplexitySamples', () => {
  it('documents: BOS + tokens, truncated to L, short paragraphs skipped, first N kept', () => {
    const { samples, info } = perplexitySamples(text, tokenizer, documents({ minTokens: 100 }));
    expect(samples).toHaveLength(40);
    const expected: number[][] = [];
    let skipped = 0;
    for (const doc of splitDocuments(text)) {
      if (expected.length === 40) break;
      const ids = tokenizer.encode(doc, { addBos: true });
      if (ids.length < 100) { skipped++; continue; }
      expected.push(ids.slice(0, 64));
    }
    expect(samples).toEqual(expected);
    expect(skipped).toBeGreaterThan(0);
    expect(info.documentsSkippedShort).toBe(skipped);
    expect(samples.every((s) => s[0] === 1 && s.length === 64)).toBe(true);
  });

  it('stream: one tokenization, non-overlapping windows of L', () => {
    const short = splitDocuments(text).slice(0, 30).join('\n\n');
    const all = tokenizer.encode(short);
    const { samples, info } = perplexitySamples(short, tokenizer, { protocol: 'stream', window: 128, maxSamples: 1000, minTokens: 16 });
    expect(info.windowsInText).toBe(Math.floor(all.length / 128));
    expect(samples).toHaveLength(Math.floor(all.length / 128));
    expect(samples.flat()).toEqual(all.slice(0, samples.length * 128));
  });
});

describe('evaluatePerplexity', () => {
  it('equals the closed form of the bigram model, whatever the batch size', async () => {
    const config = documents();
    const { samples } = perplexitySamples(text, tokenizer, config);
    const ref = referenceNll(samples);
    for (const batchSize of [1, 7, 40]) {
      const r = await evaluatePerplexity(decoder, tokenizer, text, config, quietContext(tmp.dir), { batchSize });
      expect(r.predictedTokens).toBe(ref.tokens);
      expect(Math.abs(r.totalNll - ref.nll) / ref.nll).toBeLessThan(1e-9);
      expect(r.perplexity).toBeCloseTo(Math.exp(ref.nll / ref.tokens), 9);
      expect(r.sampleTokens.reduce((a, b) => a + b, 0)).toBe(ref.tokens);
      expect(r.details.batchSize).toBe(batchSize);
    }
  });

  it('scores the stream protocol by windows', async () => {
    const config: PerplexitySettings = { protocol: 'stream', window: 100, maxSamples: 12, minTokens: 16 };
    const short = splitDocuments(text).slice(0, 60).join('\n\n');
    const r = await evaluatePerplexity(decoder, tokenizer, short, config, quietContext(tmp.dir));
    const ref = referenceNll(perplexitySamples(short, tokenizer, config).samples);
    expect(r.samples).toBe(12);
    expect(r.predictedTokens).toBe(12 * 99);
    expect(r.perplexity).toBeCloseTo(Math.exp(ref.nll / ref.tokens), 9);
    expect(r.details).toMatchObject({ protocol: 'stream', window: 100, samples: 12 });
  });

  it('hands every sample’s logits to observe', async () => {
    const seen: number[] = [];
    await evaluatePerplexity(decoder, tokenizer, text, documents({ maxSamples: 9 }), quietContext(tmp.dir), {
      batchSize: 4,
      observe: ({ index, ids, logits, vocab }) => {
        seen.push(index);
        expect(logits.length).toBe(ids.length * vocab);
        expect(Array.from(logits.subarray(0, vocab))).toEqual(Array.from(table.subarray(ids[0] * V, (ids[0] + 1) * V)));
      },
    });
    expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('reports progress per batch and stops between batches when cancelled', async () => {
    const controller = new AbortController();
    const events: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir, controller.signal), progress: (p: Progress) => {
      events.push(p);
      if (p.done >= 10) controller.abort();
    } };
    let error: unknown;
    try {
      await evaluatePerplexity(decoder, tokenizer, text, documents(), ctx, { batchSize: 5 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WhittleError);
    expect((error as WhittleError).code).toBe('CANCELLED');
    expect(events.map((e) => e.done)).toEqual([0, 5, 10]);
    expect(events.every((e) => e.phase === 'evaluate:perplexity' && e.total === 40)).toBe(true);
  });

  it('says when nothing is long enough to evaluate', async () => {
    let error: unknown;
    try {
      await evaluatePerplexity(decoder, tokenizer, 'Tiny.\n\nAlso tiny.', documents(), quietContext(tmp.dir));
    } catch (e) {
      error = e;
    }
    expect((error as WhittleError).code).toBe('INVALID_INPUT');
    expect((error as WhittleError).message).toContain('no paragraph has at least 16 tokens');
  });

  it('turns a result into contract metrics', async () => {
    const r = await evaluatePerplexity(decoder, tokenizer, text, documents({ maxSamples: 5 }), quietContext(tmp.dir));
    const metrics = perplexityMetrics(r, 'original');
    expect(metrics.map((m) => m.name)).toEqual(['perplexity', 'predicted_tokens', 'eval_tokens_per_s', 'eval_seconds']);
    expect(metrics.every((m) => m.subject === 'original' && Number.isFinite(m.value) && m.value > 0)).toBe(true);
  });
});

describe('reading only what is scored', () => {
  const noBlankLines = (): string => splitDocuments(text).join('\n');   // the same text without a blank line

  it('stream: the first N·L tokens of a prefix are those of the whole text', () => {
    const config: PerplexitySettings = { protocol: 'stream', window: 64, maxSamples: 12, minTokens: 16 };
    const { samples, info } = perplexitySamples(text, tokenizer, config);
    const all = tokenizer.encode(splitDocuments(text).join('\n\n'));
    expect(samples.flat()).toEqual(all.slice(0, 12 * 64));
    expect(info.windowsInText).toBeNull();
    expect(info.charsTokenized as number).toBeLessThan((info.charsInText as number) / 4);
  });

  it('encodePrefix cuts at whitespace and grows until enough tokens, or takes the whole text', () => {
    let calls = 0;
    const encode = (s: string): number[] => { calls++; return tokenizer.encode(s); };
    const lines = noBlankLines();
    const r = encodePrefix(lines, 3000, encode);
    expect(r.complete).toBe(false);
    expect(r.ids.length).toBeGreaterThanOrEqual(3000);
    expect(/\s/.test(lines[r.chars])).toBe(true);
    expect(r.ids.slice(0, 3000)).toEqual(tokenizer.encode(lines).slice(0, 3000));
    expect(calls).toBeLessThanOrEqual(3);
    expect(encodePrefix('a short text', 3000, encode)).toMatchObject({ complete: true, chars: 12 });
  });

  it('documents on a text without blank lines: one truncated document, a warning that suggests the stream protocol, the rest untokenized', async () => {
    const lines = noBlankLines();
    const config = documents({ window: 64, maxSamples: 40 });
    const prepared = perplexitySamples(lines, tokenizer, config);
    expect(prepared.samples).toHaveLength(1);
    expect(prepared.samples[0]).toEqual(tokenizer.encode(lines, { addBos: true }).slice(0, 64));
    expect(prepared.info.charsTokenized as number).toBeLessThan(lines.length / 10);
    expect(prepared.warnings).toHaveLength(1);
    expect(prepared.warnings[0]).toMatch(/only 1 paragraph separated by blank lines \(40 documents asked\).*first 64 tokens.*stream protocol \(--protocol stream\)/);

    const logged: string[] = [];
    const ctx = { ...quietContext(process.cwd()), log: (level: string, message: string) => { if (level === 'warn') logged.push(message); } };
    const r = await evaluatePerplexity(decoder, tokenizer, lines, config, ctx);
    expect(r.details.warnings).toEqual(prepared.warnings);
    expect(logged).toEqual(prepared.warnings);
    // The blank-line text itself gives no warning.
    expect(perplexitySamples(text, tokenizer, config).warnings).toEqual([]);
  });
});
