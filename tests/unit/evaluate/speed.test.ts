/**
 * Speed of two real decoders (the stories model, opened twice) timed interleaved: the order of the runs,
 * the medians and spreads against a plain computation over the recorded runs, the threads and provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDecoder, type Decoder } from '../../../main/engine/evaluate/decoder-session.ts';
import { measurablyDifferent, measureSpeedInterleaved, physicalCores, speedMetrics, spreadOf } from '../../../main/engine/evaluate/speed.ts';
import type { JobContext, Progress } from '../../../main/engine/job-context.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

let tmp: ReturnType<typeof tempDir>;
let a: Decoder;
let b: Decoder;

beforeAll(async () => {
  tmp = tempDir('whittle-speed-');
  a = await openDecoder(STORIES.model, { threads: 1 });
  b = await openDecoder(STORIES.model, { threads: 1 });
});
afterAll(async () => {
  await a.release();
  await b.release();
  tmp.cleanup();
});

function recordingContext(): { ctx: JobContext; progress: Progress[] } {
  const progress: Progress[] = [];
  return { progress, ctx: { signal: new AbortController().signal, workDir: tmp.dir, progress: (p) => progress.push(p), log: () => {} } };
}

/** Plain median and min/max of a list, for checking. */
function plainMedian(values: number[]): number {
  const s = [...values].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

describe('interleaved speed', () => {
  it('warms each model up, then times them A B A B …, and reports medians with their spread', async () => {
    const { ctx, progress } = recordingContext();
    const config = { promptTokens: 8, decodeTokens: 4, repeats: 3, threads: 1 };
    const { results, order } = await measureSpeedInterleaved([{ name: 'original', decoder: a }, { name: 'result', decoder: b }], config, ctx);

    expect(order).toEqual(['original', 'result', 'original', 'result', 'original', 'result']);
    const messages = progress.map((p) => p.message).filter(Boolean);
    expect(messages).toEqual([
      'warm-up original', 'warm-up result',
      'original 1/3', 'result 1/3', 'original 2/3', 'result 2/3', 'original 3/3', 'result 3/3',
    ]);
    // One overall count for both models, never going back.
    for (let i = 1; i < progress.length; i++) expect(progress[i].done).toBeGreaterThanOrEqual(progress[i - 1].done);
    expect(progress.at(-1)).toMatchObject({ done: 8, total: 8 });

    for (const r of results) {
      expect(r.prefillRunsMs).toHaveLength(3);
      expect(r.decodeRunsTokensPerS).toHaveLength(3);
      expect(r.prefillMs).toBe(plainMedian(r.prefillRunsMs));
      expect(r.decodeTokensPerS).toBe(plainMedian(r.decodeRunsTokensPerS));
      expect(r.decode.min).toBe(Math.min(...r.decodeRunsTokensPerS));
      expect(r.decode.max).toBe(Math.max(...r.decodeRunsTokensPerS));
      expect(r.decode.min).toBeLessThanOrEqual(r.decode.median);
      expect(r.decode.median).toBeLessThanOrEqual(r.decode.max);
      expect(r).toMatchObject({ repeats: 3, threads: 1, threadsAsked: 1, provider: 'cpu', decodeMode: 'kv-cache' });
    }

    const metrics = speedMetrics(results[1], 'result');
    const byName = Object.fromEntries(metrics.map((m) => [m.name, m]));
    expect(byName.decode_tokens_per_s.value).toBe(results[1].decodeTokensPerS);
    expect(byName.decode_tokens_per_s_min.value).toBe(results[1].decode.min);
    expect(byName.decode_tokens_per_s_max.value).toBe(results[1].decode.max);
    expect(byName.prefill_ms_min.value).toBe(results[1].prefill.min);
    expect(byName.prefill_ms_max.value).toBe(results[1].prefill.max);
    expect(byName.speed_repeats).toMatchObject({ value: 3, unit: 'runs', subject: 'result' });
    expect(byName.speed_threads).toMatchObject({ value: 1, unit: 'threads', subject: 'result' });
  });

  it("reports onnxruntime's default thread count when none is asked", async () => {
    const { ctx } = recordingContext();
    const { results } = await measureSpeedInterleaved([{ name: 'model', decoder: a }], { promptTokens: 4, decodeTokens: 2, repeats: 1, threads: 0 }, ctx);
    expect(results[0].threadsAsked).toBe(0);
    expect(results[0].threads).toBe(physicalCores());
    expect(results[0].threads).toBeGreaterThan(0);
  });
});

describe('spread', () => {
  it('gives the median, extremes and interpolated quartiles', () => {
    expect(spreadOf([5, 1, 3, 2, 4])).toEqual({ median: 3, min: 1, max: 5, q1: 2, q3: 4 });
    expect(spreadOf([4, 1, 2, 3])).toEqual({ median: 2.5, min: 1, max: 4, q1: 1.75, q3: 3.25 });
    expect(spreadOf([7])).toEqual({ median: 7, min: 7, max: 7, q1: 7, q3: 7 });
  });

  it('calls a difference measurable only when the ranges do not overlap', () => {
    expect(measurablyDifferent({ min: 10, max: 12 }, { min: 11, max: 14 })).toBe(false);
    expect(measurablyDifferent({ min: 10, max: 12 }, { min: 12.5, max: 14 })).toBe(true);
    expect(measurablyDifferent({ min: 20, max: 30 }, { min: 1, max: 2 })).toBe(true);
  });
});
