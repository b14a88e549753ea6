import { describe, expect, it } from 'vitest';
import type { Metric } from '../../../preload/contract.ts';
import { comparisonTable, speedSettingText } from '../../../main/cli/comparison.ts';
import { progressText } from '../../../main/cli/job-runner.ts';

const m = (name: string, value: number, subject: string, unit = ''): Metric => ({ name, value, unit, subject });
const decode = (o: [number, number, number], r: [number, number, number]): Metric[] => [
  m('decode_tokens_per_s', o[1], 'original', 'tokens/s'), m('decode_tokens_per_s_min', o[0], 'original', 'tokens/s'), m('decode_tokens_per_s_max', o[2], 'original', 'tokens/s'),
  m('decode_tokens_per_s', r[1], 'result', 'tokens/s'), m('decode_tokens_per_s_min', r[0], 'result', 'tokens/s'), m('decode_tokens_per_s_max', r[2], 'result', 'tokens/s'),
];
const row = (table: string, label: string): string => table.split('\n').find((l) => l.trimStart().startsWith(label)) ?? '';

describe('the CLI comparison of timings', () => {
  it('shows median and range, and no percentage when the ranges overlap', () => {
    const table = comparisonTable(decode([300, 400, 1500], [900, 1348, 1400]));
    const line = row(table, 'decode speed');
    expect(line).toContain('400 tokens/s (300–1,500)');
    expect(line).toContain('1,348 tokens/s (900–1,400)');
    expect(line).toContain('no measurable difference');
    expect(line).not.toContain('%');
  });

  it('gives the change when the ranges are apart', () => {
    const line = row(comparisonTable(decode([1300, 1349, 1410], [1000, 1050, 1100])), 'decode speed');
    expect(line).toContain('-22.2 %');
    expect(line).not.toContain('no measurable difference');
  });

  it('says how the speeds were timed', () => {
    expect(speedSettingText({ evaluation: { result: { speed: { repeats: 5, threads: 2, provider: 'cpu' } } } }))
      .toBe('Speed: original and result timed interleaved in this job; median (min–max) of 5 run(s) each after a warm-up; 2 thread(s), cpu.');
    expect(speedSettingText({})).toBe('');
  });
});

describe('the CLI progress line', () => {
  it("shows the whole job's percent and time left, then the phase's own count", () => {
    const p = { jobId: 'j', experimentId: 1, seq: 3, phase: 'evaluate:compare', done: 10, total: 200, etaSeconds: 12, message: '', overall: 0.42, segments: [] };
    const line = progressText(p, 0, 1000);
    expect(line.startsWith(' 42%')).toBe(true);
    expect(line).toContain('evaluate:compare');
    expect(line).toContain('10/200');
    expect(line).toContain('ETA 12');
  });
});
