import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type TextTokenizer } from '../../../main/engine/data/tokenizer.ts';
import { calibrationRegion, checkCalibrationCapacity, estimateTokens, mulberry32, sampleCalibration } from '../../../main/engine/calibrate/index.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { fixture, STORIES } from '../../helpers/fixtures.ts';

let stories: TextTokenizer;
let gpt2: TextTokenizer;
let tinyText: string;
let moby: string;

beforeAll(async () => {
  stories = await loadTokenizer(STORIES.tokenizer);
  gpt2 = await loadTokenizer(fixture('tokenizers', 'gpt2', 'tokenizer.json'));
  tinyText = readFileSync(STORIES.text, 'utf8');
  moby = readFileSync(fixture('text', 'moby-dick.txt'), 'utf8');
});

describe('mulberry32', () => {
  it('is reproducible, seed-dependent and uniform enough', () => {
    const a = mulberry32(7), b = mulberry32(7), c = mulberry32(8);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    expect(xs.slice(0, 10)).not.toEqual(Array.from({ length: 10 }, () => c.next()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.03);
    const r = mulberry32(1);
    for (let i = 0; i < 1000; i++) { const v = r.below(5); expect(Number.isInteger(v) && v >= 0 && v < 5).toBe(true); }
  });
});

describe('sampleCalibration', () => {
  it('draws N sequences of exactly L tokens, BOS first, reproducibly by seed', () => {
    const opts = { samples: 24, length: 96, seed: 3 };
    const a = sampleCalibration(tinyText, stories, opts);
    expect(a).toHaveLength(24);
    for (const s of a) {
      expect(s).toHaveLength(96);
      expect(s[0]).toBe(stories.bosId);
      expect(s.slice(1).every((id) => id !== stories.bosId && id >= 0 && id < stories.vocabSize)).toBe(true);
    }
    expect(sampleCalibration(tinyText, stories, opts)).toEqual(a);
    const b = sampleCalibration(tinyText, stories, { ...opts, seed: 4 });
    expect(b).not.toEqual(a);
    // Distinct starts: no two samples are the same sequence.
    expect(new Set(a.map((s) => s.join(','))).size).toBe(24);
  });

  it('takes real text: each sample is the tokenization of a passage of the text', () => {
    const samples = sampleCalibration(tinyText, stories, { samples: 8, length: 64, seed: 11 });
    const flat = tinyText.replace(/\s+/g, ' ');
    for (const s of samples) {
      const decoded = stories.decode(s.slice(1)).replace(/\s+/g, ' ').trim();
      // The last token may be a piece of a word; drop the last word before searching.
      const passage = decoded.split(' ').slice(0, -1).join(' ');
      expect(passage.length).toBeGreaterThan(50);
      expect(flat.includes(passage)).toBe(true);
    }
  });

  it('fromEnd keeps samples in the tail of the text, from a paragraph start', () => {
    const tail = calibrationRegion(tinyText, 0.5);
    expect(tail.length).toBeLessThanOrEqual(tinyText.length / 2 + 1);
    expect(tinyText.endsWith(tail)).toBe(true);
    expect(tinyText.slice(0, tinyText.length - tail.length)).toMatch(/\n[ \t]*\n\s*$/);
    const head = tinyText.slice(0, tinyText.length - tail.length).replace(/\s+/g, ' ');
    const samples = sampleCalibration(tinyText, stories, { samples: 16, length: 64, seed: 5, fromEnd: 0.5 });
    const tailFlat = tail.replace(/\s+/g, ' ');
    for (const s of samples) {
      const passage = stories.decode(s.slice(1)).replace(/\s+/g, ' ').trim().split(' ').slice(0, -1).join(' ');
      expect(tailFlat.includes(passage)).toBe(true);
      expect(head.includes(passage)).toBe(false);
    }
  });

  it('samples a long text without BOS for a tokenizer that adds none (GPT-2)', () => {
    const samples = sampleCalibration(moby, gpt2, { samples: 32, length: 200, seed: 0 });
    expect(samples).toHaveLength(32);
    for (const s of samples) expect(s).toHaveLength(200);
    expect(new Set(samples.map((s) => s[0])).size).toBeGreaterThan(1);
  });

  it('estimates the token count of a long text from probes within a few percent', () => {
    const slice = moby.slice(0, 120_000);
    const est = estimateTokens(slice, gpt2, 256);
    expect(est.exact).toBe(false);
    const exact = gpt2.encode(slice).length;
    expect(Math.abs(est.tokens - exact) / exact).toBeLessThan(0.1);
    const short = estimateTokens(moby.slice(0, 5000), gpt2, 256);
    expect(short.exact).toBe(true);
    expect(short.tokens).toBe(gpt2.encode(moby.slice(0, 5000)).length);
  });

  it('refuses a text too short for N × L before sampling, with the counts in the message', () => {
    const text = tinyText.slice(0, 3000);
    let error: unknown;
    try {
      sampleCalibration(text, stories, { samples: 64, length: 256, seed: 0, label: 'short.txt' });
    } catch (e) { error = e; }
    expect(isWhittleError(error) && error.code).toBe('INVALID_INPUT');
    expect((error as Error).message).toMatch(/^The calibration text short\.txt yields about \d+ sequences? of 256 tokens; 64 were requested\. Use a longer text, fewer samples or a shorter length\.$/);
    expect(() => checkCalibrationCapacity(text, stories, { samples: 2, length: 256, seed: 0 })).not.toThrow();
  });

  it('rejects nonsense options', () => {
    expect(() => sampleCalibration(tinyText, stories, { samples: 0, length: 64, seed: 0 })).toThrow(/samples/);
    expect(() => sampleCalibration(tinyText, stories, { samples: 1, length: 64, seed: 0, fromEnd: 0 })).toThrow(/fromEnd/);
  });
});
