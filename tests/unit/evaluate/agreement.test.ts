// KL(original ‖ result) and top-1 agreement: against a direct float64 computation, and on real decoders.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type TextTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { readTextFile } from '../../../main/engine/data/text-file.ts';
import { agreementMetrics, compareOnText, compareRow, compareSequence } from '../../../main/engine/evaluate/agreement.ts';
import { openDecoder, type Decoder } from '../../../main/engine/evaluate/decoder-session.ts';
import { sequenceNll } from '../../../main/engine/evaluate/log-softmax.ts';
import { evaluatePerplexity } from '../../../main/engine/evaluate/perplexity.ts';
import { quietContext, type Progress } from '../../../main/engine/job-context.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

/** A seeded generator, so a failure can be reproduced. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** KL(softmax(x) ‖ softmax(y)) the textbook way, in float64: p_v = e^{x_v} / Σ e^{x}, Σ p log(p / q). */
function directKl(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const ex = Array.from(x, (v) => Math.exp(v));
  const ey = Array.from(y, (v) => Math.exp(v));
  const zx = ex.reduce((a, b) => a + b, 0);
  const zy = ey.reduce((a, b) => a + b, 0);
  let kl = 0;
  for (let v = 0; v < ex.length; v++) {
    const p = ex[v] / zx;
    const q = ey[v] / zy;
    kl += p * Math.log(p / q);
  }
  return kl;
}

describe('compareRow', () => {
  it('equals a direct float64 computation of KL on hand-made logits', () => {
    const x = Float32Array.of(1.5, -0.25, 3, 0.125, -2, 0.5, 2.75);
    const y = Float32Array.of(1.25, 0, 2.5, 0.5, -1.5, 0.75, 3);
    const r = compareRow(x, 0, y, 0, 7);
    const expected = directKl(x, y);
    expect(expected).toBeGreaterThan(0.01);
    expect(Math.abs(r.kl - expected)).toBeLessThan(1e-14);
    expect(r.argmaxP).toBe(2);
    expect(r.argmaxQ).toBe(6);
  });

  it('matches the direct computation on random rows, read at offsets inside larger buffers', () => {
    const next = rng(7);
    const vocab = 257;
    for (let trial = 0; trial < 20; trial++) {
      const p = new Float32Array(3 * vocab).map(() => 8 * (next() - 0.5));
      const q = new Float32Array(2 * vocab).map(() => 8 * (next() - 0.5));
      const r = compareRow(p, vocab, q, vocab, vocab);
      const expected = directKl(p.subarray(vocab, 2 * vocab), q.subarray(vocab, 2 * vocab));
      expect(Math.abs(r.kl - expected) / expected).toBeLessThan(1e-12);
    }
  });

  it('stays finite and exact where exp() of the raw logits overflows: KL is shift-invariant', () => {
    const x = Float32Array.of(1.5, -0.25, 3, 0.125);
    const y = Float32Array.of(1.25, 0, 2.5, 0.5);
    const big = compareRow(x.map((v) => v + 1000), 0, y.map((v) => v - 800), 0, 4);
    expect(Number.isFinite(big.kl)).toBe(true);
    expect(Math.abs(big.kl - directKl(x, y))).toBeLessThan(1e-12);
  });

  it('is exactly 0 for equal rows, and takes the first index on ties', () => {
    const x = Float32Array.of(0.5, 2, 2, -1);
    const r = compareRow(x, 0, Float32Array.from(x), 0, 4);
    expect(r.kl).toBe(0);
    expect([r.argmaxP, r.argmaxQ]).toEqual([1, 1]);
  });
});

describe('compareSequence', () => {
  it('scores both sequences exactly as sequenceNll does, and sums KL and top-1 over the predicted positions', () => {
    const next = rng(11);
    const vocab = 31;
    const ids = [1, 4, 30, 7, 7, 0];
    const p = new Float32Array(ids.length * vocab).map(() => 6 * (next() - 0.5));
    const q = p.map((v) => v + 0.3 * (next() - 0.5));
    const c = compareSequence(p, 0, q, 0, vocab, ids);
    expect(c.positions).toBe(ids.length - 1);
    expect(c.nllP).toBe(sequenceNll(p, 0, vocab, ids));
    expect(c.nllQ).toBe(sequenceNll(q, 0, vocab, ids));
    let kl = 0;
    let matches = 0;
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = (a: Float32Array) => a.subarray(t * vocab, (t + 1) * vocab);
      kl += directKl(row(p), row(q));
      const am = (a: Float32Array) => row(a).indexOf(Math.max(...row(a)));
      if (am(p) === am(q)) matches++;
    }
    expect(Math.abs(c.klSum - kl)).toBeLessThan(1e-12);
    expect(c.top1Matches).toBe(matches);
  });
});

describe('compareOnText on stories260K', () => {
  let a: Decoder;
  let b: Decoder;
  let tokenizer: TextTokenizer;
  let text: string;
  const tmp = tempDir();
  const config = { protocol: 'documents' as const, window: 128, maxSamples: 40, minTokens: 16 };

  beforeAll(async () => {
    // The same model in two sessions: what a "compression" that changed nothing looks like.
    a = await openDecoder(STORIES.model);
    b = await openDecoder(STORIES.model);
    tokenizer = await loadTokenizer(STORIES.tokenizer);
    text = await readTextFile(STORIES.text);
  });
  afterAll(async () => {
    await a.release();
    await b.release();
    tmp.cleanup();
  });

  it('identical models: KL ≈ 0, 100 % top-1 agreement, equal perplexities', async () => {
    const events: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir), progress: (p: Progress) => { events.push(p); } };
    const c = await compareOnText(a, b, tokenizer, text, config, ctx);
    expect(c.agreement.klMean).toBeLessThan(1e-9);
    expect(c.agreement.top1).toBe(1);
    expect(c.agreement.tokens).toBe(c.original.predictedTokens);
    expect(c.result.perplexity).toBe(c.original.perplexity);
    const metrics = agreementMetrics(c.agreement);
    expect(metrics).toEqual([
      { name: 'kl_mean', value: c.agreement.klMean, unit: 'nats', subject: 'result' },
      { name: 'top1_agreement', value: 100, unit: '%', subject: 'result' },
    ]);
    // Progress per batch, in its own phase.
    const compare = events.filter((e) => e.phase === 'evaluate:compare');
    expect(compare.at(-1)).toMatchObject({ done: 40, total: 40 });
    expect(compare.length).toBeGreaterThan(2);
    expect(c.agreement.details.worstSamples).toHaveLength(5);
  });

  it('gives the original the very perplexity a run of it alone gives', async () => {
    const c = await compareOnText(a, b, tokenizer, text, config, quietContext(tmp.dir));
    const alone = await evaluatePerplexity(a, tokenizer, text, config, quietContext(tmp.dir));
    expect(c.original.perplexity).toBe(alone.perplexity);
    expect(c.original.sampleNll).toEqual(alone.sampleNll);
  });
});
