import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Coalescer } from '../../../main/jobs/coalescer.ts';
import { JobEta } from '../../../main/jobs/eta.ts';
import { progressPlan } from '../../../main/jobs/progress-plan.ts';
import { Recipe } from '../../../preload/recipe.ts';

/** A real job's progress as the job service emitted it (recorded by tests/helpers/record-progress.ts). */
interface Recording {
  recipe: unknown;
  facts: { textBytes: number | null };
  durationMs: number;
  events: { phase: string; done: number; total: number; t: number }[];
}
const RECORDED = path.join(path.dirname(fileURLToPath(import.meta.url)), 'recorded');
const recordings = readdirSync(RECORDED).filter((f) => f.endsWith('.json')).sort();

describe('JobEta on recorded jobs', () => {
  it('has recordings of compressions and of an evaluation', () => {
    expect(recordings).toEqual(expect.arrayContaining(['evaluate-only.json', 'gptq-compare.json', 'rtn-compare.json']));
  });

  it.each(recordings)('%s: the first estimate is within 2x of the time actually left; overall progress never goes back', (file) => {
    const r = JSON.parse(readFileSync(path.join(RECORDED, file), 'utf8')) as Recording;
    const plan = progressPlan(Recipe.parse(r.recipe), r.facts);
    // Every phase the engine reported is a segment of the plan.
    for (const e of r.events) expect(plan.map((p) => p.phase)).toContain(e.phase);
    const eta = new JobEta(plan);
    let first: { eta: number; left: number; at: number } | null = null;
    let previous = 0;
    for (const e of r.events) {
      const o = eta.update(e.phase, e.done, e.total, e.t);
      expect(o.overall).toBeGreaterThanOrEqual(previous);
      previous = o.overall;
      if (o.etaSeconds !== null && first === null) first = { eta: o.etaSeconds, left: (r.durationMs - e.t) / 1000, at: e.t };
    }
    expect(first).not.toBeNull();
    expect(first!.eta / first!.left).toBeGreaterThan(0.5);
    expect(first!.eta / first!.left).toBeLessThan(2);
    expect(previous).toBeGreaterThan(0.99);
    // The first estimate comes early: once the model is loaded, in the first third of the job.
    expect(first!.at).toBeLessThan(r.durationMs / 3);
  });
});

describe('JobEta', () => {
  const plan = [{ phase: 'load', cost: 10 }, { phase: 'quantize', cost: 30 }, { phase: 'write', cost: 10 }, { phase: 'evaluate:compare', cost: 50 }];

  it('lays the phases end to end as one bar, and skips ahead to a later phase', () => {
    const eta = new JobEta(plan);
    expect(eta.segments()).toEqual([{ phase: 'load', share: 0.1 }, { phase: 'quantize', share: 0.3 }, { phase: 'write', share: 0.1 }, { phase: 'evaluate:compare', share: 0.5 }]);
    expect(eta.update('load', 0, 1, 0)).toEqual({ overall: 0, etaSeconds: null });
    expect(eta.update('load', 1, 1, 1000)).toEqual({ overall: 0.1, etaSeconds: 9 });   // 10 units in 1 s: 90 left
    expect(eta.update('quantize', 15, 30, 2000).overall).toBeCloseTo(0.25, 10);
    // No write reported: the comparison starts, the write segment counts as done.
    expect(eta.update('evaluate:compare', 10, 100, 3000).overall).toBeCloseTo(0.55, 10);
  });

  it('never goes back: a phase restarting its count, or one the plan does not know, leaves the bar where it is', () => {
    const eta = new JobEta(plan);
    eta.update('load', 1, 1, 100);
    const a = eta.update('quantize', 20, 30, 1000).overall;
    expect(eta.update('quantize', 2, 30, 1100).overall).toBe(a);
    expect(eta.update('something-else', 0, 5, 1200).overall).toBe(a);
    expect(eta.update('load', 0, 1, 1300).overall).toBe(a);       // an earlier phase again
    expect(eta.update('evaluate:compare', 100, 100, 2000)).toEqual({ overall: 1, etaSeconds: 0 });
  });

  it("trusts the current phase's own rate as it advances", () => {
    const eta = new JobEta([{ phase: 'load', cost: 10 }, { phase: 'evaluate:compare', cost: 10 }]);
    eta.update('load', 0, 1, 0);
    eta.update('load', 1, 1, 1000);                               // 1 s per 10 units
    eta.update('evaluate:compare', 0, 100, 1000);
    // Half of the comparison in 4 s: it runs at 8 s for the phase, whatever the plan said (1 s).
    expect(eta.update('evaluate:compare', 50, 100, 5000).etaSeconds).toBe(4);
  });
});

describe('Coalescer', () => {
  afterEach(() => vi.useRealTimers());

  it('passes the first update at once, then at most one per interval with the newest value', () => {
    vi.useFakeTimers();
    const out: number[] = [];
    const c = new Coalescer<number>(100, (v) => out.push(v), { clock: () => Date.now() });
    c.push(1);
    expect(out).toEqual([1]);
    c.push(2);
    c.push(3);
    c.push(4);
    expect(out).toEqual([1]);
    vi.advanceTimersByTime(99);
    expect(out).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual([1, 4]);
    vi.advanceTimersByTime(1000);
    expect(out).toEqual([1, 4]);
    c.push(5);                                  // a quiet interval has passed: straight through
    expect(out).toEqual([1, 4, 5]);
  });

  it('delivers 10 updates per second at most from a flood of 1000', () => {
    vi.useFakeTimers();
    const out: number[] = [];
    const c = new Coalescer<number>(100, (v) => out.push(v), { clock: () => Date.now() });
    for (let i = 1; i <= 1000; i++) {
      c.push(i);
      vi.advanceTimersByTime(1);
    }
    c.flush();
    expect(out.length).toBeLessThanOrEqual(11);
    expect(out.at(-1)).toBe(1000);
    for (let i = 1; i < out.length; i++) expect(out[i]).toBeGreaterThan(out[i - 1]);
  });

  it('with sameKind, keeps the last update of each kind', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const c = new Coalescer<string>(100, (v) => out.push(v), { clock: () => Date.now(), sameKind: (a, b) => a[0] === b[0] });
    c.push('a1');
    c.push('a2');
    c.push('a3');
    c.push('b1');                               // pushes a3 out at once; b1 is held
    c.push('b2');
    expect(out).toEqual(['a1', 'a3']);
    vi.advanceTimersByTime(100);
    expect(out).toEqual(['a1', 'a3', 'b2']);
  });

  it('flush delivers the held update now; discard drops it', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const c = new Coalescer<string>(100, (v) => out.push(v), { clock: () => Date.now() });
    c.push('a');
    c.push('b');
    c.flush();
    expect(out).toEqual(['a', 'b']);
    c.flush();
    expect(out).toEqual(['a', 'b']);
    c.push('c');
    c.discard();
    vi.advanceTimersByTime(500);
    expect(out).toEqual(['a', 'b']);
  });
});
